"""Outcome of a scorer run, decided by the completion handler from the STOPPED event."""

from __future__ import annotations

from enum import StrEnum

from mm_contracts.models.base import ContractModel

# The reason of a superseded run (decision 095): the challenge processor's StopTask reason starts with it (and names
# the newer submission), the sweeper stops a superseded run's task with it, the completion function records it.
SUPERSEDED_REASON = "Superseded by a newer submission"


class OutcomeCode(StrEnum):
    SUCCEEDED = "SUCCEEDED"  # essential container exited 0
    FAILED = "FAILED"  # non-zero exit, failed to start, cancelled, interrupted
    TIMED_OUT = "TIMED_OUT"  # stopped by the pipeline's own timeout sweeper
    CANCELLED = "CANCELLED"  # superseded by the member's newer submission (a stopped task or a cancelled wait)


class TestStatus(StrEnum):
    """Topcoder MM tooling's `metadata.testStatus` vocabulary."""

    __test__ = False  # not a pytest class

    IN_PROGRESS = "IN PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Outcome(ContractModel):
    code: OutcomeCode
    test_status: TestStatus
    reason: str
    exit_code: int | None = None
    stop_code: str | None = None
    # None: the run never had a task (a v6 submission the pipeline skipped, decision 086).
    task_arn: str | None
