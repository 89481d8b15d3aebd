"""Setup hooks that run inside a worker process after the real handler is imported.

Each one is a documented local deviation (docs/decisions/064), installed through the handler module's
own dependency-injection seam (`use_dependencies`), never by editing the function's code.
"""

from __future__ import annotations

from typing import Any

from mm_shared.models.lifecycle import LifecycleRecord
from mm_shared.status_store import StatusStore


class AdvancedDeadlineStore(StatusStore):
    """The status store whose *overdue query alone* looks `advance_seconds` into the future.

    With challenge timeouts at ChallengeConfig's minimum (30 s) and an advance of 27 s, the sweeper
    stops a run-long task after about 3 s. Every write (history, updatedAt) keeps the real clock.
    """

    def __init__(self, table_name: str, *, advance_seconds: float, **kwargs: Any) -> None:
        super().__init__(table_name, **kwargs)
        self.advance_seconds = advance_seconds

    def find_overdue(self, *, limit: int = 100) -> list[LifecycleRecord]:
        real_clock = self._clock
        self._clock = lambda: real_clock() + self.advance_seconds
        try:
            return super().find_overdue(limit=limit)
        finally:
            self._clock = real_clock


def advance_sweeper_deadlines(advance_seconds: float) -> None:
    """Sweeper worker: install the real sweeper dependencies with the advanced overdue query."""
    from completion_lambda import timeout_sweeper

    settings = timeout_sweeper.settings()
    timeout_sweeper.use_dependencies(
        timeout_sweeper.SweeperDependencies(
            settings, store=AdvancedDeadlineStore(settings.status_table_name, advance_seconds=advance_seconds)
        )
    )
