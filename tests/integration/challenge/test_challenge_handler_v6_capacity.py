"""The challenge handler against moto, v6 and capacity: one tagged task per phase, a skipped v6 submission handed to
the completion function, and the capacity paths (a full cap, an admitted run through its own queue, missing caps,
a superseded running task stopped in ECS). The world of `conftest.py`; helpers from `test_challenge_handler.py`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import client_token
from tests.builders import sqs_record
from tests.integration.challenge.conftest import CLUSTER, EcsWorld
from tests.integration.challenge.test_challenge_handler import (
    invoke,
    message,
    metric_values,
    status,
)
from tests.unit.challenge.helpers import (
    CAPACITY_PARAMETER_NAME,
    CHALLENGE_ID,
    V5_PHASE,
    routed_submission,
    v6_config_document,
    v6_submission,
)


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
