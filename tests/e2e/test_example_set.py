"""The built-in example set through the whole local pipeline: real handlers in worker processes, moto,
the fake Fargate running the example scorer, the spec-validating Topcoder stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_pipeline.report import write_report
from local_pipeline.tracker import REPORT_FINAL_STATES
from mm_adapters import aws as aws_clients
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import TIMEOUT_STOP_REASON_PREFIX
from operator_tools.cli import main
from tests.e2e.conftest import ExampleRun

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-example")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
IMAGE_DENOISE = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f602"


def test_every_record_ends_in_its_expected_final_state(example_run: ExampleRun) -> None:
    # Given the example set and its scenario, When it ran, Then each line reached the state the scenario names
    outcome = example_run.outcome
    assert len(outcome.records) == 15
    expected = {e.line: e for e in example_run.scenario.expected}
    assert set(expected) == {r.position for r in outcome.records}
    actual = {r.position: (r.state, r.reason) for r in outcome.records}
    for line, expectation in expected.items():
        state, reason = actual[line]
        assert state == expectation.state, f"line {line} ({expectation.note}): {state}: {reason}"
        if expectation.reason:
            assert reason.startswith(expectation.reason), f"line {line}: {reason}"
    assert outcome.unaccounted == []
    assert outcome.ok
    assert not outcome.deadline_hit


def test_the_legacy_numeric_challenge_id_is_routed_to_its_v5_challenge(example_run: ExampleRun) -> None:
    legacy = example_run.record(7)
    assert legacy.state == "scored"
    assert legacy.challenge_id == IMAGE_DENOISE


def test_a_duplicate_submission_launches_one_task_and_gets_one_result(example_run: ExampleRun) -> None:
    first, duplicate = example_run.record(0), example_run.record(5)
    assert first.submission_id == duplicate.submission_id
    assert first.state == "scored"
    assert duplicate.state == "skipped"
    assert "duplicate" in duplicate.reason
    fargate = example_run.pipeline.fargate
    assert fargate is not None
    assert len(fargate.tasks_for(str(first.submission_id))) == 1
    assert first.task_count == 1
    assert len(first.reviews) == 1
    assert example_run.outcome.violations == []


def test_a_failing_scorer_gets_exactly_one_failure_review_the_api_accepted(example_run: ExampleRun) -> None:
    failed = example_run.record(6)
    assert failed.state == "failed-reported"
    assert failed.lifecycle_state == "FAILED"
    assert failed.exit_code == 1
    assert failed.report_status == "REPORTED"
    assert len(failed.reviews) == 1
    review = failed.reviews[0]
    assert review["status"] == "completed"
    assert review["score"] == 0
    assert review["metadata"]["testStatus"] == "FAILED"
    assert review["metadata"]["taskArn"] == failed.task_arn
    # the stand-in validated every request against the v5 spec and the token contract
    assert example_run.outcome.api_violations == []
    standin = example_run.pipeline.standin
    assert standin is not None
    posts = [
        r for r in standin.requests_to("POST", "/v5/reviews") if r.json.get("submissionId") == failed.submission_id
    ]
    assert len(posts) == 1
    assert posts[0].valid
    assert posts[0].status == 200


def test_a_crashed_scorer_is_reported_as_failed_with_its_exit_code(example_run: ExampleRun) -> None:
    crashed = example_run.record(12)
    assert crashed.state == "failed-reported"
    assert crashed.exit_code == 137
    assert len(crashed.reviews) == 1


def test_a_launch_that_fails_every_time_lands_in_the_challenge_dlq(example_run: ExampleRun) -> None:
    dead = example_run.record(11)
    assert dead.state == "dead-lettered"
    assert dead.lifecycle_state == "DEAD_LETTERED"
    assert "Capacity is unavailable" in dead.reason
    assert dead.task_count == 0
    assert dead.reviews == []
    assert example_run.outcome.dead_letter_counts.get(ROUTE_PLANNER) == 1
    # one RunTask per receive, maxReceiveCount (3) receives, each answered with failures[] (injected in the
    # challenge worker's own ECS client by the fault layer, so the call never reaches the fake Fargate)
    pipeline = example_run.pipeline
    assert pipeline.resources is not None
    item = pipeline.aws.client("dynamodb").get_item(
        TableName=pipeline.resources.status_table, Key={"runId": {"S": dead.runs[0].run_id}}
    )["Item"]
    failures = [
        e["M"]["state"]["S"] for e in item["history"]["L"] if "Capacity" in e["M"].get("detail", {}).get("S", "")
    ]
    assert failures == ["LAUNCH_FAILED", "LAUNCH_FAILED", "DEAD_LETTERED"]
    assert item["launchAttempt"]["N"] == "3"


def test_a_scorer_running_past_its_timeout_is_stopped_and_reported_timed_out(example_run: ExampleRun) -> None:
    late = example_run.record(10)
    assert late.state == "timed-out"
    assert late.lifecycle_state == "TIMED_OUT"
    assert len(late.reviews) == 1
    assert late.reviews[0]["metadata"]["outcome"] == "TIMED_OUT"
    fargate = example_run.pipeline.fargate
    assert fargate is not None
    (task,) = fargate.tasks_for(str(late.submission_id))
    assert task.stop_code == "UserInitiated"
    assert str(task.stopped_reason).startswith(TIMEOUT_STOP_REASON_PREFIX)


def test_the_scorer_reports_with_the_injected_secret_and_no_secret_is_in_any_override(example_run: ExampleRun) -> None:
    scored = example_run.record(1)
    assert scored.state == "scored"
    (review,) = scored.reviews
    assert review["metadata"]["scorer"] == "examples/scorer"  # posted by the scorer process itself
    assert review["createdBy"] == "mm-processor-local@clients"  # with the token from the task's secrets
    fargate = example_run.pipeline.fargate
    assert fargate is not None
    assert example_run.outcome.secret_leaks == []
    for task in fargate.tasks.values():
        names = {pair["name"] for c in task.overrides["containerOverrides"] for pair in c["environment"]}
        assert TaskEnv.M2M_TOKEN.value not in names


def test_the_json_report_has_one_entry_per_record(example_run: ExampleRun, tmp_path: Path) -> None:
    report = write_report(example_run.outcome, tmp_path / "report.json")
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == report
    assert [r["position"] for r in report["records"]] == list(range(15))
    assert all(r["state"] in REPORT_FINAL_STATES for r in report["records"])
    assert sum(report["totals"]["byState"].values()) == 15
    assert report["totals"]["unaccounted"] == 0
    dead = report["records"][11]
    assert dead["lifecycleState"] == "DEAD_LETTERED"
    failed = report["records"][6]
    assert failed["taskArn"].startswith("arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/")
    assert failed["sentToApi"][0]["metadata"]["testStatus"] == "FAILED"
    assert report["timings"]["endToEnd"]["count"] >= 1
    assert report["awsCalls"]["perRoutedSubmission"]["dynamodb"] > 0


def test_status_command_prints_the_lifecycle_record_from_the_emulator(
    example_run: ExampleRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the status table the run left in the emulator
    monkeypatch.setenv("AWS_ENDPOINT_URL", example_run.pipeline.aws.endpoint)
    aws_clients.reset_clients()
    dead = example_run.record(11)
    try:
        # When an operator asks where the submission is
        status = main(["status", str(dead.submission_id), "--env", "example"])
    finally:
        aws_clients.reset_clients()
    # Then the record, its reason and history are printed
    out = capsys.readouterr().out
    assert status == 0
    assert "DEAD_LETTERED" in out
    assert "Capacity is unavailable" in out
    assert "LAUNCHING" in out  # the history
