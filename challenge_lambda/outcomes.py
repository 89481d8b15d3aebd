"""What handling one SQS message can end in: the message itself, its outcomes, and the failures that send it back.

`RecordFailed` sends the message back to SQS (a batch item failure); SQS retries it and, after `MAX_RECEIVE_COUNT`
receives, moves it to the challenge DLQ. Reason codes are metric dimension values (`LaunchFailures` + Reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission

_MAX_DETAIL = 300
# The phase a v6 skip is reported on when the config cannot say which phases would have run: the one Topcoder's
# own processor marks (marathon-match-api-v6 `marathon-match-submission.handler.ts`, `markSubmissionScoringSkipped`
# defaults `testPhase` to provisional).
DEFAULT_SKIP_PHASE = ScoringPhase.PROVISIONAL


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    body: str
    receive_count: int

    @property
    def log_ids(self) -> dict[str, str]:
        return {"message_id": self.message_id}


class RecordOutcome(StrEnum):
    LAUNCHED = "launched"  # at least one run launched, every other one waiting or a duplicate
    WAITING = "waiting"  # a run waits for capacity (durably, in the capacity queue); the message is deleted
    CANCELLED = "cancelled"  # the run arrived superseded by a newer submission of its member (decision 095)
    DUPLICATE = "duplicate"  # acknowledged without RunTask
    SKIPPED = "skipped"  # v6: recorded as failed runs without a task, their terminal report handed on


class ThrottleReason(StrEnum):
    """`LaunchesThrottled` reasons: the run went back to WAITING in its place instead of failing."""

    PACED = "Paced"  # the pipeline's own RunTask pace had no token left within PACE_MAX_WAITS seconds
    THROTTLED = "Throttled"  # ECS answered ThrottlingException


# `RunsCancelled` reason of a run cancelled because its member submitted again.
SUPERSEDED_REASON = "superseded"


class SkipReason(StrEnum):
    """Member-visible reasons of a v6 skip decided here (the router's own arrive as `skip_reason`)."""

    NO_PHASE_TRIGGERED = "Marathon Match scoring skipped because no configured phase is triggered by a new submission."
    CONFIG_UNUSABLE = "Marathon Match scoring skipped because the challenge configuration could not be used"


class FailureReason(StrEnum):
    """Reason codes of failures decided here (RunTask reasons come from the launcher)."""

    INVALID_MESSAGE = "InvalidMessage"
    WRONG_CHALLENGE = "WrongChallenge"
    CONFIG_ERROR = "ConfigError"
    TOKEN_UNAVAILABLE = "TokenUnavailable"
    UNEXPECTED = "Unexpected"
    LAUNCH_IN_FLIGHT = "LaunchInFlight"  # another delivery holds a live launch lease: retried, not a failure
    URL_NOT_ALLOWED = "UrlNotAllowed"  # the submission URL fails the shared URL policy (decision 076)
    PHASE_NOT_CONFIGURED = "PhaseNotConfigured"  # the message names a phase the challenge config lacks (085)
    # The message's platform is not the challenge's (a replay or a hand-sent message past the router's
    # platform_mismatch skip): never launched, never reported on the wrong platform (decision 088).
    PLATFORM_MISMATCH = "PlatformMismatch"
    # A throttled run could not be put back in its capacity queue (its item changed meanwhile): SQS retries it.
    REQUEUE_FAILED = "RequeueFailed"


class RecordFailed(Exception):
    """The message goes back to SQS (batch item failure). The message is safe to log: no secrets."""

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = reason_code
        self.detail = detail[:_MAX_DETAIL]
        super().__init__(f"{reason_code}: {self.detail}")


class InFlightElsewhere(RecordFailed):
    """Back to SQS without counting a failure: a concurrent delivery is launching this run."""


class ConfigUnusable(RecordFailed):
    """The challenge config cannot be read or validated (`config_reason`: a `ConfigErrorReason` value)."""

    def __init__(self, config_reason: str, detail: str) -> None:
        super().__init__(FailureReason.CONFIG_ERROR.value, detail)
        self.config_reason = config_reason


def run_log_ids(submission: RoutedSubmission, run: RunKey) -> dict[str, str]:
    """The log keys of one run."""
    return {
        "submission_id": submission.submission_id,
        "run_id": run.run_id,
        "phase": run.phase.value,
        "kafka_record": submission.correlation_id,
    }
