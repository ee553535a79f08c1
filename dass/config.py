"""YAML configs read into typed dataclasses.

* ``load(cls, path, overrides)`` reads ``path`` (optional), applies ``key=value`` overrides
  (dotted keys reach nested dataclasses; values are parsed as YAML scalars/lists) and returns an
  instance of ``cls``.
* Unknown keys and ill-typed values raise :class:`DassError` naming the key and the file.
* ``to_dict`` / ``save`` give back the resolved config (saved into each run folder).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import DassError
from .io import atomic_write_text

__all__ = ["load", "from_dict", "to_dict", "save", "parse_overrides"]


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
        try:
            value = yaml.safe_load(raw) if raw.strip() != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise DassError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return out


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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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
