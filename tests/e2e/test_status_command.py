"""`mm-processor status`: the operator's "where is submission X, and why" against a status table, run by run."""

from __future__ import annotations

import json

import pytest

from local_pipeline.cli import main
from mm_shared import aws as aws_clients
from mm_shared.models.phase import Platform, ScoringPhase, run_id
from mm_shared.models.routed import KafkaCoordinates, RoutedSubmission
from mm_shared.status_store import StatusStore
from tests.builders import new_uuid

V6_SUBMISSION = "B-7z0m074qy7du"  # a real v6 id form (nanoid 14)
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef"
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long values at the default 80 columns


def _routed(submission_id: str, platform: Platform = Platform.V5) -> RoutedSubmission:
    topic = "marathonmatch.submission.received" if platform is Platform.V6 else "submission.notification.create"
    source = KafkaCoordinates(topic=topic, partition=0, offset=7)
    return RoutedSubmission(
        platform=platform,
        submission_id=submission_id,
        challenge_id=new_uuid(),
        member_id=40158994,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/x.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at="2026-03-02T10:15:00Z",
    )


def _store(table: str) -> StatusStore:
    return StatusStore(table, dynamodb_client=aws_clients.client("dynamodb"))


def test_status_prints_state_reason_task_and_history(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a v5 submission (one run) whose task is running
    store = _store(status_table)
    submission_id = new_uuid()
    routed = _routed(submission_id)
    claim = store.claim_launch(routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", lease_seconds=60)
    store.mark_launched(
        run_id(submission_id, ScoringPhase.PROVISIONAL),
        attempt=claim.attempt,
        task_arn=TASK_ARN,
        cluster_arn=CLUSTER_ARN,
        timeout_seconds=60,
    )
    # When the operator asks by submission id
    status = main(["status", submission_id, "--table", status_table])
    # Then its run, state, phase, task and history are printed
    out = capsys.readouterr().out
    assert status == 0
    assert "LAUNCHED" in out
    assert "PROVISIONAL" in out
    assert "0123456789abcdef" in out
    assert "LAUNCHING" in out  # history


def test_status_shows_every_run_of_a_v6_submission_with_its_phase(
    status_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a v6 submission with an EXAMPLE run launched and a PROVISIONAL run skipped
    store = _store(status_table)
    routed = _routed(V6_SUBMISSION, Platform.V6)
    claim = store.claim_launch(routed, phase=ScoringPhase.EXAMPLE, scorer_type="route-planner", lease_seconds=60)
    store.mark_launched(
        run_id(V6_SUBMISSION, ScoringPhase.EXAMPLE),
        attempt=claim.attempt,
        task_arn=TASK_ARN,
        cluster_arn=CLUSTER_ARN,
        timeout_seconds=60,
    )
    assert store.record_skipped(
        routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", reason="no_capacity_for_phase"
    )
    # When the operator asks by submission id
    assert main(["status", V6_SUBMISSION, "--table", status_table]) == 0
    out = capsys.readouterr().out
    # Then both runs are shown, each with its phase, state and reason
    assert f"{V6_SUBMISSION}#EXAMPLE" in out
    assert f"{V6_SUBMISSION}#PROVISIONAL" in out
    assert "2 run(s)" in out
    assert "LAUNCHED" in out
    assert "FAILED" in out
    assert "no_capacity_for_phase" in out


def test_status_of_one_run_id_shows_only_that_run(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(status_table)
    routed = _routed(V6_SUBMISSION, Platform.V6)
    for phase in (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL):
        store.claim_launch(routed, phase=phase, scorer_type="route-planner", lease_seconds=60)

    assert main(["status", f"{V6_SUBMISSION}#EXAMPLE", "--table", status_table, "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert [run["runId"] for run in document["runs"]] == [f"{V6_SUBMISSION}#EXAMPLE"]


def test_status_json_lists_the_runs(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(status_table)
    routed = _routed(V6_SUBMISSION, Platform.V6)
    for phase in (ScoringPhase.PROVISIONAL, ScoringPhase.EXAMPLE):
        store.claim_launch(routed, phase=phase, scorer_type="route-planner", lease_seconds=60)

    assert main(["status", V6_SUBMISSION, "--table", status_table, "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["submissionId"] == V6_SUBMISSION
    runs = {run["phase"]: run for run in document["runs"]}
    assert set(runs) == {"EXAMPLE", "PROVISIONAL"}
    assert all(run["state"] == "LAUNCHING" and run["platform"] == "v6" for run in runs.values())


def test_status_of_an_unknown_submission_says_so(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    submission_id = new_uuid()
    assert main(["status", submission_id, "--table", status_table]) == 1
    assert f"no lifecycle record for submission {submission_id}" in capsys.readouterr().out


def test_status_of_a_malformed_run_id_finds_nothing(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", f"{V6_SUBMISSION}#FINAL", "--table", status_table]) == 1
    assert "no lifecycle record" in capsys.readouterr().out
