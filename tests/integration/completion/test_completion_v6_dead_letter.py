"""A v6 run that could not be started gets exactly one terminal summation, updated (never doubled) by the outcome
of a redriven attempt (decision 086). The completion handler on moto against the stand-in's review-api-v6."""

from __future__ import annotations

from typing import Any

import pytest

from completion_lambda.recorded_outcomes import DEAD_LETTERED_NOTE
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.report_due import report_due_event
from tests.builders import new_uuid
from tests.integration.completion.conftest import CLUSTER_ARN, routed, task_arn
from tests.integration.completion.test_completion_v6 import Harness, nanoid, stopped
from tests.integration.completion.test_completion_v6 import v6 as v6  # the fixture
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EXAMPLE = ScoringPhase.EXAMPLE
LAUNCH_REASON = "RESOURCE:CPU: RunTask failures[]: RESOURCE:CPU"


def dead_lettered(harness: Harness, *, platform: Platform = Platform.V6, ambiguous: bool = False) -> str:
    """A run whose every delivery's RunTask failed, as the challenge processor leaves it on the last receive."""
    submission_id = nanoid() if platform is Platform.V6 else new_uuid()
    harness.standin.add_submission(submission_id, CHALLENGE_ID, 40_158_994)
    claim = harness.store.claim_launch(
        routed(submission_id, platform=platform), phase=EXAMPLE, scorer_type="example-scorer", lease_seconds=120
    )
    run = run_id(submission_id, EXAMPLE)
    if ambiguous:
        assert harness.store.mark_launch_outcome_unknown(run, attempt=claim.attempt, reason="5xx", dead_lettered=True)
    else:
        assert harness.store.mark_launch_failed(run, attempt=claim.attempt, reason=LAUNCH_REASON, dead_lettered=True)
    return submission_id


def test_the_report_due_of_a_dead_lettered_v6_run_writes_one_failed_summation(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id = dead_lettered(harness)
    event = report_due_event(run_id(submission_id, EXAMPLE))

    first = harness.invoke(event)
    second = harness.invoke(event)  # the sweeper's re-drive, or a duplicate invoke

    assert (first["disposition"], second["disposition"]) == ("reported", "duplicate")
    [summation] = harness.standin.summations_for(submission_id, "EXAMPLE")
    assert (summation["aggregateScore"], summation["isPassing"], summation["isExample"]) == (-1, False, True)
    metadata = summation["metadata"]
    assert metadata["reason"] == f"{LAUNCH_REASON}; {DEAD_LETTERED_NOTE}"
    assert (metadata["testStatus"], metadata["outcome"], metadata["taskArn"]) == ("FAILED", "FAILED", None)
    assert metadata["runId"] == run_id(submission_id, EXAMPLE)
    assert harness.posts() == 1
    record = harness.record(submission_id, EXAMPLE)
    assert (record.state, record.report_status, record.deadline_at) == (
        SubmissionState.DEAD_LETTERED,  # still redrivable
        ReportStatus.REPORTED,
        None,
    )


@pytest.mark.parametrize("case", ["v5", "ambiguous"])
def test_a_dead_letter_without_a_report_due_is_not_reported(v6: tuple[Harness, Any], case: str) -> None:
    harness, install = v6
    install()
    submission_id = dead_lettered(
        harness, platform=Platform.V5 if case == "v5" else Platform.V6, ambiguous=case == "ambiguous"
    )

    result = harness.invoke(report_due_event(run_id(submission_id, EXAMPLE)))

    assert (result["disposition"], result["reason"]) == ("ignored", "run_not_final")
    assert harness.standin.summations_for(submission_id, "EXAMPLE") == []


def test_a_redriven_run_that_then_fails_updates_the_same_summation(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id = dead_lettered(harness)
    run = run_id(submission_id, EXAMPLE)
    harness.invoke(report_due_event(run))
    [terminal] = harness.standin.summations_for(submission_id, "EXAMPLE")

    # An operator redrives the DLQ: the run is claimed again (attempt 2), launched, and its task fails
    harness.clock.advance(3600)
    claim = harness.store.claim_launch(
        routed(submission_id, platform=Platform.V6), phase=EXAMPLE, scorer_type="example-scorer", lease_seconds=120
    )
    assert (claim.granted, claim.attempt) == (True, 2)
    arn = task_arn()
    assert harness.store.mark_launched(run, attempt=2, task_arn=arn, cluster_arn=CLUSTER_ARN, timeout_seconds=3600)
    result = harness.invoke(stopped(submission_id, arn, EXAMPLE, exit_code=4))

    assert result["disposition"] == "reported"
    [summation] = harness.standin.summations_for(submission_id, "EXAMPLE")  # one summation, never a second
    assert summation["id"] == terminal["id"]
    assert (summation["metadata"]["taskArn"], summation["metadata"]["exitCode"]) == (arn, 4)
    assert summation["metadata"]["reason"] == "scorer exited with code 4"
    assert (harness.posts(), harness.patches()) == (1, 1)
    record = harness.record(submission_id, EXAMPLE)
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.REPORTED)
