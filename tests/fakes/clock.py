"""Virtual time: a clock and a discrete-event scheduler on it (decision 077).

The clock only moves forward. `sleep(s)` advances it (a client's backoff inside one invocation takes virtual
time, so leases expire as they would), and the scheduler runs each event at its own instant or, if an
invocation already ran past it, as soon after as it can (never back in time).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

START_EPOCH = 1_800_000_000.0  # 2027-01-15: far from any real "now", so wall time can never leak in unnoticed


class VirtualClock:
    def __init__(self, start: float = START_EPOCH) -> None:
        self.now = start
        self.start = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds

    sleep = advance

    def advance_to(self, instant: float) -> None:
        self.now = max(self.now, instant)

    @property
    def elapsed(self) -> float:
        return self.now - self.start


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    action: Callable[[], object] = field(compare=False)
    label: str = field(compare=False, default="")
    periodic: bool = field(compare=False, default=False)


class Scheduler:
    """Events at virtual instants. `periodic` events (the sweeper's schedule) do not keep the run alive."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._heap: list[_Event] = []
        self._seq = itertools.count()
        self.log: list[tuple[float, str]] = []

    def at(self, instant: float, action: Callable[[], object], label: str = "", *, periodic: bool = False) -> None:
        heapq.heappush(self._heap, _Event(instant, next(self._seq), action, label, periodic))

    def after(self, delay: float, action: Callable[[], object], label: str = "") -> None:
        self.at(self.clock.now + max(0.0, delay), action, label)

    def defer(self, delay: float, action: Callable[[], object]) -> None:
        """The `Defer` shape fault_injection's HTTP adapter takes (a slow commit landing later)."""
        self.after(delay, action, "deferred")

    @property
    def busy(self) -> bool:
        """Whether any non-periodic event is pending."""
        return any(not event.periodic for event in self._heap)

    def next_at(self) -> float | None:
        return self._heap[0].at if self._heap else None

    def pop(self) -> _Event | None:
        return heapq.heappop(self._heap) if self._heap else None

    def run_one(self) -> bool:
        event = self.pop()
        if event is None:
            return False
        self.clock.advance_to(event.at)
        self.log.append((self.clock.now - self.clock.start, event.label))
        event.action()
        return True
