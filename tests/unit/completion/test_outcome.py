"""The outcome table: STOPPED event codes -> Outcome. Mapping is by stop code and exit code only."""

from __future__ import annotations

from typing import Any

import pytest

from completion_lambda.outcome import (
    FailureReason,
    decide_outcome,
    failure_reason,
    scorer_container,
    start_failure_is_transient,
)
from mm_contracts.models.ecs_event import EcsTaskStateChangeDetail
from mm_contracts.models.outcome import OutcomeCode, TestStatus
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import OUTCOME_UNKNOWN_STOP_REASON_PREFIX, TIMEOUT_STOP_REASON_PREFIX
from tests.builders import ecs_task_stopped_event

SCORER = "scorer"


def container(name: str, exit_code: int | None = None, reason: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "lastStatus": "STOPPED"}
    if exit_code is not None:
        data["exitCode"] = exit_code
    if reason is not None:
        data["reason"] = reason
    return data


def detail(**kwargs: Any) -> EcsTaskStateChangeDetail:
    return EcsTaskStateChangeDetail.model_validate(ecs_task_stopped_event(**kwargs)["detail"])


CASES = [
    pytest.param(
        {"exit_code": 0},
        OutcomeCode.SUCCEEDED,
        TestStatus.SUCCESS,
        0,
        None,
        id="exit-0",
    ),
    pytest.param(
        {"exit_code": 1},
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        1,
        FailureReason.NON_ZERO_EXIT,
        id="exit-1",
    ),
    pytest.param(
        {"exit_code": 137},
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        137,
        FailureReason.NON_ZERO_EXIT,
        id="exit-137-oom-or-sigkill",
    ),
    pytest.param(
        {
            "containers": [],
            "stop_code": "TaskFailedToStart",
            "stopped_reason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
        },
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        None,
        FailureReason.FAILED_TO_START,
        id="failed-to-start-empty-containers",
    ),
    pytest.param(
        {
            "exit_code": None,
            "stop_code": "TaskFailedToStart",
            "stopped_reason": "ResourceInitializationError: unable to pull secrets",
        },
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        None,
        FailureReason.FAILED_TO_START,
        id="failed-to-start-container-without-exit-code",
    ),
    pytest.param(
        {
            "exit_code": 143,
            "stop_code": "UserInitiated",
            "stopped_reason": f"{TIMEOUT_STOP_REASON_PREFIX} exceeded its deadline",
        },
        OutcomeCode.TIMED_OUT,
        TestStatus.FAILED,
        143,
        FailureReason.TIMED_OUT,
        id="user-initiated-timeout-marker",
    ),
    pytest.param(
        {"exit_code": 143, "stop_code": "UserInitiated", "stopped_reason": "Task stopped by user"},
        OutcomeCode.FAILED,
        TestStatus.CANCELLED,
        143,
        FailureReason.CANCELLED,
        id="user-initiated-plain-is-cancelled",
    ),
    pytest.param(
        {
            "exit_code": 143,
            "stop_code": "UserInitiated",
            "stopped_reason": f"operator note mentioning {TIMEOUT_STOP_REASON_PREFIX} later",
        },
        OutcomeCode.FAILED,
        TestStatus.CANCELLED,
        143,
        FailureReason.CANCELLED,
        id="user-initiated-marker-not-at-start-is-cancelled",
    ),
    pytest.param(
        {"exit_code": None, "stop_code": "SpotInterruption", "stopped_reason": "Your Spot Task was interrupted."},
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        None,
        FailureReason.INFRASTRUCTURE,
        id="spot-interruption",
    ),
    pytest.param(
        {"exit_code": 0, "stop_code": "TerminationNotice", "stopped_reason": "Task stopped due to maintenance"},
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        0,
        FailureReason.INFRASTRUCTURE,
        id="termination-notice-even-with-exit-0",
    ),
    pytest.param(
        {"exit_code": None, "stop_code": "ServiceSchedulerInitiated", "stopped_reason": "scaling activity"},
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        None,
        FailureReason.INFRASTRUCTURE,
        id="service-scheduler-initiated",
    ),
    pytest.param(
        {"exit_code": None, "stop_code": "EssentialContainerExited"},
        OutcomeCode.FAILED,
        TestStatus.FAILED,
        None,
        FailureReason.NO_EXIT_CODE,
        id="essential-exited-without-exit-code",
    ),
]


@pytest.mark.parametrize(("event_kwargs", "code", "test_status", "exit_code", "reason_code"), CASES)
def test_outcome_table(
    event_kwargs: dict[str, Any],
    code: OutcomeCode,
    test_status: TestStatus,
    exit_code: int | None,
    reason_code: str | None,
) -> None:
    # Given a STOPPED event with these codes
    stopped = detail(**event_kwargs)

    # When the outcome is decided
    outcome = decide_outcome(stopped, scorer_container_name=SCORER)

    # Then code, test status, exit code, stop code and task ARN are carried through
    assert outcome.code is code
    assert outcome.test_status is test_status
    assert outcome.exit_code == exit_code
    assert outcome.stop_code == stopped.stop_code
    assert outcome.task_arn == stopped.task_arn
    assert failure_reason(outcome) == reason_code
    assert outcome.reason


def test_failed_to_start_reason_carries_the_stopped_reason() -> None:
    stopped = detail(containers=[], stop_code="TaskFailedToStart", stopped_reason="CannotPullContainerError: x")
    assert "CannotPullContainerError: x" in decide_outcome(stopped, scorer_container_name=SCORER).reason


def test_infrastructure_interruption_reason_says_so() -> None:
    stopped = detail(exit_code=None, stop_code="SpotInterruption", stopped_reason="Spot interrupted")
    reason = decide_outcome(stopped, scorer_container_name=SCORER).reason
    assert "infrastructure interrupted" in reason
    assert "SpotInterruption" in reason


def test_sidecar_exit_does_not_decide_when_the_scorer_container_is_named() -> None:
    # Given a sidecar that exited 0 and the configured scorer that exited 2
    stopped = detail(containers=[container("log-router", 0), container(SCORER, 2)])
    # Then the scorer's exit code decides
    outcome = decide_outcome(stopped, scorer_container_name=SCORER)
    assert (outcome.code, outcome.exit_code) == (OutcomeCode.FAILED, 2)


def test_no_essential_container_match_falls_back_to_the_only_container() -> None:
    stopped = detail(containers=[container("renamed-scorer", 0)])
    outcome = decide_outcome(stopped, scorer_container_name=SCORER)
    assert (outcome.code, outcome.exit_code) == (OutcomeCode.SUCCEEDED, 0)


def test_several_containers_and_none_identified_is_failed_not_decided_by_the_first_exit_code() -> None:
    # Defect 6: the old fallback picked the first container with an exit code
    stopped = detail(containers=[container("init"), container("main", 3), container("other", 0)])
    assert scorer_container(stopped, SCORER) is None
    outcome = decide_outcome(stopped, scorer_container_name=SCORER)
    assert outcome.code is OutcomeCode.FAILED
    assert outcome.exit_code is None
    assert "scorer container not identified" in outcome.reason
    assert failure_reason(outcome) == FailureReason.SCORER_NOT_IDENTIFIED


def test_sidecar_exiting_0_never_makes_a_success_without_config() -> None:
    # Given a log router that exited 0 first and the scorer that exited 1, and no config (no container name)
    stopped = detail(containers=[container("log-router", 0), container("app", 1)])
    outcome = decide_outcome(stopped, scorer_container_name=None)
    assert outcome.code is OutcomeCode.FAILED
    assert "scorer container not identified" in outcome.reason


def test_the_container_whose_overrides_carry_the_submission_id_is_the_scorer() -> None:
    # Given the task's own overrides name container "app" (MM_SUBMISSION_ID), no config, a sidecar exiting 0
    stopped = detail(
        container_name="app",
        environment={TaskEnv.SUBMISSION_ID.value: "5f0a4ac9-3c0f-4fd4-9bd1-34c7bd9cf0a1"},
        containers=[container("log-router", 0), container("app", 1)],
    )
    assert scorer_container(stopped, None) == stopped.containers[1]
    outcome = decide_outcome(stopped, scorer_container_name=None)
    assert (outcome.code, outcome.exit_code) == (OutcomeCode.FAILED, 1)


def test_overrides_win_over_a_stale_configured_container_name() -> None:
    stopped = detail(
        container_name="app",
        environment={TaskEnv.SUBMISSION_ID.value: "5f0a4ac9-3c0f-4fd4-9bd1-34c7bd9cf0a1"},
        containers=[container(SCORER, 0), container("app", 4)],
    )
    assert decide_outcome(stopped, scorer_container_name=SCORER).exit_code == 4


def test_no_container_at_all_without_config_is_a_failure_without_exit_code() -> None:
    stopped = detail(containers=[])
    outcome = decide_outcome(stopped, scorer_container_name=None)
    assert outcome.code is OutcomeCode.FAILED
    assert outcome.exit_code is None
    assert failure_reason(outcome) == FailureReason.NO_EXIT_CODE


def test_outcome_unknown_marker_is_a_failure_never_a_timeout() -> None:
    stopped = detail(
        containers=[],
        stop_code="UserInitiated",
        stopped_reason=f"{OUTCOME_UNKNOWN_STOP_REASON_PREFIX} ECS no longer describes the task",
    )
    outcome = decide_outcome(stopped, scorer_container_name=SCORER)
    assert outcome.code is OutcomeCode.FAILED
    assert "outcome unknown" in outcome.reason
    assert failure_reason(outcome) == FailureReason.OUTCOME_UNKNOWN


@pytest.mark.parametrize(
    "reason",
    [
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref: "
        "dial tcp 10.0.0.1:443: i/o timeout",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
        "failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): "
        "RequestError: send request failed caused by: Post https://api.ecr.us-east-1.amazonaws.com/: "
        "dial tcp: i/o timeout",
        "Timeout waiting for network interface provisioning to complete.",
        "Capacity is unavailable at this time. Please try again later or in a different availability zone",
        "CannotPullContainerError: toomanyrequests: You have reached your pull rate limit",
    ],
)
def test_transient_start_failures(reason: str) -> None:
    assert start_failure_is_transient(reason)


@pytest.mark.parametrize(
    "reason",
    [
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/mm-scorer:v9: not found",
        "CannotPullContainerError: Error response from daemon: repository mm-scorer does not exist",
        "CannotPullContainerError: failed to resolve reference: unexpected status code 403 Forbidden",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
        "failed: unable to retrieve secret from asm: service call has been retried 1 time(s): "
        "AccessDeniedException",
        "ResourceInitializationError: unable to pull secrets or registry auth: ResourceNotFoundException: "
        "Secrets Manager can't find the specified secret.",
        "Essential container in task exited",  # not a start failure text we know
        "",
        None,
    ],
)
def test_permanent_or_unknown_start_failures_are_not_relaunched(reason: str | None) -> None:
    assert not start_failure_is_transient(reason)


def test_unknown_future_stop_code_is_decided_by_the_exit_code() -> None:
    assert decide_outcome(detail(exit_code=0, stop_code="SomethingNew"), scorer_container_name=SCORER).code is (
        OutcomeCode.SUCCEEDED
    )
    assert decide_outcome(detail(exit_code=9, stop_code="SomethingNew"), scorer_container_name=SCORER).code is (
        OutcomeCode.FAILED
    )
