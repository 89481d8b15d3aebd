"""Freeze a warm execution environment's heap once, after its first invocation (decision 113, fourth pass).

What is alive after the first invocation (modules, the pydantic validators, clients, the caches) stays alive as
long as the environment, yet the cyclic garbage collector walks all of it again in every old-generation collection
while records are routed. `gc.freeze()` moves every object it tracks to the permanent generation, which
collections ignore (https://docs.python.org/3/library/gc.html#gc.freeze). It is safe here because:
- it runs once, after a `gc.collect()`, so the init's and the first invocation's cyclic garbage is collected first,
  not kept forever;
- a frozen object is still freed by reference counting when its last reference goes; only the cycle collector
  skips it. The one invocation's objects still alive at the freeze (the event the runtime passed in: parsed JSON,
  which holds no cycles) are freed that way when the runtime drops them. Nothing allocated for a later record is
  frozen, because there is no later freeze.
"""

from __future__ import annotations

import gc


class HeapFreeze:
    """Call `after_invocation()` when an invocation has returned its result: the first call collects and freezes,
    later calls do nothing. An invocation that raised does not count (the next one freezes instead)."""

    def __init__(self) -> None:
        self._frozen = False

    @property
    def frozen(self) -> bool:
        return self._frozen

    def after_invocation(self) -> None:
        if self._frozen:
            return
        self._frozen = True
        gc.collect()
        gc.freeze()
