"""What a status-table write decided: the answers of the run ledgers (`mm_contracts.ports.LaunchLedger`,
`OutcomeLedger`, `SweepLedger`). Pure data: the adapter (`mm_adapters.status_store`) returns them, logic and its
fakes read them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus


class LaunchDecision(StrEnum):
    GRANTED = "granted"
    DUPLICATE_IN_FLIGHT = "duplicate_in_flight"  # another delivery holds a live lease
    DUPLICATE_LAUNCHED = "duplicate_launched"  # a task was already started
    DUPLICATE_FINISHED = "duplicate_finished"  # the submission already has a final outcome
    WAITING = "waiting"  # the run waits for a capacity slot: no launch without one (the dispatcher admits it)


@dataclass(frozen=True)
class LaunchClaim:
    decision: LaunchDecision
    attempt: int
    record: LifecycleRecord | None = None

    @property
    def granted(self) -> bool:
        return self.decision is LaunchDecision.GRANTED


class OutcomeDecision(StrEnum):
    RECORDED = "recorded"  # first STOPPED event for this task
    ALREADY_RECORDED = "already_recorded"  # a duplicate event for the same task
    OTHER_TASK = "other_task"  # the item tracks a different task (stale event)
    STALE_TASK = "stale_task"  # the item is LAUNCHING on another attempt: an older attempt's task stopped
    UNKNOWN_SUBMISSION = "unknown_submission"  # no item: the pipeline never launched this submission


@dataclass(frozen=True)
class OutcomeRecordResult:
    decision: OutcomeDecision
    record: LifecycleRecord | None  # None only for UNKNOWN_SUBMISSION


@dataclass(frozen=True)
class DeadLetterResult:
    """What a launch-failure write did. Truthy when it was recorded (the bool the callers test).

    `report_due`: a v6 run dead-lettered *definitely* (no task can have started) got its terminal report due in
    the same write (decision 086): the caller hands it to the completion function, the sweeper re-drives it.
    """

    recorded: bool
    report_due: bool = False

    def __bool__(self) -> bool:
        return self.recorded


@dataclass(frozen=True)
class ReportClaim:
    granted: bool
    attempt: int  # > 1: an earlier attempt may have reached the API; check before posting
    report_status: ReportStatus | None
    # epoch s: the latest moment an earlier attempt may have reached the API (an ambiguous POST, or the end of
    # an expired lease whose holder died); a slow commit may land until some time after it (decision 074)
    ambiguous_at: int | None = None


class RelaunchDecision(StrEnum):
    GRANTED = "granted"  # LAUNCHED -> LAUNCH_FAILED for this task: send the relaunch
    RESEND = "resend"  # already LAUNCH_FAILED for this task, relaunch not yet sent (an earlier crash): send it
    ALREADY_SENT = "already_sent"  # a duplicate event: the relaunch was sent
    NOT_ELIGIBLE = "not_eligible"  # bound reached, no routed message, or the item does not track this task


@dataclass(frozen=True)
class RelaunchClaim:
    decision: RelaunchDecision
    record: LifecycleRecord | None = None


__all__ = [
    "DeadLetterResult",
    "LaunchClaim",
    "LaunchDecision",
    "OutcomeDecision",
    "OutcomeRecordResult",
    "RelaunchClaim",
    "RelaunchDecision",
    "ReportClaim",
]
