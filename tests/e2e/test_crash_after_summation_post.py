"""The completion function dies right after review-api-v6 committed its summation POST (fault
`crash-after-review-post`, installed on the completion worker's Topcoder session by `local_pipeline.hooks`): the
retried report looks first, finds the summation the dead attempt wrote, and the run ends with exactly one
summation for its phase (decisions 079, 086)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.config import load_environment
from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import FaultSpec, InputRecord, Scenario

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-crash-after-summation")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"  # dev: EXAMPLE and PROVISIONAL on every new submission
SUBMISSION = "V6crashPost001"
SUMMATIONS = "/v6/reviewSummations"


def _v6_record(submission_id: str) -> InputRecord:
    payload = {
        "submissionId": submission_id,
        "challengeId": ROUTE_PLANNER,
        "submissionUrl": f"https://topcoder-submissions.s3.amazonaws.com/mm/{submission_id}.zip",
        "memberHandle": "tourist",
        "memberId": "88770025",
        "submittedDate": "2026-03-02T10:15:00.000Z",
    }
    envelope = {
        "topic": "marathonmatch.submission.received",
        "originator": "review-api-v6",
        "timestamp": "2026-03-02T10:15:00.000Z",
        "mime-type": "application/json",
        "payload": payload,
    }
    return InputRecord(position=0, value=json.dumps(envelope).encode())


def test_a_crash_after_the_summation_post_still_ends_with_exactly_one_summation(tmp_path: Path) -> None:
    # Given a v6 submission whose PROVISIONAL scorer fails, and a completion function that dies once right
    # after its summation POST returned (the summation is committed; the status item still says REPORTING)
    scenario = Scenario(
        scorers={f"{SUBMISSION}#PROVISIONAL": "fail"},
        faults=[FaultSpec(target_id=SUBMISSION, kind="crash-after-review-post", count=1)],
    )
    with LocalPipeline(load_environment("dev"), log_dir=tmp_path / "logs") as pipeline:
        # When the pipeline runs it to the end
        outcome = pipeline.run([_v6_record(SUBMISSION)], scenario, deadline_seconds=120)
        standin = pipeline.standin
        assert standin is not None

        # Then the run failed and was reported, with one terminal FAILED summation for its phase only
        (record,) = outcome.records
        provisional = record.run("PROVISIONAL")
        assert provisional is not None
        assert provisional.state == "failed-reported", record
        assert outcome.unaccounted == []
        assert outcome.violations == []
        assert outcome.api_violations == []
        (summation,) = standin.summations_for(SUBMISSION, "PROVISIONAL")
        assert (summation["aggregateScore"], summation["isPassing"]) == (-1, False)
        assert summation["metadata"]["runId"] == f"{SUBMISSION}#PROVISIONAL"

        # ... and the crash did happen: one POST for the phase, then the retry looked again and found it
        posts = [
            r
            for r in standin.requests_to("POST", SUMMATIONS)
            if (r.json or {}).get("submissionId") == SUBMISSION and (r.json or {}).get("isProvisional") is True
        ]
        looks = [
            r
            for r in standin.requests_to("GET", SUMMATIONS)
            if r.query.get("submissionId") == [SUBMISSION] and r.query.get("provisional") == ["true"]
        ]
        assert len(posts) == 1
        assert len(looks) >= 2, [r.query for r in looks]
