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
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY, client_token, started_by
from mm_contracts.settings import SettingsError
from tests.builders import FakeLambdaContext, sqs_event, sqs_record
from tests.integration.challenge.conftest import CLUSTER, CONTAINER, EcsWorld
from tests.unit.challenge.helpers import (
    CAPACITY_PARAMETER_NAME,
    CHALLENGE_ID,
    OTHER_CHALLENGE_ID,
    PARAMETER_NAME,
    SECRET_TOKEN,
    V5_PHASE,
    FakeTokenProvider,
    routed_submission,
    v6_config_document,
    v6_submission,
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


# ------------------------------------------------------------------ credentials
def test_parameter_reference_mode_passes_only_the_name(ecs_world: EcsWorld) -> None:
    ecs_world.put_config(ecs_world.config(scorerCredentialsMode="parameter_reference"))

    invoke(message(routed_submission()))

    [task] = ecs_world.tasks()
    environment = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert environment["MM_TOKEN_PARAMETER"] == "/mm-processor/auth0/token"
    assert "MM_M2M_TOKEN" not in environment


def test_insecure_mode_token_never_reaches_a_log_line_or_metric(
    ecs_world: EcsWorld, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import challenge_lambda.processor as processor_module

    provider = FakeTokenProvider()
    monkeypatch.setattr(processor_module, "default_token_provider_factory", lambda settings: lambda: provider)
    handler.reset()
    ecs_world.put_config(ecs_world.config(scorerCredentialsMode="environment_token_insecure"))
    ok, throttled = routed_submission(), routed_submission()

    invoke(message(ok))
    with Stubber(aws_clients.client("ecs")) as stub:
        stub.add_client_error("run_task", service_error_code="ThrottlingException", service_message="Rate exceeded")
        invoke(message(throttled))

    assert provider.calls == 2
    assert status(throttled).state is SubmissionState.WAITING
    [task] = ecs_world.tasks()
    environment = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert environment["MM_M2M_TOKEN"] == SECRET_TOKEN  # the documented risk of this mode
    captured = capsys.readouterr()
    assert SECRET_TOKEN not in captured.out
    assert SECRET_TOKEN not in captured.err
    assert SECRET_TOKEN not in ecs_world.logs.getvalue()
    assert any("environment_token_insecure" in line["message"] for line in ecs_world.log_lines())
    assert SECRET_TOKEN not in (status(throttled).reason or "")


# ------------------------------------------------------------------ ambiguous outcome
def test_read_timeout_keeps_the_lease_and_the_retry_reuses_the_token(ecs_world: EcsWorld) -> None:
    import os

    from botocore.exceptions import ReadTimeoutError

    submission = routed_submission()
    ecs = aws_clients.client("ecs")
    timing_out = {"on": True}

    def time_out(**_: Any) -> None:
        if timing_out["on"]:
            raise ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com/")

    # before-call: raised outside botocore's retry loop, so no backoff sleeps in the test.
    ecs.meta.events.register("before-call.ecs.RunTask", time_out)

    first = invoke(message(submission, message_id="m-timeout"))

    assert failed_ids(first) == ["m-timeout"]
    assert status(submission).state is SubmissionState.LAUNCHING  # lease kept, not marked failed

    # The SQS retry arrives after the visibility timeout, when the lease has expired.
    timing_out["on"] = False
    aws_clients.client("dynamodb").update_item(
        TableName=os.environ["STATUS_TABLE_NAME"],
        Key={STATUS_TABLE_PARTITION_KEY: {"S": run_id(submission.submission_id, V5_PHASE)}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    second = invoke(message(submission, receive_count=2))

    assert second == {"batchItemFailures": []}
    token = client_token(submission.submission_id, V5_PHASE, 1)
    assert [call["clientToken"] for call in ecs_world.runtask_calls] == [token, token]
    assert status(submission).state is SubmissionState.LAUNCHED
    assert len(ecs_world.tasks()) == 1


def test_insecure_mode_with_the_real_static_parameter_provider(ecs_world: EcsWorld, capsys: Any) -> None:
    # Given the seed design's SecureString token and a challenge that opted into the insecure mode
    aws_clients.client("ssm").put_parameter(
        Name="/mm-processor/auth0/token", Value=SECRET_TOKEN, Type="SecureString", Overwrite=True
    )
    ecs_world.put_config(ecs_world.config(scorerCredentialsMode="environment_token_insecure"))

    # When a submission arrives
    response = invoke(message(routed_submission()))

    # Then the token reaches the task environment (the documented risk) and nothing else
    assert response == {"batchItemFailures": []}
    [task] = ecs_world.tasks()
    environment = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert environment["MM_M2M_TOKEN"] == SECRET_TOKEN
    captured = capsys.readouterr()
    assert SECRET_TOKEN not in captured.out + captured.err + ecs_world.logs.getvalue()


def test_default_mode_never_builds_a_token_provider(ecs_world: EcsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    import challenge_lambda.processor as processor_module

    built: list[object] = []

    def factory(settings: object) -> Any:
        def build() -> FakeTokenProvider:
            built.append(settings)
            return FakeTokenProvider()

        return build

    monkeypatch.setattr(processor_module, "default_token_provider_factory", factory)
    handler.reset()

    invoke(message(routed_submission()))

    assert built == []
    assert len(ecs_world.tasks()) == 1


# ------------------------------------------------------------------ observability
def test_every_log_line_of_a_record_carries_its_submission_id_as_correlation_id(ecs_world: EcsWorld) -> None:
    first, second = routed_submission(), routed_submission()

    invoke(message(first), message(second))

    lines = [line for line in ecs_world.log_lines() if line.get("submission_id")]
    assert {line["submission_id"] for line in lines} == {first.submission_id, second.submission_id}
    for line in lines:
        assert line["correlation_id"] == line["submission_id"]
    # the capacity dispatcher's lines (they name the run they admit) carry the record's correlation id ...
    dispatcher_lines = [line for line in ecs_world.log_lines() if "runId" in line and "submission_id" not in line]
    assert dispatcher_lines
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


# ------------------------------------------------------------------ v6: one task per phase, skips made visible
def _v6_config(ecs_world: EcsWorld, **overrides: Any) -> dict[str, Any]:
    document = v6_config_document()
    return ecs_world.config(**{key: document.get(key) for key in ("platform", "phases", "scorecardId")}, **overrides)


def test_a_v6_submission_starts_one_tagged_task_per_phase(ecs_world: EcsWorld) -> None:
    ecs_world.put_config(_v6_config(ecs_world, scorerEnvironment="topcoder_ecs_runner"))
    submission = v6_submission()

    first = invoke(message(submission))
    again = invoke(message(submission, receive_count=2))

    assert first == again == {"batchItemFailures": []}
    tasks = ecs_world.tasks()
    assert len(tasks) == 2  # EXAMPLE and PROVISIONAL, each once
    by_phase = {}
    for task in tasks:
        tags = {tag["key"]: tag["value"] for tag in task["tags"]}
        environment = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
        assert tags["Phase"] == environment["MM_PHASE"] == environment["PHASE_CONFIG_TYPE"]
        assert environment["SUBMISSION_ID"] == submission.submission_id
        assert "ACCESS_TOKEN" not in environment
        by_phase[tags["Phase"]] = environment
    assert by_phase["EXAMPLE"]["TEST_PHASE"] == "example"
    assert (by_phase["PROVISIONAL"]["PHASE_START_SEED"], by_phase["PROVISIONAL"]["PHASE_NUMBER_OF_TESTS"]) == (
        "1001",
        "100",
    )
    for phase in (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL):
        assert status(submission, phase).state is SubmissionState.LAUNCHED


def test_a_skipped_v6_submission_is_recorded_and_handed_to_the_completion_function(
    ecs_world: EcsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPLETION_FUNCTION_NAME", "mm-processor-dev-completion")
    ecs_world.put_config(_v6_config(ecs_world))
    submission = v6_submission(skip_reason="Marathon Match scoring skipped because the challenge is inactive.")
    lambda_client = aws_clients.client("lambda")
    stub = Stubber(lambda_client)
    for phase in ("PROVISIONAL", "EXAMPLE"):  # launch order: PROVISIONAL before EXAMPLE
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": "mm-processor-dev-completion",
                "InvocationType": "Event",
                "Payload": json.dumps(
                    {
                        "source": "mm-processor",
                        "detail-type": "Run Report Due",
                        "detail": {"runId": f"{submission.submission_id}#{phase}"},
                    }
                ).encode(),
            },
        )

    with stub:
        response = invoke(message(submission))

    stub.assert_no_pending_responses()
    assert response == {"batchItemFailures": []}
    assert ecs_world.tasks() == []
    assert ecs_world.runtask_calls == []
    for phase in (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL):
        record = status(submission, phase)
        assert (record.state, record.reason) == (SubmissionState.FAILED, submission.skip_reason)


# ------------------------------------------------------------------ capacity (decisions 093-095)
def test_a_full_cap_acknowledges_the_message_and_leaves_the_run_waiting(ecs_world: EcsWorld) -> None:
    ecs_world.put_config(ecs_world.config(capacity={"maxRunningTasks": 1}))
    first, second = routed_submission(), routed_submission()

    response = invoke(message(first), message(second, receive_count=3))

    assert response == {"batchItemFailures": []}
    assert len(ecs_world.tasks()) == 1
    assert (status(first).state, status(second).state) == (SubmissionState.LAUNCHED, SubmissionState.WAITING)
    assert ecs_world.queued_bodies() == []


def test_a_run_admitted_for_another_message_goes_through_the_own_queue_and_launches_once(ecs_world: EcsWorld) -> None:
    import os

    from mm_capacity.store import CapacityStore
    from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus

    ecs_world.put_config(ecs_world.config(capacity={"maxRunningTasks": 1}))
    running, queued, newcomer = (routed_submission() for _ in range(3))
    invoke(message(running))
    invoke(message(queued))
    # The running task stops: the completion function records it and releases its slot (no dispatch here).
    recorded = StatusStore(os.environ["STATUS_TABLE_NAME"]).record_outcome(
        status(running).run_id,
        CHALLENGE_ID,
        Outcome(
            code=OutcomeCode.SUCCEEDED,
            test_status=TestStatus.SUCCESS,
            reason="exit 0",
            task_arn=status(running).task_arn,
        ),
        report_required=False,
    )
    assert recorded.record is not None
    assert CapacityStore(ecs_world.capacity_table, os.environ["STATUS_TABLE_NAME"]).release(recorded.record)

    assert invoke(message(newcomer)) == {"batchItemFailures": []}

    assert (status(queued).state, status(newcomer).state) == (SubmissionState.ADMITTED, SubmissionState.WAITING)
    [body] = ecs_world.queued_bodies()
    sent = RoutedSubmission.model_validate_json(body)
    assert (sent.submission_id, sent.phase) == (queued.submission_id, V5_PHASE)
    both = [sqs_record(body, message_id="copy-1"), sqs_record(body, message_id="copy-2")]  # at-least-once
    assert invoke(*both) == {"batchItemFailures": []}
    assert status(queued).state is SubmissionState.LAUNCHED
    tokens = [call["clientToken"] for call in ecs_world.runtask_calls]
    assert tokens.count(client_token(queued.submission_id, V5_PHASE, 1)) == 1


def test_missing_environment_caps_leave_runs_waiting_without_a_dlq(ecs_world: EcsWorld, capsys: Any) -> None:
    aws_clients.client("ssm").delete_parameter(Name=CAPACITY_PARAMETER_NAME)
    submission = routed_submission()

    response = invoke(message(submission, receive_count=3))

    assert response == {"batchItemFailures": []}
    assert status(submission).state is SubmissionState.WAITING
    assert ecs_world.runtask_calls == []
    assert metric_values(capsys.readouterr().out, "CapacityConfigErrors")


def test_a_superseded_running_task_is_stopped_in_ecs(ecs_world: EcsWorld) -> None:
    from datetime import UTC, datetime

    stop_running = {"maxRunningTasks": 5, "supersede": "cancel_waiting_and_stop_running"}
    ecs_world.put_config(ecs_world.config(capacity=stop_running))
    older = routed_submission().model_copy(update={"created": datetime(2027, 1, 15, 11, 0, tzinfo=UTC)})
    newer = routed_submission().model_copy(update={"created": datetime(2027, 1, 15, 11, 30, tzinfo=UTC)})
    invoke(message(older))
    older_task = status(older).task_arn

    assert invoke(message(newer)) == {"batchItemFailures": []}

    described = aws_clients.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[older_task])["tasks"]
    assert described[0]["desiredStatus"] == "STOPPED"
    assert described[0]["stoppedReason"] == f"Superseded by a newer submission {newer.submission_id}"
    assert status(older).cancel_requested is True
    assert status(newer).state is SubmissionState.LAUNCHED
