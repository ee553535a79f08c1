"""YAML configs read into typed dataclasses.

* ``load(cls, path, overrides)`` reads ``path`` (optional), applies ``key=value`` overrides
  (dotted keys reach nested dataclasses; values are parsed as YAML scalars/lists) and returns an
  instance of ``cls``.
* Files and override values are read with the YAML 1.2 core schema, not PyYAML's YAML 1.1:
  ``0123`` is 123 (octal only as ``0o173``), ``1:30`` is a string (no sexagesimal numbers), ``1e-3``
  is a number, ``yes``/``no``/``on``/``off`` are strings (booleans are ``true``/``false``). In an
  override ``key=value``, ``#`` starts no comment: a plain value is taken whole
  (``dataset=folder:/x/base #2`` names the folder ``/x/base #2``); a list or mapping value with an
  unquoted `` #`` is refused (quote it). Nesting deeper than :data:`MAX_DEPTH` is refused.
* Unknown keys and ill-typed values raise :class:`DassError` naming the key and the file.
* ``to_dict`` / ``save`` give back the resolved config (saved into each run folder).
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import DassError
from .io import atomic_write_text

__all__ = ["load", "from_dict", "to_dict", "save", "parse_overrides"]

MAX_DEPTH = 32  # most levels of nested lists/mappings in a config file or an override value


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the implicit types of the YAML 1.2 core schema (module docstring)."""


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                  r"|\.(?:nan|NaN|NAN))$", "-+0123456789."),
        ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("merge", r"^(?:<<)$", "<")):  # merge keys (`<<: *preset`) stay, as the shipped configs use them
    _Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _yaml12_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)   # "0123" is 123: no YAML 1.1 octal


def _yaml12_bool(loader, node):
    return loader.construct_scalar(node).lower() == "true"


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _yaml12_bool)


def _depth_ok(value) -> bool:
    """Whether ``value`` nests lists/mappings at most MAX_DEPTH levels deep (no recursion)."""
    todo = [(value, 1)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, (list, tuple, dict)):
            if depth > MAX_DEPTH:
                return False
            todo += [(x, depth + 1) for x in (v.values() if isinstance(v, dict) else v)]
    return True


def _flow_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` in ``text`` outside quotes (a bound before parsing it)."""
    depth = most = 0
    quote = None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
            most = max(most, depth)
        elif ch in "]}":
            depth -= 1
    return most


def yaml_load(text: str, where: str):
    """``text`` read as YAML 1.2 (module docstring); nesting deeper than MAX_DEPTH raises DassError."""
    if _flow_depth(text) > MAX_DEPTH or text.count("\n") and _indent_levels(text) > 4 * MAX_DEPTH:
        raise DassError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    try:
        value = yaml.load(text, Loader=_Yaml12Loader)
    except RecursionError:
        raise DassError(f"{where}: nested more than {MAX_DEPTH} levels deep") from None
    if not _depth_ok(value):
        raise DassError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    return value


def _indent_levels(text: str) -> int:
    """The number of distinct indentations of ``text``'s lines (bounds block-style nesting)."""
    return len({len(line) - len(line.lstrip(" -")) for line in text.splitlines() if line.strip()})


class _RangeError(DassError):
    """A value of the right type outside its range (not masked by trying another member of a Union)."""


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp, key: str, where: str):
    """Check/convert ``value`` to type ``tp``; raise DassError naming key and file."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = DassError(f"{where}: key '{key}' expects {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key, where)
            except _RangeError:
                raise  # the right type, a value out of range: that is the message
            except DassError:
                pass
        names = " or ".join(_type_name(a) for a in args)
        raise DassError(f"{where}: key '{key}' expects {names}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise DassError(f"{where}: key '{key}' must be one of {list(args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, where=where, prefix=key + ".")
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise bad
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise bad
            return tuple(_coerce(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, key, where): _coerce(v, vt, f"{key}.{k}", where) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_int(value, key, where)
        raise bad
    if tp is float:
        out = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value) if abs(value) < 1e308 else math.inf
        elif isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                out = float(value)
            except ValueError:
                pass
        if out is None:
            raise bad
        if not math.isfinite(out):
            raise _RangeError(f"{where}: key '{key}' must be a finite number, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
        raise bad
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad


INT_LIMIT = 2 ** 63  # every integer must fit a signed 64-bit integer (numpy, torch)


def _is_seed(key: str) -> bool:
    """``seed``, ``*_seed`` and the entries of ``seeds`` / ``*_seeds`` (at any depth): they feed numpy's
    and torch's generators."""
    parts = [p.split("[", 1)[0] for p in key.split(".")]
    return any(p in ("seed", "seeds") or p.endswith(("_seed", "_seeds")) for p in parts)


def _check_int(value: int, key: str, where: str) -> int:
    if not -INT_LIMIT < value < INT_LIMIT:
        raise _RangeError(f"{where}: key '{key}' is out of range, got {value}")
    # noise_seed -1 marks the original release's (not reproducible) noise
    least = -1 if key.rsplit(".", 1)[-1] == "noise_seed" else 0
    if _is_seed(key) and not least <= value < INT_LIMIT:
        raise _RangeError(f"{where}: key '{key}' must be a seed in [{least}, 2^63), got {value}")
    return value


def from_dict(cls, data: dict, where: str = "<config>", prefix: str = ""):
    """Build dataclass ``cls`` from ``data``; unknown keys / wrong types raise DassError."""
    if not isinstance(data, dict):
        raise DassError(f"{where}: expected a mapping for '{prefix.rstrip('.') or cls.__name__}', got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for k, v in data.items():
        if k not in fields:
            known = ", ".join(sorted(fields))
            raise DassError(f"{where}: unknown key '{prefix}{k}' (known: {known})")
        kwargs[k] = _coerce(v, hints[k], prefix + k, where)
    missing = [n for n, f in fields.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise DassError(f"{where}: missing required key '{prefix}{missing[0]}'")
    try:
        return cls(**kwargs)
    except DassError:
        raise
    except (ValueError, TypeError) as e:
        raise DassError(f"{where}: {e}") from None


def parse_overrides(items) -> dict:
    """``["a.b=3", "c=[1,2]"]`` -> nested dict ``{"a": {"b": 3}, "c": [1, 2]}``."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise DassError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise DassError(f"override '{item}' has an empty key")
        value = _override_value(raw, item)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise DassError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return out


def _override_value(raw: str, item: str):
    """The value of ``key=raw`` (YAML 1.2, module docstring): a quoted string unquoted; a list or
    mapping parsed (an unquoted `` #`` refused); any other text resolved as one plain scalar, ``#``
    included."""
    text = raw.strip()
    if text == "":
        return ""
    if text[0] in "[{\"'":
        if text[0] in "[{" and re.search(r"\s#", _unquoted(text)):
            raise DassError(f"override '{_clip(item)}': ' #' would start a YAML comment; quote the value that holds it")
        try:
            return yaml_load(text, f"override '{_clip(item)}'")
        except yaml.YAMLError:
            if text[0] in "[{":
                raise DassError(f"override '{_clip(item)}': not a valid YAML list or mapping") from None
            return text
    # one plain scalar: resolved by the YAML 1.2 rules, never parsed (no comments, no structure)
    for tag, regexps in _Yaml12Loader.yaml_implicit_resolvers.get(text[0], []):
        if regexps.match(text):
            node = yaml.ScalarNode(tag, text)
            return _Yaml12Loader("").construct_object(node, deep=True)
    return text


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def _unquoted(text: str) -> str:
    """``text`` with its quoted parts blanked (to look for comment marks outside quotes)."""
    return re.sub(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"", lambda m: " " * len(m.group()), text)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DassError(f"config file not found: {path}")
    try:
        data = yaml_load(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as e:
        raise DassError(f"{path}: not a UTF-8 text file (byte {e.start})") from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        raise DassError(f"{path}: not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DassError(f"{path}: top level must be a mapping of keys to values")
    return data


def read_with_bases(path, _chain=()) -> dict:
    """``path`` with every ``_base_`` reference resolved (see :func:`load`); a file that is its own
    ancestor is an error naming the cycle."""
    path = Path(path)
    here = path.resolve()
    if here in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, here))
        raise DassError(f"{path}: '_base_' chain loops back to itself ({cycle})")
    return _expand_bases(read_yaml(path), path, (*_chain, here), "")


def _expand_bases(data: dict, path: Path, chain: tuple, at: str) -> dict:
    """``data`` (a mapping read from ``path``, at dotted key ``at``) with its ``_base_`` and those of
    its nested mappings resolved: the referenced file (or one section of it, ``file#a.b``) first,
    the mapping's own keys merged on top."""
    data = dict(data)
    base = data.pop("_base_", None)
    out = {k: _expand_bases(v, path, chain, f"{at}.{k}" if at else k) if isinstance(v, dict) else v
           for k, v in data.items()}
    if base is None:
        return out
    key = f"{at}._base_" if at else "_base_"
    if not isinstance(base, str) or not base.partition("#")[0]:
        raise DassError(f"{path}: key '{key}' expects a file name, optionally with '#section'")
    file, _, section = base.partition("#")
    ref = read_with_bases(path.parent / file, chain)
    for part in section.split(".") if section else ():
        if not isinstance(ref, dict) or part not in ref:
            raise DassError(f"{path}: key '{key}': {path.parent / file} has no section '{section}'")
        ref = ref[part]
    if not isinstance(ref, dict):
        raise DassError(f"{path}: key '{key}': section '{section}' of {path.parent / file} is not a mapping")
    return _merge(ref, out)


def load(cls, path=None, overrides=None):
    """Read ``path`` (YAML, may be None) into ``cls`` with ``key=value`` overrides applied.

    A ``_base_: other.yaml`` key (relative to the file) takes that file's keys first, recursively (a
    base may name its own base), so profiles can share a common file. Inside a nested mapping,
    ``_base_: other.yaml#section`` takes one section of another file, so that a profile names a recipe
    instead of copying it (``kd_recipe: {_base_: ../kd/cpu.yaml#recipe}``); keys beside it override.
    """
    data: dict = {}
    where = str(path) if path else "<defaults>"
    if path:
        data = read_with_bases(path)
    ov = parse_overrides(overrides)
    if ov:
        data = _merge(data, ov)
        where = f"{where} (with overrides)"
    return from_dict(cls, data, where=where)


def to_dict(obj) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save(obj, path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))
