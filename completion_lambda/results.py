"""What one completion invocation answers (`CompletionResult`, with its `Disposition` and `IgnoreReason`), and the
errors that fail it on purpose so the event is retried (a report deferred, in progress elsewhere, or unsettled)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mm_contracts.models.outcome import Outcome, OutcomeCode
from mm_contracts.models.phase import RunKey, ScoringPhase


class IgnoreReason(StrEnum):
    """Why an event was not acted on (the `Reason` dimension of EventsIgnored)."""

    NOT_TASK_STATE_CHANGE = "not_task_state_change"
    NOT_STOPPED = "not_stopped"
    FOREIGN_TASK = "foreign_task"  # startedBy is not ours
    TASK_ARN_INVALID = "task_arn_invalid"
    SUBMISSION_UNIDENTIFIED = "submission_unidentified"  # neither overrides nor tags name the submission
    SUBMISSION_ID_INVALID = "submission_id_invalid"  # neither a canonical v5 UUID nor a v6 nanoid (decision 076)
    CHALLENGE_ID_INVALID = "challenge_id_invalid"
    PHASE_INVALID = "phase_invalid"  # MM_PHASE (or the Phase tag) is not EXAMPLE, PROVISIONAL or SYSTEM
    # No phase on the task, and the challenge's config does not have exactly one phase to assume (or is unusable)
    PHASE_UNIDENTIFIED = "phase_unidentified"
    LAUNCH_ATTEMPT_INVALID = "launch_attempt_invalid"  # MM_LAUNCH_ATTEMPT present but not a positive integer
    UNKNOWN_SUBMISSION = "unknown_submission"  # no status item: the pipeline never launched (or skipped) the run
    OTHER_TASK = "other_task"  # the status item tracks a different task (stale event)
    STALE_TASK = "stale_task"  # the item is LAUNCHING on a newer attempt than the stopped task's
    RUN_NOT_FINAL = "run_not_final"  # a report-due event for a run without a recorded outcome


class Disposition(StrEnum):
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    NOT_REQUIRED = "not_required"  # success without a configured success report
    REPORTED = "reported"
    ALREADY_REPORTED = "already_reported"  # a retried attempt found its earlier report
    REJECTED = "rejected"
    RELAUNCHED = "relaunched"  # a transient start failure sent back to the challenge queue (decision 072)


@dataclass(frozen=True)
class CompletionResult:
    disposition: Disposition
    reason: str = ""
    submission_id: str | None = None
    outcome: OutcomeCode | None = None
    review_id: str | None = None  # the review (v5) or review summation (v6) id
    phase: ScoringPhase | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "disposition": self.disposition.value,
            "reason": self.reason,
            "submissionId": self.submission_id,
            "phase": self.phase.value if self.phase else None,
            "runId": RunKey(self.submission_id, self.phase).run_id if self.submission_id and self.phase else None,
            "outcome": self.outcome.value if self.outcome else None,
            "reviewId": self.review_id,
        }


class ReportDeferredError(RuntimeError):
    """The outcome is recorded but cannot be reported yet (e.g. no usable challenge config).

    Raised so the event is retried and finally kept in the rule target's DLQ; the report stays PENDING,
    so a redrive (or the sweeper's re-drive) after the cause is fixed reports it.
    """


class ReportInProgressError(RuntimeError):
    """Another invocation holds the report lease: retry later (its holder may have died mid-report)."""


class ReportOutcomeUnsettledError(ReportInProgressError):
    """An earlier send's outcome is unknown and a slow commit may still land: look later, never send now."""


def not_required_result(run: RunKey, outcome: Outcome) -> CompletionResult:
    """The result of a run whose report is not needed (a success the scorer reports itself, a v5 cancel)."""
    why = (
        "cancelled: the v5 review API has no cancelled status (decision 095)"
        if outcome.code is OutcomeCode.CANCELLED
        else "scorer reports its own scores"
    )
    return CompletionResult(Disposition.NOT_REQUIRED, why, run.submission_id, outcome.code, phase=run.phase)
