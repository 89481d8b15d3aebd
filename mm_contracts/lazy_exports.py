"""A package index whose names load on first use (PEP 562 module `__getattr__`), in one place.

`mm_contracts.models`, `mm_contracts.settings` and `mm_adapters.topcoder` index names that live in submodules; a
function's cold start must not build the models or clients of the names it never uses (decision 112). Standard
library only, so any package may use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, module_of: Mapping[str, str]) -> Callable[[str], Any]:
    """The package's `__getattr__`: `name` from the module `module_of[name]` (a dotted path), imported then."""

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return __getattr__


__all__ = ["lazy_exports"]
