"""The outcome a run's status item recorded, as the report states it: the recorded outcome (a duplicate, a retry, the
sweeper's re-drive), a dead-lettered run's terminal failure, and the fallback for an item missing a field."""

from __future__ import annotations

from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.outcome import SUPERSEDED_REASON, Outcome, OutcomeCode, TestStatus


def unknown_outcome(record: LifecycleRecord) -> Outcome:
    """What a report-due event falls back to where the item lacks a field: a failure with the item's reason (a
    cancelled run: the cancel, with its reason)."""
    if record.state is SubmissionState.CANCELLED:
        return Outcome(
            code=OutcomeCode.CANCELLED,
            test_status=TestStatus.CANCELLED,
            reason=record.reason or SUPERSEDED_REASON,
            task_arn=record.task_arn,
        )
    return Outcome(
        code=OutcomeCode.FAILED,
        test_status=TestStatus.FAILED,
        reason=record.reason or "scorer run not started",
        task_arn=record.task_arn,
    )


DEAD_LETTERED_NOTE = "parked in the challenge DLQ; a redrive retries it"


def dead_lettered_outcome(record: LifecycleRecord) -> Outcome:
    """The terminal failure of a run that could not be started (decision 086): the launch failure's reason and
    where the run is now. No task ARN: no task of the run exists (one the item may name is an earlier attempt's)."""
    return Outcome(
        code=OutcomeCode.FAILED,
        test_status=TestStatus.FAILED,
        reason=f"{record.reason or 'the scorer task could not be started'}; {DEAD_LETTERED_NOTE}",
        task_arn=None,
    )


def recorded_outcome(record: LifecycleRecord, *, fallback: Outcome) -> Outcome:
    """The outcome as the status item recorded it (items recorded before testStatus existed: the event's)."""
    try:
        test_status = TestStatus(record.test_status) if record.test_status else fallback.test_status
    except ValueError:
        test_status = fallback.test_status
    return Outcome(
        code=OutcomeCode(record.state.value),
        test_status=test_status,
        reason=record.reason or fallback.reason,
        exit_code=record.exit_code,
        stop_code=record.stop_code or None,
        task_arn=record.task_arn or fallback.task_arn,
    )
