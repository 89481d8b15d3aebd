"""`mm-processor dlq show completion` never prints the scorer's token: in the insecure credentials mode the RunTask
overrides hold `MM_M2M_TOKEN` and the STOPPED event carries them, as the event body and as an on-failure record's
`requestPayload` (decision 110)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from mm_contracts.models.ecs_event import REDACTED
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.task import TaskEnv
from operator_tools import dlq
from operator_tools.context import EXIT_OK, OperatorContext
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.dead_letter_helpers import put_run, run_command

TOKEN = "eyJhbGciOi.the-scorers-m2m-token.sig"
SUBMISSION = "b" * 8 + "-2222-4222-8222-" + "2" * 12


def _stopped_event() -> dict[str, Any]:
    environment = [
        {"name": TaskEnv.SUBMISSION_ID.value, "value": SUBMISSION},
        {"name": TaskEnv.PHASE.value, "value": "PROVISIONAL"},
        {"name": TaskEnv.M2M_TOKEN.value, "value": TOKEN},
        {"name": "SCORER_API_SECRET", "value": TOKEN + "-2"},
        {"name": TaskEnv.TOKEN_PARAMETER.value, "value": "/mm/example/token"},  # a parameter name: kept
    ]
    return {
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "detail": {
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/mm/abc",
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/mm",
            "lastStatus": "STOPPED",
            "overrides": {"containerOverrides": [{"name": "scorer", "environment": environment}]},
        },
    }


def _put_both_kinds(deployed: Deployed) -> str:
    run_id = put_run(deployed, SUBMISSION, ROUTE_PLANNER, state=SubmissionState.FAILED)
    event = _stopped_event()
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}
    sqs = deployed.client("sqs")
    url = sqs.get_queue_url(QueueName=deployed.plan.names.completion_dlq)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    return run_id


def _environment(body: dict[str, Any]) -> dict[str, str]:
    event = body.get("requestPayload", body)
    (container,) = event["detail"]["overrides"]["containerOverrides"]
    return {pair["name"]: pair["value"] for pair in container["environment"]}


def test_show_json_redacts_the_token_in_the_event_and_in_the_on_failure_record(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _put_both_kinds(deployed)
    status, document = run_command(dlq.add_arguments, dlq.run, capsys, ["show", "completion"], deployed.clients)
    assert status == EXIT_OK
    assert TOKEN not in json.dumps(document)
    assert len(document["messages"]) == 2
    for message in document["messages"]:
        variables = _environment(message["body"])
        assert variables[TaskEnv.M2M_TOKEN.value] == REDACTED
        assert variables["SCORER_API_SECRET"] == REDACTED
        assert variables[TaskEnv.TOKEN_PARAMETER.value] == "/mm/example/token"
        assert message["runIds"] == [run_id]  # the run is still read from the (kept) identity variables


def test_show_for_a_person_never_prints_the_token(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _put_both_kinds(deployed)
    parser = argparse.ArgumentParser()
    dlq.add_arguments(parser)
    args = parser.parse_args(["show", "completion", "--env", "example"])
    assert dlq.run(args, OperatorContext.from_args(args, clients=deployed.clients)) == EXIT_OK
    captured = capsys.readouterr()
    assert f"about {run_id}" in captured.out
    assert TOKEN not in captured.out + captured.err


def test_a_completion_body_that_is_not_json_is_not_printed(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = deployed.client("sqs")
    url = sqs.get_queue_url(QueueName=deployed.plan.names.completion_dlq)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"broken": "' + TOKEN)
    status, document = run_command(dlq.add_arguments, dlq.run, capsys, ["show", "completion"], deployed.clients)
    assert status == EXIT_OK
    assert TOKEN not in json.dumps(document)
    assert document["messages"][0]["body"].startswith("<not JSON")
