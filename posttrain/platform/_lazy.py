"""Package namespaces that import their submodules on first use (PEP 562).

A package's public names stay where they are (``from posttrain.platform.dedup import
DedupConfig``), but importing the package no longer imports pyarrow, pyiceberg or Ray: the
CLI registers every command, and ``posttrain --help`` answers, in a fraction of a second.
Each package also imports the same names under ``TYPE_CHECKING`` so type checkers and
editors still see them.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class _ExportsWinModule(types.ModuleType):
    """A package whose exported names win over its submodules of the same name.

    Importing ``package.name`` binds the submodule as ``package.name``; an eager
    ``from .name import name`` then rebound it to the function. Lazily there is no such
    second step, so the binding is refused here and ``__getattr__`` serves the export.
    """

    _exports_over_submodules: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._exports_over_submodules and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; its ``__all__`` stays a literal list.

    Args:
        package: the package's ``__name__``.
        exports: submodule name (relative, e.g. ``"config"``) → the public names it defines.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"config": ["DedupConfig"]})
        ... # doctest: +SKIP
    """
    owner = {name: module for module, names in exports.items() for name in names}
    shadowing = frozenset(name for name in owner if name in exports)
    if shadowing:
        module = sys.modules[package]
        module.__class__ = _ExportsWinModule
        module._exports_over_submodules = shadowing  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        module = owner.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(owner)

    return __getattr__, __dir__
