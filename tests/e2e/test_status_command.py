"""`mm-processor status`: the operator's "where is submission X, and why" against a status table."""

from __future__ import annotations

import pytest

from local_pipeline.cli import main
from mm_shared import aws as aws_clients
from mm_shared.models.routed import KafkaCoordinates, RoutedSubmission
from mm_shared.status_store import StatusStore
from tests.builders import new_uuid


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long values at the default 80 columns


def _routed(submission_id: str) -> RoutedSubmission:
    source = KafkaCoordinates(topic="submission.notification.create", partition=0, offset=7)
    return RoutedSubmission(
        submission_id=submission_id,
        challenge_id=new_uuid(),
        member_id=40158994,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/x.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at="2026-03-02T10:15:00Z",  # type: ignore[arg-type]
    )


def test_status_prints_state_reason_task_and_history(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a submission whose scorer failed
    store = StatusStore(status_table, dynamodb_client=aws_clients.client("dynamodb"))
    submission_id = new_uuid()
    claim = store.claim_launch(_routed(submission_id), scorer_type="route-planner", lease_seconds=60)
    task_arn = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef"
    store.mark_launched(
        submission_id,
        attempt=claim.attempt,
        task_arn=task_arn,
        cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers",
        timeout_seconds=60,
    )
    # When the operator asks
    status = main(["status", submission_id, "--table", status_table])
    # Then state, task and history are printed
    out = capsys.readouterr().out
    assert status == 0
    assert "LAUNCHED" in out
    assert "0123456789abcdef" in out
    assert "LAUNCHING" in out  # history


def test_status_json_output(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = StatusStore(status_table, dynamodb_client=aws_clients.client("dynamodb"))
    submission_id = new_uuid()
    store.claim_launch(_routed(submission_id), scorer_type="route-planner", lease_seconds=60)
    assert main(["status", submission_id, "--table", status_table, "--json"]) == 0
    out = capsys.readouterr().out
    assert f'"submissionId": "{submission_id}"' in out
    assert '"state": "LAUNCHING"' in out


def test_status_of_an_unknown_submission_says_so(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    submission_id = new_uuid()
    assert main(["status", submission_id, "--table", status_table]) == 1
    assert f"no lifecycle record for submission {submission_id}" in capsys.readouterr().out
