"""From a STOPPED event to the run's outcome: a pure function of stop code, exit code and our own markers.

Mapping is by codes only. The strings we match are the StopTask reason the timeout sweeper writes itself
(`TIMEOUT_STOP_REASON_PREFIX`), the reason of a synthetic event for a task whose outcome nobody can know any
more (`OUTCOME_UNKNOWN_STOP_REASON_PREFIX`), and, only to decide whether a start failure is worth a relaunch,
the documented `stoppedReason` texts of ECS start failures (`start_failure_is_transient`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mm_contracts.models.ecs_event import EcsContainer, EcsTaskStateChangeDetail, StopCode
from mm_contracts.models.outcome import SUPERSEDED_REASON, Outcome, OutcomeCode, TestStatus
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import OUTCOME_UNKNOWN_STOP_REASON_PREFIX, TIMEOUT_STOP_REASON_PREFIX

# Stops caused by the platform, not by the submission or by us (decision 036).
INFRASTRUCTURE_STOP_CODES = frozenset(
    {StopCode.SPOT_INTERRUPTION, StopCode.TERMINATION_NOTICE, StopCode.SERVICE_SCHEDULER_INITIATED}
)

SCORER_NOT_IDENTIFIED = "scorer container not identified"
# The stops a cancel request can cause: our own StopTask (UserInitiated), or one that hit the task before it started.
CANCELLABLE_STOP_CODES = frozenset({StopCode.USER_INITIATED, StopCode.TASK_FAILED_TO_START})

# TaskFailedToStart reasons that are usually transient (AWS, "Amazon ECS stopped tasks error messages":
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html, with the pages it
# links for CannotPullContainerError and ResourceInitializationError). Matched case-insensitively (decision 072).
TRANSIENT_START_FAILURE_MARKERS = (
    "CannotPullContainerError",  # registry or network trouble while pulling the image
    "ResourceInitializationError",  # ENI, secrets, registry auth or log setup before the container starts
    "network interface",  # "Timeout waiting for network interface provisioning to complete."
    "unable to pull secrets",  # "unable to pull secrets or registry auth" (network path to SSM/Secrets Manager/ECR)
    "Timeout",  # any provisioning timeout ("i/o timeout", "context deadline exceeded" below)
    "deadline exceeded",
    "capacity",  # Fargate: "Capacity is unavailable at this time. Please try again later or in a different AZ"
    "toomanyrequests",  # registry throttling (HTTP 429)
    "RequestLimitExceeded",
    "ThrottlingException",
)
# ...unless the reason says the thing itself is missing or forbidden: a relaunch would fail the same way, so the
# member hears about it at once. Compared with spaces removed ("not found" and "ResourceNotFoundException").
PERMANENT_START_FAILURE_MARKERS = (
    "notfound",  # image tag or repository, secret or parameter does not exist
    "manifestunknown",
    "doesnotexist",
    "accessdenied",  # "AccessDeniedException", "pull access denied": the execution role lacks a permission
    "forbidden",
    "unauthorized",
    "invalidparameter",
    "invalidreferenceformat",
    "nobasicauthcredentials",
)
_SPACES = re.compile(r"\s+")


class FailureReason:
    """Stable machine-readable reason codes (the `Reason` metric dimension)."""

    NON_ZERO_EXIT = "non_zero_exit"
    FAILED_TO_START = "failed_to_start"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # OutcomeCode.CANCELLED: a newer submission of the member replaced the run
    INFRASTRUCTURE = "infrastructure_interrupted"
    NO_EXIT_CODE = "no_exit_code"
    TIMED_OUT = "timed_out"
    SCORER_NOT_IDENTIFIED = "scorer_not_identified"
    OUTCOME_UNKNOWN = "outcome_unknown"


def start_failure_is_transient(stopped_reason: str | None) -> bool:
    """Whether a TaskFailedToStart is worth a bounded relaunch (decision 072)."""
    reason = (stopped_reason or "").strip()
    if not reason:
        return False
    squashed = _SPACES.sub("", reason).lower()
    if any(marker in squashed for marker in PERMANENT_START_FAILURE_MARKERS):
        return False
    lowered = reason.lower()
    return any(marker.lower() in lowered for marker in TRANSIENT_START_FAILURE_MARKERS)


def scorer_container_override_name(detail: EcsTaskStateChangeDetail) -> str | None:
    """The container whose RunTask overrides carry MM_SUBMISSION_ID: the scorer, by the task's own word."""
    for override in detail.overrides.container_overrides:
        if override.name and any(pair.name == TaskEnv.SUBMISSION_ID.value for pair in override.environment):
            return override.name
    return None


def scorer_container(detail: EcsTaskStateChangeDetail, configured_name: str | None) -> EcsContainer | None:
    """The scorer container: named by the task's overrides, else by the config, else the only container.

    Never "the first container with an exit code": with a sidecar (a log router exiting 0) that would let the
    sidecar decide the outcome (defect 6). Several containers and none identified -> None.
    """
    for name in (scorer_container_override_name(detail), configured_name):
        if name:
            named = detail.container(name)
            if named is not None:
                return named
    if len(detail.containers) == 1:
        return detail.containers[0]
    return None


def decide_outcome(
    detail: EcsTaskStateChangeDetail, *, scorer_container_name: str | None, cancel_requested: bool = False
) -> Outcome:
    """`cancel_requested`: the run's item asks for a cancel (a newer submission superseded it, decision 095). A
    task stopped for it is CANCELLED; one that ended by itself first keeps its own outcome (a scorer that exited
    has posted what it found)."""
    container = scorer_container(detail, scorer_container_name)
    exit_code = container.exit_code if container else None

    def outcome(code: OutcomeCode, status: TestStatus, reason: str) -> Outcome:
        return Outcome(
            code=code,
            test_status=status,
            reason=reason,
            exit_code=exit_code,
            stop_code=detail.stop_code,
            task_arn=detail.task_arn,
        )

    stopped = _stopped_before_its_end(detail, outcome, cancel_requested=cancel_requested)
    if stopped is not None:
        return stopped
    if container is None and len(detail.containers) > 1:
        return outcome(
            OutcomeCode.FAILED,
            TestStatus.FAILED,
            f"{SCORER_NOT_IDENTIFIED} among {len(detail.containers)} containers ({detail.stop_code or 'no stop code'})",
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
        f"scorer container stopped without an exit code ({detail.stop_code or 'no stop code'}){container_reason}",
    )


def _stopped_before_its_end(
    detail: EcsTaskStateChangeDetail,
    outcome: Callable[[OutcomeCode, TestStatus, str], Outcome],
    *,
    cancel_requested: bool,
) -> Outcome | None:
    """The outcome of a task that did not run to its own end: cancelled, unknown (a synthetic event), failed to
    start, stopped by us or an operator, interrupted by the platform. None: the scorer's exit decides."""
    stop_code = detail.stop_code
    stopped_reason = (detail.stopped_reason or "").strip()
    if cancel_requested and stop_code in CANCELLABLE_STOP_CODES:
        return outcome(
            OutcomeCode.CANCELLED,
            TestStatus.CANCELLED,
            stopped_reason if stopped_reason.startswith(SUPERSEDED_REASON) else SUPERSEDED_REASON,
        )
    if stopped_reason.startswith(OUTCOME_UNKNOWN_STOP_REASON_PREFIX):
        # A synthetic event: ECS no longer knows the task and we did not stop it (decision 073). Never invent one.
        return outcome(
            OutcomeCode.FAILED, TestStatus.FAILED, f"scorer outcome unknown, please resubmit ({stopped_reason})"
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
    return None


def failure_reason(outcome: Outcome) -> str | None:
    """The reason code of a non-successful outcome; None for success."""
    if outcome.code is OutcomeCode.SUCCEEDED:
        return None
    if outcome.code is OutcomeCode.TIMED_OUT:
        return FailureReason.TIMED_OUT
    if outcome.code is OutcomeCode.CANCELLED:
        return FailureReason.SUPERSEDED
    if outcome.reason.startswith("scorer outcome unknown"):
        return FailureReason.OUTCOME_UNKNOWN
    if outcome.stop_code == StopCode.TASK_FAILED_TO_START:
        return FailureReason.FAILED_TO_START
    if outcome.test_status is TestStatus.CANCELLED:
        return FailureReason.CANCELLED
    if outcome.stop_code in INFRASTRUCTURE_STOP_CODES:
        return FailureReason.INFRASTRUCTURE
    if outcome.exit_code is not None:
        return FailureReason.NON_ZERO_EXIT
    if outcome.reason.startswith(SCORER_NOT_IDENTIFIED):
        return FailureReason.SCORER_NOT_IDENTIFIED
    return FailureReason.NO_EXIT_CODE
