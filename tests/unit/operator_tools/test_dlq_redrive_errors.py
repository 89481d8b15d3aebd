"""`mm-processor dlq redrive`: what an AWS error after the change started says (decision 110). Only a refused
StartMessageMoveTask means "nothing moved"; a status that cannot be read after the task started is UNKNOWN; a
message handed on whose delete failed is counted "handed on, not deleted". And a move task's plan says it moves the
whole DLQ."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from operator_tools import dlq
from operator_tools.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OperatorContext, run_guarded
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed, routed_submission
from tests.unit.operator_tools.dead_letter_helpers import StubbedClients, history_details, put_run, run_command

REASON = ["--reason", "capacity fixed", "--yes"]


def _url(deployed: Deployed, name: str) -> str:
    return str(deployed.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def _dead_letters(deployed: Deployed, count: int = 1) -> list[str]:
    """`count` routed submissions in Route Planner's DLQ, each with its DEAD_LETTERED run: their run ids."""
    run_ids = []
    for _ in range(count):
        routed = routed_submission().model_copy(update={"challenge_id": ROUTE_PLANNER})
        run_ids.append(put_run(deployed, routed.submission_id, ROUTE_PLANNER))
        deployed.client("sqs").send_message(
            QueueUrl=_url(deployed, deployed.plan.names.challenge_dlq(ROUTE_PLANNER)), MessageBody=routed.to_json()
        )
    return run_ids


def _depth(deployed: Deployed, name: str) -> int:
    attributes = deployed.client("sqs").get_queue_attributes(
        QueueUrl=_url(deployed, name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _redrive(deployed: Deployed, capsys: pytest.CaptureFixture[str], *argv: str, clients: Any) -> tuple[int, Any]:
    return run_command(dlq.add_arguments, dlq.run, capsys, ["redrive", *argv], clients)


def _for_a_person(deployed: Deployed, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    dlq.add_arguments(parser)
    args = parser.parse_args(["redrive", *argv, "--env", "example"])
    status = run_guarded(lambda: dlq.run(args, OperatorContext.from_args(args, clients=deployed.clients)))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_move_task_whose_status_cannot_be_read_is_unknown_and_may_be_running(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_id,) = _dead_letters(deployed)
    clients = StubbedClients(deployed, "sqs", {"start_message_move_task", "list_message_move_tasks"})
    clients.stubber.add_response("start_message_move_task", {"TaskHandle": "handle-2"})
    clients.stubber.add_client_error("list_message_move_tasks", "AccessDenied", "not allowed", http_status_code=403)
    status, document = _redrive(deployed, capsys, ROUTE_PLANNER, *REASON, clients=clients)
    assert status == EXIT_OK  # the task started
    assert (document["method"], document["taskHandle"], document["taskStatus"]) == ("move-task", "handle-2", "UNKNOWN")
    assert "ListMessageMoveTasks failed (AccessDenied)" in document["note"]
    assert "may be running" in document["note"]
    assert "refused" not in capsys.readouterr().err
    assert document["auditedRuns"] == [run_id]


def test_a_message_handed_on_whose_delete_fails_is_counted_handed_on_not_deleted(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_id,) = _dead_letters(deployed)
    names = deployed.plan.names
    clients = StubbedClients(deployed, "sqs", {"delete_message"})
    clients.stubber.add_client_error("delete_message", "AWS.SimpleQueueService.NonExistentQueue", "gone")
    status, document = _redrive(deployed, capsys, ROUTE_PLANNER, "--move", *REASON, clients=clients)
    assert status == EXIT_FAILED
    assert (document["moved"], document["failed"], document["notDeleted"]) == (0, 0, 1)
    assert "handed on, not deleted (AWS.SimpleQueueService.NonExistentQueue)" in document["errors"][0]
    assert "StartMessageMoveTask" not in capsys.readouterr().err
    assert _depth(deployed, names.challenge_queue(ROUTE_PLANNER)) == 1  # it was handed on
    assert _depth(deployed, names.challenge_dlq(ROUTE_PLANNER)) == 1  # and is still in the DLQ
    assert document["auditedRuns"] == [run_id]
    assert [d for d in history_details(deployed, run_id) if d.startswith("operator redrive")]


def test_a_failed_receive_stops_the_move_and_says_so(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    _dead_letters(deployed)
    clients = StubbedClients(deployed, "sqs", {"receive_message"})
    # The peek (for the plan and the audit) receives first; then the move's receive fails.
    clients.stubber.add_response("receive_message", {"Messages": []})
    clients.stubber.add_client_error("receive_message", "KMS.AccessDeniedException", "no key")
    status, document = _redrive(deployed, capsys, ROUTE_PLANNER, "--move", *REASON, clients=clients)
    assert status == EXIT_FAILED
    assert document["interrupted"] is True
    assert "ReceiveMessage failed (KMS.AccessDeniedException)" in document["errors"][0]
    assert "StartMessageMoveTask" not in capsys.readouterr().err


def test_a_move_task_plan_says_it_moves_all_messages(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    _dead_letters(deployed, 3)
    status, out, _ = _for_a_person(deployed, capsys, ROUTE_PLANNER, "--dry-run")
    assert status == EXIT_OK
    assert f"all messages in {deployed.plan.names.challenge_dlq(ROUTE_PLANNER)} (about 3" in out
    assert "up to --limit" not in out
    # a move message by message is bounded by --limit, and says so
    status, out, _ = _for_a_person(deployed, capsys, ROUTE_PLANNER, "--move", "--limit", "2", "--dry-run")
    assert status == EXIT_OK
    assert "up to --limit 2" in out


def test_limit_without_move_on_a_challenge_dlq_is_refused(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    _dead_letters(deployed)
    status, _, err = _for_a_person(deployed, capsys, ROUTE_PLANNER, "--limit", "1", *REASON)
    assert status == EXIT_USAGE
    assert "a move task moves every message" in err
    assert _depth(deployed, deployed.plan.names.challenge_dlq(ROUTE_PLANNER)) == 1  # nothing moved
