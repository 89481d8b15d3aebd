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
