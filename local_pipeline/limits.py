"""How long a local run may take (decision 079): progress-based, so it scales with what this machine can do.

A run ends OK once every record is final and the pipeline stayed quiescent for the settle period. It fails
when no record changed state for the stall period (`--stall`), or at a hard cap scaled by the number of
records (`--timeout`), generous enough for this 2-core machine's ~5 submissions/s ten times over.
"""

from __future__ import annotations

DEFAULT_STALL_SECONDS = 120.0
HARD_CAP_BASE_SECONDS = 300.0
HARD_CAP_SECONDS_PER_RECORD = 2.0
# After the pipeline is quiet, the report waits at least this long (and at least the slowest configured API
# commit delay or STOPPED-event delay, plus the margin) for late commits and events before it reads the API.
SETTLE_FLOOR_SECONDS = 1.0
SETTLE_MARGIN_SECONDS = 1.0


def default_hard_cap_seconds(records: int) -> float:
    """The default hard cap of a run of `records` records (`--timeout` overrides it)."""
    return HARD_CAP_BASE_SECONDS + HARD_CAP_SECONDS_PER_RECORD * records


QUIET = "quiet"  # every record final and nothing in flight for the settle period: the run is done
DEADLINE = "deadline"  # the hard cap passed
STALLED = "stalled"  # no record changed state for the stall period


class RunWatch:
    """Decides, look by look, when a run ends: quiet for the settle period, at the hard cap, or stalled.

    A look gives the run's progress signature (it changes whenever any record moves or the feed does) and what is
    still busy (None: quiet). The report is read only once the run stayed quiet for the settle period, so a commit
    or event that lands late (a slow API commit, a delayed STOPPED event) is still seen.
    """

    def __init__(self, *, started_at: float, hard_cap_seconds: float, stall_seconds: float) -> None:
        self.deadline = started_at + hard_cap_seconds
        self.stall_seconds = stall_seconds
        self._last_signature: object = None
        self._last_progress = started_at
        self._quiet_since: float | None = None

    def look(self, signature: object, busy: str | None, settle_seconds: float, now: float) -> str | None:
        """QUIET, DEADLINE or STALLED when the run ends at this look, else None."""
        if signature != self._last_signature:
            self._last_signature, self._last_progress = signature, now
        if busy is None:
            self._quiet_since = self._quiet_since if self._quiet_since is not None else now
            if now - self._quiet_since >= settle_seconds:
                return QUIET
        else:
            self._quiet_since = None
        if now >= self.deadline:
            return DEADLINE
        if now - self._last_progress >= self.stall_seconds:
            return STALLED
        return None
