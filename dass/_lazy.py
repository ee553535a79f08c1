"""Lazy package namespaces: ``from dass.space import Arch`` imports only the submodule that defines
``Arch``, so light entry points (``--help``, config checks) never pay for torch.

A package calls :func:`lazy_exports` with ``{submodule: [names]}`` and binds the returned
``__getattr__``/``__dir__``/``__all__``; the first access of a name imports its submodule and caches
the value in the package namespace (PEP 562). A name equal to its submodule's name (``remap`` in
``dass.space``) keeps meaning the function: the import system's binding of the submodule onto the
package is ignored for it.
"""
from __future__ import annotations

import importlib
import sys
import types


class _LazyPackage(types.ModuleType):
    _shadowed: frozenset = frozenset()

    def __setattr__(self, name, value):
        if name in self._shadowed and isinstance(value, types.ModuleType):
            return  # the submodule of the same name: the exported function stays reachable
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: dict[str, list[str]]):
    """(``__getattr__``, ``__dir__``, ``__all__``) of ``package`` exporting ``exports`` lazily."""
    where = {name: sub for sub, names in exports.items() for name in names}
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    module._shadowed = frozenset(name for name, sub in where.items() if name == sub)

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(module, name, value)
        return value

    def __dir__():
        return sorted(set(where) | set(module.__dict__))

    return __getattr__, __dir__, list(where)
