"""From a STOPPED event to the run's outcome: a pure function of stop code, exit code and our own marker.

Mapping is by codes only. The one string we match is the StopTask reason the timeout sweeper writes
itself (`TIMEOUT_STOP_REASON_PREFIX`): ECS has no code that tells our timeout from a manual stop.
"""

from __future__ import annotations

from mm_shared.constants import TIMEOUT_STOP_REASON_PREFIX
from mm_shared.models.ecs_event import EcsContainer, EcsTaskStateChangeDetail, StopCode
from mm_shared.models.outcome import Outcome, OutcomeCode, TestStatus

# Stops caused by the platform, not by the submission or by us (decision 036).
INFRASTRUCTURE_STOP_CODES = frozenset(
    {StopCode.SPOT_INTERRUPTION, StopCode.TERMINATION_NOTICE, StopCode.SERVICE_SCHEDULER_INITIATED}
)


class FailureReason:
    """Stable machine-readable reason codes (the `Reason` metric dimension)."""

    NON_ZERO_EXIT = "non_zero_exit"
    FAILED_TO_START = "failed_to_start"
    CANCELLED = "cancelled"
    INFRASTRUCTURE = "infrastructure_interrupted"
    NO_EXIT_CODE = "no_exit_code"
    TIMED_OUT = "timed_out"


def essential_container(detail: EcsTaskStateChangeDetail, scorer_container_name: str | None) -> EcsContainer | None:
    """The configured scorer container; else the only container; else the first one with an exit code."""
    if scorer_container_name:
        named = detail.container(scorer_container_name)
        if named is not None:
            return named
    if len(detail.containers) == 1:
        return detail.containers[0]
    return next((c for c in detail.containers if c.exit_code is not None), None)


def decide_outcome(detail: EcsTaskStateChangeDetail, *, scorer_container_name: str | None) -> Outcome:
    container = essential_container(detail, scorer_container_name)
    exit_code = container.exit_code if container else None
    stop_code = detail.stop_code
    stopped_reason = (detail.stopped_reason or "").strip()

    def outcome(code: OutcomeCode, status: TestStatus, reason: str) -> Outcome:
        return Outcome(
            code=code,
            test_status=status,
            reason=reason,
            exit_code=exit_code,
            stop_code=stop_code,
            task_arn=detail.task_arn,
        )

    if stop_code == StopCode.TASK_FAILED_TO_START:
        return outcome(
            OutcomeCode.FAILED, TestStatus.FAILED, f"scorer task failed to start: {stopped_reason or 'no reason given'}"
        )
    if stop_code == StopCode.USER_INITIATED:
        if stopped_reason.startswith(TIMEOUT_STOP_REASON_PREFIX):
            return outcome(OutcomeCode.TIMED_OUT, TestStatus.FAILED, f"scorer run timed out ({stopped_reason})")
        return outcome(
            OutcomeCode.FAILED, TestStatus.CANCELLED, f"scorer run was stopped by an operator: {stopped_reason}"
        )
    if stop_code in INFRASTRUCTURE_STOP_CODES:
        return outcome(
            OutcomeCode.FAILED,
            TestStatus.FAILED,
            f"the infrastructure interrupted the scorer run ({stop_code}): {stopped_reason}; please resubmit",
        )
    # EssentialContainerExited (or a stop code AWS adds later): the scorer's exit code decides.
    if exit_code == 0:
        return outcome(OutcomeCode.SUCCEEDED, TestStatus.SUCCESS, "scorer exited 0")
    if exit_code is not None:
        return outcome(OutcomeCode.FAILED, TestStatus.FAILED, f"scorer exited with code {exit_code}")
    container_reason = f" ({container.reason})" if container and container.reason else ""
    return outcome(
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        f"scorer container stopped without an exit code ({stop_code or 'no stop code'}){container_reason}",
    )


def failure_reason(outcome: Outcome) -> str | None:
    """The reason code of a non-successful outcome; None for success."""
    if outcome.code is OutcomeCode.SUCCEEDED:
        return None
    if outcome.code is OutcomeCode.TIMED_OUT:
        return FailureReason.TIMED_OUT
    if outcome.stop_code == StopCode.TASK_FAILED_TO_START:
        return FailureReason.FAILED_TO_START
    if outcome.test_status is TestStatus.CANCELLED:
        return FailureReason.CANCELLED
    if outcome.stop_code in INFRASTRUCTURE_STOP_CODES:
        return FailureReason.INFRASTRUCTURE
    if outcome.exit_code is not None:
        return FailureReason.NON_ZERO_EXIT
    return FailureReason.NO_EXIT_CODE
