"""challenge_lambda.launcher: the RunTask request, and how each ECS answer is classified."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from challenge_lambda.launcher import (
    EcsLauncher,
    LaunchErrorKind,
    LaunchOutcomeUnknown,
    LaunchRejected,
    RunTaskRequest,
    build_run_task_request,
)
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.models.task import EcsRunnerEnv
from tests.unit.challenge.helpers import (
    ACCOUNT,
    CHALLENGE_ID,
    REGION,
    REVIEW_TYPE_ID,
    config_document,
    env_of,
    routed_submission,
    v6_config_document,
    v6_submission,
)

TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/mm-scorers/0123456789abcdef0123456789abcdef"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mm-scorers"


def _request(**config_overrides: Any) -> RunTaskRequest:
    submission = routed_submission(submission_id="3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", legacy_challenge_id=30_054_321)
    config = ChallengeConfig.model_validate(config_document(**config_overrides))
    return build_run_task_request(submission, config, environment_name="dev", attempt=2)


# ------------------------------------------------------------------ request
def test_request_is_one_fargate_task_with_private_awsvpc_networking() -> None:
    kwargs = _request().kwargs

    assert kwargs["launchType"] == "FARGATE"
    assert kwargs["count"] == 1
    assert kwargs["cluster"] == "mm-scorers"
    assert kwargs["taskDefinition"] == "mm-scorer-example:3"
    assert kwargs["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
            "securityGroups": ["sg-0123456789abcdef0"],
            "assignPublicIp": "DISABLED",
        }
    }
    assert "propagateTags" not in kwargs


def test_request_identity_started_by_client_token_and_tags() -> None:
    request = _request()

    assert request.started_by == f"mm-processor/dev/{CHALLENGE_ID}" == request.kwargs["startedBy"]
    assert request.client_token == "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d-PROVISIONAL-2" == request.kwargs["clientToken"]
    assert len(request.client_token) <= 64
    assert {tag["key"]: tag["value"] for tag in request.kwargs["tags"]} == {
        "ChallengeId": CHALLENGE_ID,
        "SubmissionId": "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "Phase": "PROVISIONAL",
        "ScorerType": "mm-scorer-java",
        "Environment": "dev",
        "Project": "mm-processor",
    }


def test_container_override_environment() -> None:
    request = _request()

    assert request.kwargs["overrides"]["containerOverrides"][0]["name"] == "scorer"
    assert env_of(request) == {
        "MM_SUBMISSION_ID": "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "MM_LAUNCH_ATTEMPT": "2",
        "MM_CHALLENGE_ID": CHALLENGE_ID,
        "MM_PHASE": "PROVISIONAL",  # the single phase of a config without phase configs (its testType)
        "MM_PHASE_START_SEED": "1",
        "MM_PHASE_NUMBER_OF_TESTS": "1",
        "MM_PLATFORM": "v5",
        "MM_LEGACY_CHALLENGE_ID": "30054321",
        "MM_SUBMISSION_URL": "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        "MM_MEMBER_ID": "40158994",
        "MM_SCORER_TYPE": "mm-scorer-java",
        "MM_CORRELATION_ID": "submission.notification.create-0-42",
        "MM_TIMEOUT_SECONDS": "1800",
        "MM_ENVIRONMENT": "dev",
    }


def test_cpu_and_memory_overrides_only_when_configured() -> None:
    assert set(_request().kwargs["overrides"]) == {"containerOverrides"}

    overrides = _request(cpu=2048, memoryMb=8192).kwargs["overrides"]

    assert (overrides["cpu"], overrides["memory"]) == ("2048", "8192")


def test_security_groups_omitted_when_not_configured() -> None:
    vpc = _request(securityGroups=None).kwargs["networkConfiguration"]["awsvpcConfiguration"]

    assert "securityGroups" not in vpc
    assert vpc["assignPublicIp"] == "DISABLED"


def test_repr_and_redaction_never_show_secrets() -> None:
    submission = routed_submission()
    config = ChallengeConfig.model_validate(config_document())
    request = build_run_task_request(
        submission,
        config,
        environment_name="dev",
        attempt=1,
        credential_environment=(("MM_M2M_TOKEN", "tok-123"),),
        secret_values=("tok-123",),
    )

    assert "tok-123" not in repr(request)
    assert request.redact("value tok-123 echoed") == "value *** echoed"


# ------------------------------------------------------------------ phases and the ecs-runner names (085, 087)
def _v6_request(
    phase: ScoringPhase, *, attempt: int = 1, scorer_environment: str | None = None, **submission: Any
) -> RunTaskRequest:
    config = ChallengeConfig.model_validate(v6_config_document(scorerEnvironment=scorer_environment))
    phase_config = config.phase_config(phase)
    assert phase_config is not None
    routed = v6_submission(submission_id="3G9RNcDiRX4ioW", **submission)
    return build_run_task_request(routed, config, phase_config, environment_name="dev", attempt=attempt)


def test_each_phase_is_its_own_task_with_its_seeds_timeout_token_and_tag() -> None:
    example, provisional = _v6_request(ScoringPhase.EXAMPLE), _v6_request(ScoringPhase.PROVISIONAL)

    assert (example.client_token, provisional.client_token) == (
        "3G9RNcDiRX4ioW-EXAMPLE-1",
        "3G9RNcDiRX4ioW-PROVISIONAL-1",
    )
    example_env, provisional_env = env_of(example), env_of(provisional)
    assert {name: example_env[name] for name in ("MM_PHASE", "MM_PHASE_START_SEED", "MM_PHASE_NUMBER_OF_TESTS")} == {
        "MM_PHASE": "EXAMPLE",
        "MM_PHASE_START_SEED": "1",
        "MM_PHASE_NUMBER_OF_TESTS": "10",
    }
    assert (provisional_env["MM_PHASE_START_SEED"], provisional_env["MM_PHASE_NUMBER_OF_TESTS"]) == ("1001", "100")
    assert (example_env["MM_TIMEOUT_SECONDS"], provisional_env["MM_TIMEOUT_SECONDS"]) == ("600", "2400")
    assert (example_env["MM_PLATFORM"], example_env["MM_MEMBER_HANDLE"]) == ("v6", "tourist")
    assert {tag["key"]: tag["value"] for tag in provisional.kwargs["tags"]}["Phase"] == "PROVISIONAL"


def test_a_phase_without_its_own_timeout_gets_the_challenge_timeout() -> None:
    env = env_of(_v6_request(ScoringPhase.SYSTEM))

    assert (env["MM_PHASE"], env["MM_TIMEOUT_SECONDS"]) == ("SYSTEM", "1800")


def test_member_handle_only_when_known() -> None:
    assert "MM_MEMBER_HANDLE" not in env_of(_v6_request(ScoringPhase.EXAMPLE, member_handle=None))


def test_several_phases_and_no_phase_named_is_refused() -> None:
    config = ChallengeConfig.model_validate(v6_config_document())

    with pytest.raises(ValueError, match="one named phase"):
        build_run_task_request(v6_submission(), config, environment_name="dev", attempt=1)


def test_ecs_runner_names_only_with_the_option_and_with_topcoders_value_forms() -> None:
    runner_names = {name.value for name in EcsRunnerEnv}
    assert not runner_names & set(env_of(_v6_request(ScoringPhase.EXAMPLE)))

    env = env_of(_v6_request(ScoringPhase.EXAMPLE, scorer_environment="topcoder_ecs_runner"))

    # marathon-match-api-v6 ecs.service.ts launchScorerTask: the same names, the same value forms.
    assert {name: env[name] for name in runner_names} == {
        "TESTER_CONFIG_ID": CHALLENGE_ID,
        "SUBMISSION_ID": "3G9RNcDiRX4ioW",
        "REVIEW_TYPE_ID": REVIEW_TYPE_ID,
        "TEST_PHASE": "example",
        "PHASE_CONFIG_TYPE": "EXAMPLE",
        "PHASE_START_SEED": "1",
        "PHASE_NUMBER_OF_TESTS": "10",
        "MEMBER_ID": "88770025",
    }
    assert env["MM_PHASE"] == "EXAMPLE"  # the pipeline's own names stay: the completion function reads them
    assert "ACCESS_TOKEN" not in env


@pytest.mark.parametrize("phase", list(ScoringPhase))
def test_test_phase_is_the_lower_case_config_type(phase: ScoringPhase) -> None:
    env = env_of(_v6_request(phase, scorer_environment="topcoder_ecs_runner"))

    assert (env["TEST_PHASE"], env["PHASE_CONFIG_TYPE"]) == (phase.value.lower(), phase.value)


# ------------------------------------------------------------------ send + classify
def _stubbed() -> tuple[EcsLauncher, Stubber]:
    client = boto3.client("ecs", region_name=REGION)
    return EcsLauncher(client), Stubber(client)


def test_task_returned_is_a_launch() -> None:
    launcher, stub = _stubbed()
    request = _request()
    stub.add_response(
        "run_task", {"tasks": [{"taskArn": TASK_ARN, "clusterArn": CLUSTER_ARN}], "failures": []}, request.kwargs
    )

    with stub:
        result = launcher.run_task(request)

    assert (result.task_arn, result.cluster_arn, result.adopted) == (TASK_ARN, CLUSTER_ARN, False)
    stub.assert_no_pending_responses()


def test_failures_without_task_is_a_transient_rejection() -> None:
    launcher, stub = _stubbed()
    stub.add_response(
        "run_task", {"tasks": [], "failures": [{"arn": CLUSTER_ARN, "reason": "Capacity is unavailable at this time"}]}
    )

    with stub, pytest.raises(LaunchRejected) as raised:
        launcher.run_task(_request())

    assert raised.value.kind is LaunchErrorKind.TRANSIENT
    assert raised.value.reason_code == "Capacity is unavailable at this time"
    assert "Capacity is unavailable" in raised.value.detail


@pytest.mark.parametrize(
    ("code", "status", "reason_code", "kind"),
    [
        ("ThrottlingException", 400, "Throttling", LaunchErrorKind.THROTTLED),
        ("InvalidParameterException", 400, "InvalidParameterException", LaunchErrorKind.PERMANENT),
        ("ClientException", 400, "ClientException", LaunchErrorKind.PERMANENT),
        ("AccessDeniedException", 400, "AccessDeniedException", LaunchErrorKind.PERMANENT),
        ("SomethingElse", 400, "SomethingElse", LaunchErrorKind.PERMANENT),
    ],
)
def test_throttling_and_other_4xx_are_definite_rejections(
    code: str, status: int, reason_code: str, kind: LaunchErrorKind
) -> None:
    launcher, stub = _stubbed()
    stub.add_client_error("run_task", service_error_code=code, service_message="nope", http_status_code=status)

    with stub, pytest.raises(LaunchRejected) as raised:
        launcher.run_task(_request())

    assert (raised.value.reason_code, raised.value.kind) == (reason_code, kind)
    # A refused call proves nothing about an earlier, ambiguous call with the same clientToken.
    assert raised.value.token_settled is False


@pytest.mark.parametrize(
    ("code", "status"),
    [("ServerException", 500), ("InternalFailure", 500), ("SomethingNew", 503), ("ServiceUnavailable", 503)],
)
def test_a_server_error_may_follow_a_started_task_so_the_outcome_is_unknown(code: str, status: int) -> None:
    """ECS_Idempotency: "a timeout or a server error can occur after the resources are mutated"."""
    launcher, stub = _stubbed()
    stub.add_client_error("run_task", service_error_code=code, service_message="oops", http_status_code=status)

    with stub, pytest.raises(LaunchOutcomeUnknown) as raised:
        launcher.run_task(_request())

    assert raised.value.reason_code == code


def test_a_rejection_after_botocore_retries_is_ambiguous() -> None:
    """An earlier, retried try of the same call may have been a 5xx or a read timeout."""
    launcher, stub = _stubbed()
    stub.add_client_error(
        "run_task",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        response_meta={"RetryAttempts": 2},
    )

    with stub, pytest.raises(LaunchOutcomeUnknown):
        launcher.run_task(_request())


def test_only_failures_settle_the_client_token() -> None:
    launcher, stub = _stubbed()
    stub.add_response("run_task", {"tasks": [], "failures": [{"arn": CLUSTER_ARN, "reason": "RESOURCE:MEMORY"}]})

    with stub, pytest.raises(LaunchRejected) as raised:
        launcher.run_task(_request())

    assert raised.value.token_settled is True


def test_conflict_naming_the_task_adopts_it_instead_of_launching_again() -> None:
    launcher, stub = _stubbed()
    stub.add_client_error(
        "run_task",
        service_error_code="ConflictException",
        service_message="The clientToken is already in use with a different RunTask request.",
        http_status_code=409,
        modeled_fields={"resourceIds": [TASK_ARN]},
    )

    with stub:
        result = launcher.run_task(_request())

    assert (result.task_arn, result.cluster_arn, result.adopted) == (TASK_ARN, CLUSTER_ARN, True)


def test_conflict_without_task_is_an_unknown_outcome() -> None:
    launcher, stub = _stubbed()
    stub.add_client_error("run_task", service_error_code="ConflictException", http_status_code=409)

    with stub, pytest.raises(LaunchOutcomeUnknown):
        launcher.run_task(_request())


def test_answer_without_task_or_failures_is_an_unknown_outcome() -> None:
    launcher, stub = _stubbed()
    stub.add_response("run_task", {"tasks": [], "failures": []})

    with stub, pytest.raises(LaunchOutcomeUnknown) as raised:
        launcher.run_task(_request())

    assert raised.value.reason_code == "NoTaskReturned"


class _RaisingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def run_task(self, **_: Any) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com/"),
        EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com/"),
    ],
)
def test_transport_errors_are_unknown_outcomes(error: Exception) -> None:
    with pytest.raises(LaunchOutcomeUnknown) as raised:
        EcsLauncher(_RaisingClient(error)).run_task(_request())

    assert raised.value.reason_code == type(error).__name__


def test_stop_task_names_the_cluster_task_and_a_bounded_reason() -> None:
    launcher, stub = _stubbed()
    task_arn = f"arn:aws:ecs:{REGION}:123456789012:task/mm-scorers/0123456789abcdef0123456789abcdef"
    reason = "Superseded by a newer submission " + "x" * 300
    stub.add_response(
        "stop_task", {"task": {"taskArn": task_arn}}, {"cluster": CLUSTER_ARN, "task": task_arn, "reason": reason[:255]}
    )

    with stub:
        launcher.stop_task(cluster=CLUSTER_ARN, task_arn=task_arn, reason=reason)

    stub.assert_no_pending_responses()
