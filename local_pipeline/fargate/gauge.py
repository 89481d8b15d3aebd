"""The running gauge: tasks not yet STOPPED, per challenge and in total, now and the most at any one instant."""

from __future__ import annotations

ALL_CHALLENGES = "*"  # the RunningGauge key of every task at once (the environment's total)


class RunningGauge:
    """Tasks not yet STOPPED, per challenge and in total: now, and the most at any one instant.

    Updated at the two moments the number changes (RunTask accepted a task, the task stopped), under the fake's
    lock, so the maxima are exact, not sampled: what the capacity caps must never be exceeded by.
    """

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    def started(self, challenge_id: str | None) -> None:
        for key in (challenge_id or "?", ALL_CHALLENGES):
            self.now[key] = self.now.get(key, 0) + 1
            self.most[key] = max(self.most.get(key, 0), self.now[key])

    def stopped(self, challenge_id: str | None) -> None:
        for key in (challenge_id or "?", ALL_CHALLENGES):
            self.now[key] = max(0, self.now.get(key, 0) - 1)
