"""`mm-processor status` tells the operator what to do next, not only what the record says."""

from __future__ import annotations

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_contracts.models import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import ScoringPhase, run_id
from operator_tools.cli import main
from tests.builders import new_uuid
from tests.unit.operator_tools.conftest import routed_submission

TABLE = "mm-dev-submission-status"  # the stacks' naming: the environment is read back from it


@pytest.fixture
def store(aws: None) -> StatusStore:
    from mm_contracts.tables import status_table_definition

    aws_clients.client("dynamodb").create_table(**status_table_definition(TABLE))
    return StatusStore(TABLE, dynamodb_client=aws_clients.client("dynamodb"))


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def _claimed(store: StatusStore) -> tuple[str, str, int]:
    submission = routed_submission()
    claim = store.claim_launch(
        submission, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", lease_seconds=60
    )
    # the run id (what the store is keyed by); `status` takes the submission id and finds its runs
    return run_id(submission.submission_id, ScoringPhase.PROVISIONAL), submission.challenge_id, claim.attempt


def test_an_unknown_submission_points_upstream_with_a_ready_query(
    store: StatusStore, capsys: pytest.CaptureFixture[str]
) -> None:
    submission_id = new_uuid()

    status = main(["status", submission_id, "--table", TABLE])

    out = capsys.readouterr().out
    assert status != 0
    assert "mm-dev-router-audit" in out
    assert "/aws/lambda/mm-dev-router" in out
    assert f'filter submission_id = "{submission_id}"' in out


def test_a_dead_lettered_submission_names_its_dlq_and_the_redrive(
    store: StatusStore, capsys: pytest.CaptureFixture[str]
) -> None:
    key, challenge_id, attempt = _claimed(store)
    submission_id = key.partition("#")[0]
    store.mark_launch_failed(key, attempt=attempt, reason="Capacity is unavailable", dead_lettered=True)

    assert main(["status", submission_id, "--table", TABLE]) == 0

    out = capsys.readouterr().out
    assert f"mm-dev-ch-{challenge_id}-dlq" in out
    assert "redrive" in out


def test_a_rejected_report_says_it_will_not_be_retried(store: StatusStore, capsys: pytest.CaptureFixture[str]) -> None:
    key, challenge_id, attempt = _claimed(store)
    submission_id = key.partition("#")[0]
    task = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/abc"
    store.mark_launched(key, attempt=attempt, task_arn=task, cluster_arn="c", timeout_seconds=60)
    outcome = Outcome(
        code=OutcomeCode.FAILED, test_status=TestStatus.FAILED, reason="exit 1", exit_code=1, task_arn=task
    )
    store.record_outcome(key, challenge_id, outcome, report_required=True)
    store.claim_report(key, lease_seconds=60)
    store.mark_report_rejected(key, response_summary="404 submission not found")

    assert main(["status", submission_id, "--table", TABLE]) == 0

    out = capsys.readouterr().out
    assert "404 submission not found" in out
    assert "will not be retried" in out


def test_a_scored_submission_needs_no_next_step(store: StatusStore, capsys: pytest.CaptureFixture[str]) -> None:
    key, challenge_id, attempt = _claimed(store)
    submission_id = key.partition("#")[0]
    task = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/def"
    store.mark_launched(key, attempt=attempt, task_arn=task, cluster_arn="c", timeout_seconds=60)
    outcome = Outcome(
        code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exit 0", exit_code=0, task_arn=task
    )
    store.record_outcome(key, challenge_id, outcome, report_required=False)

    assert main(["status", submission_id, "--table", TABLE]) == 0

    out = capsys.readouterr().out
    assert "SUCCEEDED" in out
    assert "next step" not in out


def test_the_not_found_query_matches_a_record_the_router_names_in_a_chunk_line() -> None:
    from operator_tools.status_hints import not_found_hints

    # Given a submission the router skipped: it is named inside a `records skipped` line (decision 113)
    submission_id = new_uuid()
    # When the operator reads the hints for "no record"
    query = "\n".join(not_found_hints(submission_id, "dev"))
    # Then the Logs Insights query matches the id anywhere in the line's text, not only as a top-level field
    assert f'@message like "{submission_id}"' in query
    assert "/aws/lambda/mm-dev-router" in query
