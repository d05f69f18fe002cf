"""Lazy package exports: `from rag import Assistant` works while `import rag` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any],
                                                                      Callable[[], list[str]]]:
    """(__all__, __getattr__, __dir__) for a package whose names live in the modules `exports` maps them to; a
    module is imported when one of its names is first used."""
    names = sorted(exports)

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def dir_() -> list[str]:
        return names

    return names, getattr_, dir_
