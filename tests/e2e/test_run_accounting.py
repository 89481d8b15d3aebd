"""The local run's own accounting (issue 7, defect 11; decision 079).

- A review that a slow API commit lands after the pipeline went quiet is still counted: the report is read
  only after a settle period at least as long as the stand-in's slowest configured commit delay, so a
  duplicate review fails the run.
- A review the API rejected (400/404: final by design) is shown as its own final state, not as pending.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infrastructure.config import load_environment
from local_pipeline.engine import LocalPipeline, RunOutcome
from local_pipeline.scenario import InputRecord, Scenario
from local_pipeline.tracker import REPORT_REJECTED, RecordResult
from tests.builders import bus_envelope, submission_payload

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-run-accounting")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
ALLOWED_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"
# Longer than the scorer's own HTTP timeout (10 s) and the compressed challenge timeout (~3 s): whichever ends
# the run first, its failure or timeout review reaches the API before the slow commit of the scorer's review.
SLOW_COMMIT_SECONDS = 15.0


@dataclass
class Run:
    pipeline: LocalPipeline
    outcome: RunOutcome
    submission_id: str

    @property
    def result(self) -> RecordResult:
        return next(r for r in self.outcome.records if r.submission_id == self.submission_id)


def _wait_for_the_api_to_answer_everything(pipeline: LocalPipeline, limit: float = 60.0) -> None:
    """Test-side: let every request the stand-in received finish (the slow commit lands), then compare."""
    assert pipeline.standin is not None
    give_up = time.monotonic() + limit
    while pipeline.standin.in_flight() and time.monotonic() < give_up:
        time.sleep(0.2)


def _run_one(
    tmp_path_factory: pytest.TempPathFactory, name: str, fault: dict[str, object], behaviour: str
) -> Iterator[Run]:
    payload = submission_payload(challenge_id=ROUTE_PLANNER, url=ALLOWED_URL)
    records = [InputRecord(0, json.dumps(bus_envelope(payload)).encode())]
    log_dir: Path = tmp_path_factory.mktemp(name) / "logs"
    with LocalPipeline(load_environment("example"), log_dir=log_dir) as pipeline:
        assert pipeline.standin is not None
        pipeline.standin.respond_with("POST", "/v5/reviews", submission_id=payload["id"], **fault)  # type: ignore[arg-type]
        outcome = pipeline.run(records, Scenario(scorers={payload["id"]: behaviour}), deadline_seconds=120)
        _wait_for_the_api_to_answer_everything(pipeline)
        yield Run(pipeline, outcome, payload["id"])


@pytest.fixture(scope="module")
def slow_commit_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    # Given a submission whose scorer's review POST is committed only after a long delay (a slow commit)
    # When the pipeline runs it
    yield from _run_one(tmp_path_factory, "slow-commit", {"status": None, "delay": SLOW_COMMIT_SECONDS}, "succeed")


@pytest.fixture(scope="module")
def rejected_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    # Given a failing submission whose failure review the API rejects with 400
    # When the pipeline runs it
    yield from _run_one(tmp_path_factory, "rejected", {"status": 400, "body": {"message": "bad review"}}, "fail")


def test_a_review_committed_after_the_pipeline_went_quiet_is_counted(slow_commit_run: Run) -> None:
    standin = slow_commit_run.pipeline.standin
    assert standin is not None
    result = slow_commit_run.result
    landed = standin.reviews_for(slow_commit_run.submission_id)
    # Then the run's view of the API is the API's final view: the slow commit landed before the report was read
    assert len(result.reviews) == len(landed) == 2


def test_a_duplicate_review_fails_the_run(slow_commit_run: Run) -> None:
    outcome = slow_commit_run.outcome
    assert f"submission {slow_commit_run.submission_id} got 2 reviews" in outcome.violations
    assert outcome.ok is False  # the CLI's exit status is 1 exactly when `ok` is False


def test_a_rejected_report_is_its_own_final_state_not_pending(rejected_run: Run) -> None:
    result = rejected_run.result
    assert result.lifecycle_state == "FAILED"
    assert result.report_status == "REJECTED"
    assert result.state == REPORT_REJECTED
    assert result.final
    assert result.reason.startswith("report rejected (400)")
    assert result not in rejected_run.outcome.unaccounted
    assert not rejected_run.outcome.deadline_hit
