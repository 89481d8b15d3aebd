"""`mm-processor dlq list | show | redrive`: the environment's DLQs read and redriven per queue kind (decision 110),
against an environment deployed into moto; SQS message move tasks and Lambda invokes (which moto lacks) stubbed."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from mm_contracts.models.lifecycle import SubmissionState
from operator_tools import dlq
from operator_tools.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OperatorContext
from tests.unit.operator_tools.conftest import IMAGE_DENOISE, ROUTE_PLANNER, Deployed, routed_submission
from tests.unit.operator_tools.dead_letter_helpers import StubbedClients, history_details, put_run, run_command
from tests.unit.router.test_failure_records import s3_failure_object

REASON = ["--reason", "capacity fixed", "--yes"]


def _dlq(deployed: Deployed, capsys: pytest.CaptureFixture[str], *argv: str, clients: Any = None) -> tuple[int, Any]:
    return run_command(dlq.add_arguments, dlq.run, capsys, list(argv), clients or deployed.clients)


def _url(deployed: Deployed, name: str) -> str:
    return str(deployed.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def _routed_body(challenge_id: str = ROUTE_PLANNER) -> tuple[str, str]:
    routed = routed_submission().model_copy(update={"challenge_id": challenge_id})
    return routed.submission_id, routed.to_json()


def _dead_letter(deployed: Deployed, challenge_id: str = ROUTE_PLANNER) -> tuple[str, str]:
    """A routed submission in its challenge's DLQ and its DEAD_LETTERED run: (submission id, run id)."""
    submission_id, body = _routed_body(challenge_id)
    run_id = put_run(deployed, submission_id, challenge_id)
    deployed.client("sqs").send_message(
        QueueUrl=_url(deployed, deployed.plan.names.challenge_dlq(challenge_id)), MessageBody=body
    )
    return submission_id, run_id


def _depth(deployed: Deployed, name: str) -> int:
    attributes = deployed.client("sqs").get_queue_attributes(
        QueueUrl=_url(deployed, name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _bodies(deployed: Deployed, name: str) -> list[str]:
    messages = deployed.client("sqs").receive_message(QueueUrl=_url(deployed, name), MaxNumberOfMessages=10)
    return [m["Body"] for m in messages.get("Messages", [])]


# ------------------------------------------------------------------ list
def test_list_names_every_dlq_and_exits_0_when_all_are_empty(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    status, document = _dlq(deployed, capsys, "list")
    assert status == EXIT_OK
    names = deployed.plan.names
    expected = [names.challenge_dlq(c.challenge_id) for c in deployed.plan.config.challenges]
    assert [q["queue"] for q in document["queues"]] == [*expected, names.fanout_dlq, names.completion_dlq]
    assert document["empty"] is True
    assert document["routerFailures"]["objects"] == 0


def test_list_counts_waiting_messages_and_failure_records_and_exits_1(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter(deployed)
    deployed.client("s3").put_object(
        Bucket=deployed.resources.router_failure_bucket, Key="aws/lambda/1", Body=s3_failure_object(None).encode()
    )
    status, document = _dlq(deployed, capsys, "list")
    assert status == EXIT_FAILED
    by_name = {q["queue"]: q for q in document["queues"]}
    challenge_dlq = by_name[deployed.plan.names.challenge_dlq(ROUTE_PLANNER)]
    assert (challenge_dlq["visible"], challenge_dlq["inFlight"]) == (1, 0)  # the peek gave it back
    assert challenge_dlq["oldestSentAt"] is not None
    assert by_name[deployed.plan.names.challenge_dlq(IMAGE_DENOISE)]["visible"] == 0
    assert document["routerFailures"]["unreplayed"] == 1


# ------------------------------------------------------------------ show
def test_show_decodes_a_challenge_dead_letter_with_its_runs_reason_and_keeps_it(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    submission_id, run_id = _dead_letter(deployed)
    status, document = _dlq(deployed, capsys, "show", ROUTE_PLANNER)
    assert status == EXIT_OK
    (message,) = document["messages"]
    assert message["submissionId"] == submission_id
    assert message["runIds"] == [run_id]
    assert "DEAD_LETTERED" in message["reason"]
    assert "Capacity is unavailable" in message["reason"]
    assert message["receiveCount"] >= 1
    assert message["body"]["submissionId"] == submission_id  # --json: the whole decoded body
    # Nothing deleted, and visible again at once
    assert len(_bodies(deployed, deployed.plan.names.challenge_dlq(ROUTE_PLANNER))) == 1


def test_show_of_the_completion_dlq_says_why_for_both_kinds_of_body(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = put_run(deployed, "a" * 8 + "-1111-4111-8111-" + "1" * 12, ROUTE_PLANNER, state=SubmissionState.FAILED)
    event = {"source": "mm-processor", "detail-type": "Run Report Due", "detail": {"runId": run_id}}
    record = {
        "version": "1.0",
        "timestamp": "2026-11-14T00:38:06.021Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": "arn:aws:lambda:::function:x",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "TopcoderUnavailable", "errorMessage": "503 from the review API"},
    }
    url = _url(deployed, deployed.plan.names.completion_dlq)
    sqs = deployed.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(event),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "LAMBDA_FUNCTION_ERROR"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "the function failed"},
            "SECRET_LOOKING": {"DataType": "String", "StringValue": "never printed"},
        },
    )
    status, document = _dlq(deployed, capsys, "show", "completion")
    assert status == EXIT_OK
    reasons = sorted(m["reason"] for m in document["messages"])
    assert reasons[0].startswith("on-failure record: RetriesExhausted: TopcoderUnavailable 503 from the review API")
    assert reasons[1].startswith("target DLQ: ERROR_CODE=LAMBDA_FUNCTION_ERROR, ERROR_MESSAGE=the function failed")
    assert all(m["runIds"] == [run_id] for m in document["messages"])
    assert "never printed" not in json.dumps(document)


def test_an_unknown_queue_is_refused_naming_the_known_ones(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = _dlq(deployed, capsys, "show", "mm-example-nonesuch")
    assert status == EXIT_FAILED
    assert deployed.plan.names.fanout_dlq in capsys.readouterr().err


# ------------------------------------------------------------------ redrive
def test_redrive_of_a_challenge_dlq_starts_a_move_task_back_to_its_source_and_audits_the_run(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_id = _dead_letter(deployed)
    dlq_name = deployed.plan.names.challenge_dlq(ROUTE_PLANNER)
    clients = StubbedClients(deployed, "sqs", {"start_message_move_task", "list_message_move_tasks"})
    arn = f"arn:aws:sqs:{deployed.plan.config.region}:{deployed.plan.config.account}:{dlq_name}"
    clients.stubber.add_response(
        "start_message_move_task", {"TaskHandle": "handle-1"}, {"SourceArn": arn, "MaxNumberOfMessagesPerSecond": 5}
    )
    clients.stubber.add_response(
        "list_message_move_tasks",
        {"Results": [{"TaskHandle": "handle-1", "Status": "RUNNING"}]},
        {"SourceArn": arn, "MaxResults": 1},
    )
    status, document = _dlq(deployed, capsys, "redrive", dlq_name, "--max-per-second", "5", *REASON, clients=clients)
    assert status == EXIT_OK
    assert (document["method"], document["taskHandle"], document["taskStatus"]) == ("move-task", "handle-1", "RUNNING")
    clients.stubber.assert_no_pending_responses()
    assert document["auditedRuns"] == [run_id]
    (entry,) = [d for d in history_details(deployed, run_id) if d.startswith("operator redrive")]
    assert entry.endswith("capacity fixed")


def test_where_the_endpoint_lacks_move_tasks_the_redrive_moves_each_message_to_the_challenge_queue(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    submission_id, run_id = _dead_letter(deployed)
    names = deployed.plan.names
    status, document = _dlq(deployed, capsys, "redrive", ROUTE_PLANNER, *REASON)  # moto: not implemented
    assert status == EXIT_OK
    assert (document["method"], document["moved"], document["failed"]) == ("move", 1, 0)
    assert "does not implement StartMessageMoveTask" in document["note"]
    assert _depth(deployed, names.challenge_dlq(ROUTE_PLANNER)) == 0
    (body,) = _bodies(deployed, names.challenge_queue(ROUTE_PLANNER))
    assert json.loads(body)["submissionId"] == submission_id
    assert document["auditedRuns"] == [run_id]


def test_a_fanout_dead_letter_goes_to_the_queue_its_challenge_names_and_an_unknown_one_stays(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    names = deployed.plan.names
    url = _url(deployed, names.fanout_dlq)
    submission_id, body = _routed_body(IMAGE_DENOISE)
    envelope = {"Type": "Notification", "Message": body}  # raw delivery off: SNS's envelope
    deployed.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(envelope))
    _, stranger = _routed_body("11111111-2222-4333-8444-555555555555")
    deployed.client("sqs").send_message(QueueUrl=url, MessageBody=stranger)
    status, document = _dlq(deployed, capsys, "redrive", "fanout", *REASON)
    assert status == EXIT_FAILED  # one message could not be handed on
    assert (document["moved"], document["failed"]) == (1, 1)
    assert "is no challenge of example" in document["errors"][0]
    (moved,) = _bodies(deployed, names.challenge_queue(IMAGE_DENOISE))
    assert json.loads(moved)["submissionId"] == submission_id
    assert _depth(deployed, names.fanout_dlq) == 1  # the stranger is still there


def test_a_completion_dead_letter_is_invoked_into_the_completion_function_then_deleted(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    names = deployed.plan.names
    event = {"source": "mm-processor", "detail-type": "Run Report Due", "detail": {"runId": "x#PROVISIONAL"}}
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}
    url = _url(deployed, names.completion_dlq)
    deployed.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(record))
    deployed.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(event))
    clients = StubbedClients(deployed, "lambda", {"invoke"})
    for _ in range(2):
        clients.stubber.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": names.completion_function,
                "InvocationType": "Event",
                "Payload": json.dumps(event).encode(),
            },
        )
    status, document = _dlq(deployed, capsys, "redrive", "completion", *REASON, clients=clients)
    assert status == EXIT_OK
    assert (document["method"], document["moved"]) == ("invoke", 2)
    clients.stubber.assert_no_pending_responses()
    assert _depth(deployed, names.completion_dlq) == 0


def test_a_failed_invoke_leaves_the_completion_dead_letter_in_its_queue(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    names = deployed.plan.names
    deployed.client("sqs").send_message(QueueUrl=_url(deployed, names.completion_dlq), MessageBody='{"source": "x"}')
    clients = StubbedClients(deployed, "lambda", {"invoke"})
    clients.stubber.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
    status, document = _dlq(deployed, capsys, "redrive", "completion", *REASON, clients=clients)
    assert status == EXIT_FAILED
    assert (document["moved"], document["failed"]) == (0, 1)
    assert _depth(deployed, names.completion_dlq) == 1


def test_a_dry_run_changes_nothing_and_a_real_redrive_needs_a_reason(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_id = _dead_letter(deployed)
    dlq_name = deployed.plan.names.challenge_dlq(ROUTE_PLANNER)
    status, _ = _dlq(deployed, capsys, "redrive", ROUTE_PLANNER, "--dry-run")
    assert status == EXIT_OK
    status, _ = _dlq(deployed, capsys, "redrive", ROUTE_PLANNER, "--yes")
    assert status == EXIT_USAGE
    assert "--reason" in capsys.readouterr().err
    assert _depth(deployed, dlq_name) == 1
    assert not [d for d in history_details(deployed, run_id) if d.startswith("operator")]


def test_a_move_task_refused_by_sqs_is_said_and_not_worked_around(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letter(deployed)
    names = deployed.plan.names
    clients = StubbedClients(deployed, "sqs", {"start_message_move_task"})
    clients.stubber.add_client_error(
        "start_message_move_task", "AWS.SimpleQueueService.UnsupportedOperation", "a move task is running"
    )
    status, _ = _dlq(deployed, capsys, "redrive", ROUTE_PLANNER, *REASON, clients=clients)
    assert status == EXIT_FAILED
    assert "a move task is running" in capsys.readouterr().err
    assert _depth(deployed, names.challenge_dlq(ROUTE_PLANNER)) == 1  # no move message by message
    assert _bodies(deployed, names.challenge_queue(ROUTE_PLANNER)) == []


def test_the_human_output_names_each_queue_and_each_message(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_id = _dead_letter(deployed)
    parser = argparse.ArgumentParser()
    dlq.add_arguments(parser)
    for argv in (["list"], ["show", ROUTE_PLANNER]):
        args = parser.parse_args([*argv, "--env", "example"])
        dlq.run(args, OperatorContext.from_args(args, clients=deployed.clients))
    out = capsys.readouterr().out
    assert f"{deployed.plan.names.challenge_dlq(ROUTE_PLANNER)}" in out
    assert "1 visible, 0 in flight" in out
    assert "dead letters wait" in out
    assert f"about {run_id}" in out
