"""One function's dependencies in this process: built on first use, replaceable by a test (decision 099).

Every function's `wiring.py` keeps its two public names as one-liners over a slot:

    _slot = DependencySlot(lambda: RouterDependencies(RouterSettings.from_env()))

    def dependencies() -> RouterDependencies:
        return _slot.get()

    def use_dependencies(deps: RouterDependencies | None) -> None:
        _slot.use(deps)

No I/O: `build` runs on the first `get()` (never at import time), and `use(None)` forgets, so the next `get()`
builds again from the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DependencySlot(Generic[T]):
    """Holds one value of `T`: `build()`'s on first use, or the one `use()` put there."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value

    def use(self, deps: T | None) -> None:
        """Install `deps` (a test's fakes), or forget with None: the next `get()` builds from the environment."""
        self._value = deps


__all__ = ["DependencySlot"]
