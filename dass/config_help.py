"""The config keys of an entry module, listed in its ``--help``, read from its config dataclass.

Nothing is kept twice: a key's type and default come from the dataclass field, its meaning from the
``# comment`` ending the line that defines the field (on any line of a field written over several
lines). A field without one takes the comment of the same field in a base class, and a nested
dataclass the first line of its class docstring. Nested dataclasses are listed with dotted keys
(``recipe.lr``), lists of them as ``tasks[].dataset`` and mappings to them as ``presets.<name>.size``.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

__all__ = ["KeyDoc", "field_comments", "config_keys", "help_text", "attach"]


@dataclass(frozen=True)
class KeyDoc:
    key: str       # dotted
    type: str
    default: str   # as written in YAML; "required" when the field has none
    meaning: str


@lru_cache(maxsize=None)
def _own_comments(cls) -> dict[str, str]:
    """Trailing comments of the fields defined in the body of ``cls`` itself."""
    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    body = ast.parse(src).body[0]
    out = {}
    for node in getattr(body, "body", []):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = next((comments[i] for i in range(node.lineno, node.end_lineno + 1) if i in comments), "")
            if text:
                out[node.target.id] = text
    return out


def field_comments(cls) -> dict[str, str]:
    """Meaning of each field of dataclass ``cls`` (see the module docstring); '' when undocumented."""
    out = {}
    for f in dataclasses.fields(cls):
        text = next((c for k in cls.__mro__ if dataclasses.is_dataclass(k) and (c := _own_comments(k).get(f.name))),
                    "")
        out[f.name] = text
    return out


def _nested(tp) -> tuple[str, type] | None:
    """``("", cls)`` for a dataclass (or an optional one), ``("[]", cls)`` for a list of them,
    ``(".<name>", cls)`` for a mapping to them; None otherwise."""
    if dataclasses.is_dataclass(tp):
        return "", tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        dcs = [a for a in inner if dataclasses.is_dataclass(a)]
        return ("", dcs[0]) if len(dcs) == 1 and len(inner) == 1 else None
    if origin in (list, tuple) and args and dataclasses.is_dataclass(args[0]):
        return "[]", args[0]
    if origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        return ".<name>", args[1]
    return None


def type_name(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "any"
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list[{', '.join(type_name(a) for a in args if a is not Ellipsis)}]" if args else "list"
    if origin is dict:
        return f"dict[{type_name(args[0])}: {type_name(args[1])}]" if args else "dict"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _yaml(value) -> str:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, str):
        return json.dumps(value) if value == "" or value.strip() != value else value
    return json.dumps(value, default=str)


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return _yaml(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return _yaml(f.default_factory())
    return "required"


def _first_doc_line(cls) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(cls.__name__ + "("):  # the signature dataclasses write when a class has no docstring
        return ""
    return inspect.cleandoc(doc).split("\n")[0]


def config_keys(cls, prefix: str = "") -> list[KeyDoc]:
    """Every key of dataclass ``cls``, nested ones dotted; a nested dataclass gets a line of its own
    (its meaning) followed by its keys."""
    hints = typing.get_type_hints(cls)
    docs = field_comments(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key, tp = prefix + f.name, hints[f.name]
        meaning = docs[f.name]
        nest = _nested(tp)
        if nest is not None:
            sep, sub = nest
            meaning = meaning or _first_doc_line(sub)
            shown = "required" if f.default is f.default_factory is dataclasses.MISSING else (
                "see below" if sep == "" else _default(f))
            out.append(KeyDoc(key, type_name(tp), shown, meaning))
            out += config_keys(sub, f"{key}{sep}.")
        else:
            out.append(KeyDoc(key, type_name(tp), _default(f), meaning))
    return out


def help_text(cls) -> str:
    """The ``--help`` section: one line per key, ``key  type = default  meaning``."""
    keys = config_keys(cls)
    kw = max(len(k.key) for k in keys)
    heads = [f"  {k.key:<{kw}}  {k.type} = {k.default}" for k in keys]
    hw = min(max(len(h) for h in heads), kw + 36)   # align the meanings unless a default is very long
    lines = ["config keys (in the --config YAML or as key=value overrides, dotted for nested sections; "
             "the default applies where neither gives the key):"]
    lines += [f"{h:<{hw}}  # {k.meaning}" if k.meaning else h for h, k in zip(heads, keys)]
    return "\n".join(lines)


def attach(parser: argparse.ArgumentParser, cls) -> argparse.ArgumentParser:
    """Put the key list of ``cls`` under ``parser``'s help (kept as written)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = help_text(cls)
    return parser
