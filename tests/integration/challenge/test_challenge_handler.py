"""The real handler (Powertools batch, settings from the environment) against moto SSM, DynamoDB and ECS.

moto ignores clientToken and never fills failures[]: those paths use botocore's Stubber on the same
ECS client the handler uses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from challenge_lambda import handler
from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import client_token, started_by
from mm_contracts.settings import SettingsError
from tests.builders import FakeLambdaContext, sqs_event, sqs_record
from tests.integration.challenge.conftest import CLUSTER, CONTAINER, EcsWorld
from tests.unit.challenge.helpers import (
    CAPACITY_PARAMETER_NAME,
    CHALLENGE_ID,
    OTHER_CHALLENGE_ID,
    PARAMETER_NAME,
    V5_PHASE,
    routed_submission,
)


def invoke(*records: dict[str, Any]) -> dict[str, Any]:
    return handler.handler(sqs_event(list(records)), FakeLambdaContext())


def message(submission: RoutedSubmission, *, receive_count: int = 1, message_id: str | None = None) -> dict[str, Any]:
    return sqs_record(submission.to_json(), receive_count=receive_count, message_id=message_id)


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def status(submission: RoutedSubmission, phase: ScoringPhase = V5_PHASE) -> LifecycleRecord:
    import os

    record = StatusStore(os.environ["STATUS_TABLE_NAME"]).get(run_id(submission.submission_id, phase))
    assert record is not None
    return record


def emf_lines(captured: str) -> list[dict[str, Any]]:
    lines = []
    for line in captured.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            lines.append(document)
    return lines


def metric_values(captured: str, name: str) -> list[dict[str, Any]]:
    return [line for line in emf_lines(captured) if name in line]


# ------------------------------------------------------------------ launch
def test_valid_message_launches_exactly_one_tagged_fargate_task(ecs_world: EcsWorld) -> None:
    submission = routed_submission(legacy_challenge_id=30_054_321)

    response = invoke(message(submission))

    assert response == {"batchItemFailures": []}
    [task] = ecs_world.tasks()
    assert task["launchType"] == "FARGATE"
    assert task["startedBy"] == started_by("dev", CHALLENGE_ID)
    assert task["taskDefinitionArn"] == ecs_world.task_definition_arn
    assert {tag["key"]: tag["value"] for tag in task["tags"]} == {
        "ChallengeId": CHALLENGE_ID,
        "SubmissionId": submission.submission_id,
        "Phase": "PROVISIONAL",
        "ScorerType": "mm-scorer-java",
        "Environment": "dev",
        "Project": "mm-processor",
    }
    [container_override] = task["overrides"]["containerOverrides"]
    environment = {item["name"]: item["value"] for item in container_override["environment"]}
    assert container_override["name"] == CONTAINER
    assert environment["MM_SUBMISSION_ID"] == submission.submission_id
    assert environment["MM_LEGACY_CHALLENGE_ID"] == "30054321"
    assert environment["MM_CORRELATION_ID"] == submission.correlation_id
    assert "MM_M2M_TOKEN" not in environment
    assert "MM_TOKEN_PARAMETER" not in environment

    [call] = ecs_world.runtask_calls
    assert call["clientToken"] == client_token(submission.submission_id, V5_PHASE, 1)
    assert call["count"] == 1
    assert call["networkConfiguration"] == {
        "awsvpcConfiguration": {
            "subnets": ecs_world.subnet_ids,
            "securityGroups": [ecs_world.security_group_id],
            "assignPublicIp": "DISABLED",
        }
    }
    assert "propagateTags" not in call

    record = status(submission)
    assert record.state is SubmissionState.LAUNCHED
    assert record.task_arn == task["taskArn"]
    assert record.cluster_arn == task["clusterArn"]


def test_same_submission_twice_in_one_batch_launches_once(ecs_world: EcsWorld) -> None:
    submission = routed_submission()

    response = invoke(message(submission), message(submission))

    assert response == {"batchItemFailures": []}
    assert len(ecs_world.runtask_calls) == 1
    assert len(ecs_world.tasks()) == 1


def test_same_submission_across_two_invocations_launches_once(ecs_world: EcsWorld) -> None:
    submission = routed_submission()

    first = invoke(message(submission))
    second = invoke(message(submission, receive_count=1))

    assert first == second == {"batchItemFailures": []}
    assert len(ecs_world.runtask_calls) == 1
    assert len(ecs_world.tasks()) == 1


def test_mixed_batch_fails_only_the_bad_record(ecs_world: EcsWorld) -> None:
    good = routed_submission()
    bad = sqs_record("{not json", message_id="bad-1")

    response = invoke(message(good), bad)

    assert failed_ids(response) == ["bad-1"]
    assert len(ecs_world.tasks()) == 1


# ------------------------------------------------------------------ ECS error paths (Stubber)
def test_failures_array_fails_the_record_and_never_marks_launched(ecs_world: EcsWorld, capsys: Any) -> None:
    submission = routed_submission()
    ecs = aws_clients.client("ecs")
    with Stubber(ecs) as stub:
        stub.add_response(
            "run_task",
            {
                "tasks": [],
                "failures": [
                    {
                        "arn": f"arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}",
                        "reason": "Capacity is unavailable at this time",
                    }
                ],
            },
        )
        response = invoke(message(submission, message_id="m-capacity"))

    assert failed_ids(response) == ["m-capacity"]
    record = status(submission)
    assert record.state is SubmissionState.LAUNCH_FAILED
    assert record.task_arn is None
    assert "Capacity is unavailable at this time" in (record.reason or "")
    assert ecs_world.tasks() == []
    [failure_metric] = metric_values(capsys.readouterr().out, "LaunchFailures")
    assert failure_metric["Reason"] == "Capacity is unavailable at this time"


def test_retry_after_failures_array_uses_the_next_token_and_launches(ecs_world: EcsWorld) -> None:
    submission = routed_submission()
    ecs = aws_clients.client("ecs")
    with Stubber(ecs) as stub:
        stub.add_response("run_task", {"tasks": [], "failures": [{"reason": "Capacity is unavailable at this time"}]})
        invoke(message(submission, receive_count=1))

    response = invoke(message(submission, receive_count=2))

    assert response == {"batchItemFailures": []}
    assert [call["clientToken"] for call in ecs_world.runtask_calls] == [
        client_token(submission.submission_id, V5_PHASE, 1),
        client_token(submission.submission_id, V5_PHASE, 2),
    ]
    assert len(ecs_world.tasks()) == 1
    assert status(submission).state is SubmissionState.LAUNCHED


def test_failure_at_the_receive_limit_is_dead_lettered(ecs_world: EcsWorld, capsys: Any) -> None:
    submission = routed_submission()
    with Stubber(aws_clients.client("ecs")) as stub:
        stub.add_response("run_task", {"tasks": [], "failures": [{"reason": "Capacity is unavailable at this time"}]})
        response = invoke(message(submission, receive_count=3, message_id="m-last"))

    assert failed_ids(response) == ["m-last"]
    assert status(submission).state is SubmissionState.DEAD_LETTERED
    assert metric_values(capsys.readouterr().out, "SubmissionsDeadLettered")


def test_throttling_puts_the_run_back_to_waiting_and_acknowledges_the_message(ecs_world: EcsWorld, capsys: Any) -> None:
    submission = routed_submission()
    with Stubber(aws_clients.client("ecs")) as stub:
        stub.add_client_error("run_task", service_error_code="ThrottlingException", service_message="Rate exceeded")
        response = invoke(message(submission, receive_count=3, message_id="m-throttled"))

    assert response == {"batchItemFailures": []}  # never toward the DLQ
    record = status(submission)
    assert (record.state, record.slot_pools) == (SubmissionState.WAITING, [])
    assert metric_values(capsys.readouterr().out, "LaunchesThrottled")
    assert ecs_world.tasks() == []


def test_missing_task_definition_is_recorded_and_retried(ecs_world: EcsWorld) -> None:
    submission = routed_submission()
    ecs_world.put_config(ecs_world.config(ecsTaskDefinition="mm-scorer-gone:9"))

    response = invoke(message(submission, message_id="m-gone"))

    assert failed_ids(response) == ["m-gone"]
    record = status(submission)
    assert record.state is SubmissionState.LAUNCH_FAILED
    assert record.reason


# ------------------------------------------------------------------ configuration
def test_config_is_read_once_across_warm_invocations(ecs_world: EcsWorld) -> None:
    for _ in range(3):
        assert invoke(message(routed_submission())) == {"batchItemFailures": []}

    assert sorted(ecs_world.ssm_get_calls) == sorted([PARAMETER_NAME, CAPACITY_PARAMETER_NAME])  # each once


def test_invalid_config_fails_back_with_a_clear_reason_then_the_fix_is_read(ecs_world: EcsWorld, capsys: Any) -> None:
    submission = routed_submission()
    broken = ecs_world.config()
    del broken["scorerContainerName"]
    ecs_world.put_config(broken)

    response = invoke(message(submission, message_id="m-config"))

    assert failed_ids(response) == ["m-config"]
    assert ecs_world.tasks() == []
    [line] = [entry for entry in ecs_world.log_lines() if entry["message"].startswith("challenge config unusable")]
    assert line["config_error"] == "invalid_fields"
    assert "scorerContainerName" in line["config_detail"]
    assert metric_values(capsys.readouterr().out, "ConfigErrors")

    ecs_world.put_config(ecs_world.config())
    assert invoke(message(submission, receive_count=2)) == {"batchItemFailures": []}
    assert [name for name in ecs_world.ssm_get_calls if name == PARAMETER_NAME] == [PARAMETER_NAME, PARAMETER_NAME]
    assert len(ecs_world.tasks()) == 1


def test_wrong_challenge_message_never_launches(ecs_world: EcsWorld) -> None:
    stray = routed_submission(challenge_id=OTHER_CHALLENGE_ID)

    response = invoke(message(stray, message_id="m-stray"))

    assert failed_ids(response) == ["m-stray"]
    assert ecs_world.runtask_calls == []
    assert ecs_world.tasks() == []
    import os

    assert StatusStore(os.environ["STATUS_TABLE_NAME"]).get_runs(stray.submission_id) == []


def test_missing_environment_fails_the_invocation_loudly(ecs_world: EcsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATUS_TABLE_NAME")

    with pytest.raises(SettingsError, match="STATUS_TABLE_NAME"):
        invoke(message(routed_submission()))
    assert ecs_world.runtask_calls == []


# ------------------------------------------------------------------ observability
def test_every_log_line_of_a_record_carries_its_submission_id_as_correlation_id(ecs_world: EcsWorld) -> None:
    first, second = routed_submission(), routed_submission()

    invoke(message(first), message(second))

    lines = [line for line in ecs_world.log_lines() if line.get("submission_id")]
    assert {line["submission_id"] for line in lines} == {first.submission_id, second.submission_id}
    for line in lines:
        assert line["correlation_id"] == line["submission_id"]
    # the capacity store's and dispatcher's lines (they name the run), if any, carry the record's correlation id
    # (both runs here launch without waiting, decision 114: no dispatch) ...
    dispatcher_lines = [line for line in ecs_world.log_lines() if "runId" in line and "submission_id" not in line]
    assert {line["correlation_id"] for line in dispatcher_lines} <= {first.submission_id, second.submission_id}
    # ... and the correlation id does not leak past its record
    assert all(
        line.get("correlation_id") is None
        for line in ecs_world.log_lines()
        if "submission_id" not in line and "runId" not in line
    )


# ------------------------------------------------------------------ concurrent copies of one message
def test_a_delivery_meeting_a_live_launch_lease_is_handed_back_untouched(ecs_world: EcsWorld) -> None:
    import os

    # Given another delivery of this submission holding a live launch lease (it is calling RunTask right now)
    submission = routed_submission()
    holder = StatusStore(os.environ["STATUS_TABLE_NAME"]).claim_launch(
        submission, phase=V5_PHASE, scorer_type="route-planner", lease_seconds=600
    )
    assert holder.granted
    record = message(submission)

    # When this copy arrives
    response = invoke(record)

    # Then it is handed back to the queue (acknowledging could delete the holder's own message), no task is
    # started, and the holder's claim is untouched
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert ecs_world.tasks() == []
    after = status(submission)
    assert (after.state.value, after.launch_attempt) == ("LAUNCHING", holder.attempt)
