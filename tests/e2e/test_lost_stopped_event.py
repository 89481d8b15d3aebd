"""A STOPPED event that never arrives, end to end: the fake Fargate runs the task and drops its event, and the
timeout sweeper's reconciliation (DescribeTasks, then an asynchronous Invoke through the fake Lambda endpoint)
still brings the submission to exactly one final state with exactly one report (decision 008)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infrastructure.config import load_environment
from local_pipeline.engine import LocalPipeline, RunOutcome
from local_pipeline.fargate import LOSE_STOPPED_EVENT
from local_pipeline.scenario import FaultSpec, InputRecord, Scenario
from local_pipeline.tracker import RecordResult
from mm_adapters.status_store import StatusStore
from tests.builders import bus_envelope, submission_payload

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-lost-stopped-event")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
IMAGE_DENOISE = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f602"
ALLOWED_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"


@dataclass
class LostEventRun:
    pipeline: LocalPipeline
    outcome: RunOutcome
    failing: str  # submission ids
    succeeding: str
    normal: str

    def result(self, submission_id: str) -> RecordResult:
        return next(r for r in self.outcome.records if r.submission_id == submission_id)


@pytest.fixture(scope="module")
def lost_event_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LostEventRun]:
    # Given three submissions: two whose STOPPED events are lost (a failing and a succeeding scorer), one normal
    failing = submission_payload(challenge_id=ROUTE_PLANNER, url=ALLOWED_URL)
    succeeding = submission_payload(challenge_id=IMAGE_DENOISE, url=ALLOWED_URL)
    normal = submission_payload(challenge_id=IMAGE_DENOISE, url=ALLOWED_URL)
    records = [
        InputRecord(position, json.dumps(bus_envelope(payload)).encode())
        for position, payload in enumerate((failing, succeeding, normal))
    ]
    scenario = Scenario(
        scorers={failing["id"]: "fail"},
        faults=[FaultSpec(failing["id"], LOSE_STOPPED_EVENT), FaultSpec(succeeding["id"], LOSE_STOPPED_EVENT)],
    )
    log_dir: Path = tmp_path_factory.mktemp("lost-event-run") / "logs"
    # When the pipeline runs them
    with LocalPipeline(load_environment("example"), log_dir=log_dir) as pipeline:
        outcome = pipeline.run(records, scenario, deadline_seconds=90)
        yield LostEventRun(pipeline, outcome, failing["id"], succeeding["id"], normal["id"])


def test_every_submission_ends_in_exactly_one_final_state_with_at_most_one_report(
    lost_event_run: LostEventRun,
) -> None:
    outcome = lost_event_run.outcome
    assert not outcome.deadline_hit
    assert outcome.unaccounted == []
    assert outcome.violations == []  # one task and at most one review per submission
    assert outcome.api_violations == []
    assert outcome.ok
    # the two events really were lost, and nothing went to the completion DLQ
    fargate = lost_event_run.pipeline.fargate
    assert fargate is not None
    lost = {fargate.tasks[arn].submission_id for arn in outcome.lost_stopped_events}
    assert lost == {lost_event_run.failing, lost_event_run.succeeding}
    assert outcome.completion_dlq_count == 0


def test_the_failing_run_is_reported_once_with_its_real_exit_code(lost_event_run: LostEventRun) -> None:
    result = lost_event_run.result(lost_event_run.failing)
    # Then the outcome is what the task really did (exit 1, from DescribeTasks), not a timeout
    assert (result.state, result.lifecycle_state, result.exit_code) == ("failed-reported", "FAILED", 1)
    assert result.task_count == 1
    [review] = result.reviews
    assert review["metadata"]["outcome"] == "FAILED"
    assert review["metadata"]["exitCode"] == 1


def test_the_succeeding_run_is_scored_with_the_scorers_own_review_only(lost_event_run: LostEventRun) -> None:
    result = lost_event_run.result(lost_event_run.succeeding)
    assert (result.state, result.lifecycle_state, result.exit_code) == ("scored", "SUCCEEDED", 0)
    assert result.report_status == "NOT_REQUIRED"
    [review] = result.reviews
    assert review["metadata"]["scorer"] == "examples/scorer"


def test_it_was_the_reconciler_that_finished_them(lost_event_run: LostEventRun) -> None:
    pipeline = lost_event_run.pipeline
    assert pipeline.lambda_endpoint is not None
    assert pipeline.fargate is not None
    invoked = [i for i in pipeline.lambda_endpoint.invocations if i["function"] == "mm-example-completion"]
    # the sweeper invoked the completion function asynchronously through the fake endpoint, for each lost task
    assert {i["caller"] for i in invoked} == {"local-example-timeout-sweeper"}
    assert {i["type"] for i in invoked} == {"Event"}
    reconciled = {arn for i in invoked for arn in i["resources"]}
    assert set(lost_event_run.outcome.lost_stopped_events) <= reconciled
    assert lost_event_run.outcome.async_invocations == len(pipeline.lambda_endpoint.invocations)
    assert lost_event_run.outcome.aws_calls["local-example-timeout-sweeper"]["lambda"] == len(invoked)
    # the sweeper described the task first and, finding it already stopped, never asked ECS to stop it
    # (decision 073: describe before stopping); the outcome is what the task really did
    for submission_id in (lost_event_run.failing, lost_event_run.succeeding):
        history = _history(pipeline, submission_id)
        assert any(s in {"SUCCEEDED", "FAILED"} for s in history)
        assert "STOP_REQUESTED" not in history
    # the normal submission's event was not lost (how fast it arrived under load is not asserted)
    lost_owners = {pipeline.fargate.tasks[arn].submission_id for arn in lost_event_run.outcome.lost_stopped_events}
    assert lost_event_run.normal not in lost_owners
    assert lost_event_run.result(lost_event_run.normal).state == "scored"


def _history(pipeline: LocalPipeline, submission_id: str) -> list[str]:
    """The status item's history, read after the run (the emulator is still up inside the fixture)."""
    assert pipeline.resources is not None
    store = StatusStore(pipeline.resources.status_table, dynamodb_client=pipeline.aws.client("dynamodb"))
    (run,) = store.get_runs(submission_id)  # a v5 submission: one run
    return [entry.state for entry in run.history]
