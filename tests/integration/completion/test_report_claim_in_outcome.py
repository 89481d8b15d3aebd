"""The report claim taken in the outcome write (decision 114): the invocation that records a run's outcome holds its
report lease from that write on, so a duplicate STOPPED event arriving after it posts nothing, and a crash after it
is covered once the lease expires (the retry, or the sweeper's re-drive), as a claim never finished always was."""

from __future__ import annotations

from typing import Any

import pytest

from completion_lambda.results import ReportInProgressError, ReportOutcomeUnsettledError
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    Completion,
    FakeLambda,
    launch_task,
    rid,
    stopped_event,
    task_arn,
)
from tests.integration.completion.test_sweeper_describe_first import FakeEcs, Harness, summary
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

LEASE = 120  # the completion function's report lease (CompletionPolicy.report_lease_seconds)
SLOW_COMMIT = 60  # CompletionPolicy.report_slow_commit_seconds
REPORT_CHECK = 600  # the completion function's report-check delay


class CrashAfterOutcome(Exception):
    """The invocation dies right after its outcome write (the process is gone: nothing is released)."""


def after_the_outcome_write(completion: Completion, monkeypatch: pytest.MonkeyPatch, then: Any) -> None:
    """Run `then()` once, right after the next outcome write committed (before the slot release and the report)."""
    record_outcome = completion.store.record_outcome

    def recording_then(*args: Any, **kwargs: Any) -> Any:
        recorded = record_outcome(*args, **kwargs)
        monkeypatch.setattr(completion.store, "record_outcome", record_outcome)
        then()
        return recorded

    monkeypatch.setattr(completion.store, "record_outcome", recording_then)


def test_the_outcome_write_claims_the_report_so_a_duplicate_event_after_it_posts_nothing(
    completion: Completion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a launched run, and a duplicate of its STOPPED event delivered right after the first one's outcome write
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    duplicate: list[BaseException] = []

    def deliver_the_duplicate() -> None:
        record = completion.record(submission_id)
        assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.REPORTING)
        assert record.report_attempt == 1
        try:
            completion.invoke(event)
        except ReportInProgressError as error:
            duplicate.append(error)

    after_the_outcome_write(completion, monkeypatch, deliver_the_duplicate)

    # When the first delivery runs
    result = completion.invoke(event)

    # Then the duplicate found the report claimed (a live lease: deferred, never acknowledged) and posted nothing,
    # and the invocation that recorded the outcome reported it, once
    assert len(duplicate) == 1
    assert result["disposition"] == "reported"
    assert completion.api.posts == 1
    assert len(completion.api.reviews_for(submission_id)) == 1
    assert completion.record(submission_id).report_status is ReportStatus.REPORTED
    # And the duplicate's retry, later, is a duplicate
    assert completion.invoke(event)["disposition"] == "duplicate"
    assert completion.api.posts == 1


def test_a_crash_after_the_outcome_write_is_reported_once_by_the_retry_after_the_lease(
    completion: Completion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an invocation that recorded the outcome (and so the report claim) and died before it posted
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)

    def crash() -> None:
        raise CrashAfterOutcome

    after_the_outcome_write(completion, monkeypatch, crash)
    with pytest.raises(CrashAfterOutcome):
        completion.invoke(event)
    record = completion.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.REPORTING)

    # While its lease is live the retry may race the dead holder: deferred, nothing posted
    with pytest.raises(ReportInProgressError):
        completion.invoke(event)
    # Once it expired, the holder may have posted until its end: the retry waits out the slow-commit window
    completion.clock.advance(LEASE + 1)
    with pytest.raises(ReportOutcomeUnsettledError):
        completion.invoke(event)
    assert (completion.api.lookups, completion.api.posts) == (0, 0)
    # Then it claims again (attempt 2), looks, finds no review and posts exactly one
    completion.clock.advance(SLOW_COMMIT)
    assert completion.invoke(event)["disposition"] == "reported"
    assert (completion.api.lookups, completion.api.posts) == (1, 1)
    assert completion.record(submission_id).report_status is ReportStatus.REPORTED


@pytest.fixture
def harness(completion: Completion, install_sweeper: Any, clock: Clock, lambda_context: Any) -> Harness:
    ecs = FakeEcs(clock)
    lam = FakeLambda()
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam, ecs_cluster_arns=(CLUSTER_ARN,))
    return Harness(completion, clock, ecs, lam, metrics, lambda_context)


def test_a_report_claimed_by_the_outcome_write_and_never_sent_is_re_driven_by_the_sweeper(harness: Harness) -> None:
    # Given an outcome recorded with its report claim, whose invocation died (and whose retries were lost)
    h = harness
    store = h.completion.store
    submission_id, arn = new_uuid(), task_arn()
    launch_task(store, submission_id, arn, CLUSTER_ARN)
    outcome = Outcome(
        code=OutcomeCode.FAILED,
        test_status=TestStatus.FAILED,
        reason="scorer exited 1",
        exit_code=1,
        stop_code="EssentialContainerExited",
        task_arn=arn,
    )
    recorded = store.record_outcome(
        rid(submission_id),
        CHALLENGE_ID,
        outcome,
        report_required=True,
        launch_attempt=1,
        report_check_seconds=REPORT_CHECK,
        report_lease_seconds=LEASE,
    )
    claim = store.claim_taken_with_outcome(recorded)
    assert claim is not None
    assert (claim.granted, claim.attempt, claim.ambiguous_at) == (True, 1, None)
    h.lam.deliver = h.completion.invoke

    # When the sweeper runs after the report check (the lease long expired)
    h.clock.advance(REPORT_CHECK + 1)
    assert h.sweep() == summary(reportsRedriven=1)

    # Then the re-driven STOPPED event took the expired claim over and reported once
    h.lam.run_pending()
    record = h.completion.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.REPORTED)
    assert len(h.completion.api.reviews_for(submission_id)) == 1


def test_no_claim_is_taken_when_no_report_is_due_or_the_outcome_was_recorded_before(completion: Completion) -> None:
    store = completion.store
    submission_id, arn = completion.launched()
    outcome = Outcome(code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exited 0", task_arn=arn)
    # A report not due: the lease is ignored, nothing claimed
    recorded = store.record_outcome(
        rid(submission_id), CHALLENGE_ID, outcome, report_required=False, report_lease_seconds=LEASE
    )
    assert recorded.record is not None
    assert recorded.record.report_status is ReportStatus.NOT_REQUIRED
    assert store.claim_taken_with_outcome(recorded) is None
    # A second write of the same outcome records nothing and claims nothing
    again = store.record_outcome(
        rid(submission_id), CHALLENGE_ID, outcome, report_required=True, report_lease_seconds=LEASE
    )
    assert store.claim_taken_with_outcome(again) is None
    assert completion.record(submission_id).report_status is ReportStatus.NOT_REQUIRED
