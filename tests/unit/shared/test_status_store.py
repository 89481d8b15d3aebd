"""mm_adapters.status_store against moto DynamoDB: every transition of the lifecycle / idempotency record.

Longer than ~400 lines on purpose: the transitions are one state machine, and reading them in one file is how a
change to one transition is checked against its neighbours.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mm_adapters.status_store import DEFAULT_RECONCILE_GRACE_SECONDS, LaunchDecision, OutcomeDecision, StatusStore
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from tests.builders import new_uuid
from tests.conftest import Clock

LEASE = 120
CHALLENGE = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"
PHASE = ScoringPhase.PROVISIONAL  # the phase of the single run most tests use


def run_of(sub: RoutedSubmission, phase: ScoringPhase = PHASE) -> str:
    return run_id(sub.submission_id, phase)


def task_arn() -> str:
    return f"arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/{new_uuid().replace('-', '')}"


def submission() -> RoutedSubmission:
    source = KafkaCoordinates(topic="submission.notification.create", partition=1, offset=7)
    return RoutedSubmission(
        submission_id=new_uuid(),
        challenge_id=CHALLENGE,
        member_id=40_158_994,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at=datetime(2027, 1, 15, tzinfo=UTC),
    )


def outcome(task: str, code: OutcomeCode = OutcomeCode.SUCCEEDED, exit_code: int | None = 0) -> Outcome:
    status = TestStatus.SUCCESS if code is OutcomeCode.SUCCEEDED else TestStatus.FAILED
    return Outcome(
        code=code,
        test_status=status,
        reason="Essential container in task exited",
        exit_code=exit_code,
        stop_code="EssentialContainerExited",
        task_arn=task,
    )


@pytest.fixture
def store(status_table: str, clock: Clock) -> StatusStore:
    return StatusStore(status_table, ttl_days=90, clock=clock)


def current(store: StatusStore, run: str) -> LifecycleRecord:
    record = store.get(run)
    assert record is not None
    return record


def launched(store: StatusStore, sub: RoutedSubmission, timeout: int = 600) -> str:
    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    assert claim.granted
    task = task_arn()
    assert store.mark_launched(
        run_of(sub), attempt=claim.attempt, task_arn=task, cluster_arn=CLUSTER_ARN, timeout_seconds=timeout
    )
    return task


# ------------------------------------------------------------------ claim_launch
def test_first_claim_is_granted_with_a_lease(store: StatusStore, clock: Clock) -> None:
    sub = submission()

    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert (claim.decision, claim.attempt, claim.granted) == (LaunchDecision.GRANTED, 1, True)
    record = current(store, run_of(sub))
    assert record.state is SubmissionState.LAUNCHING
    assert record.lease_until == int(clock.now) + LEASE
    assert (record.challenge_id, record.scorer_type, record.member_id) == (CHALLENGE, "java", 40_158_994)
    assert record.correlation_id == "submission.notification.create-1-7"
    assert record.expires_at == int(clock.now) + 90 * 86_400
    assert [entry.state for entry in record.history] == ["LAUNCHING"]


def test_claim_while_the_lease_is_live_is_a_duplicate_in_flight(store: StatusStore, clock: Clock) -> None:
    sub = submission()
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    clock.advance(LEASE - 1)

    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert (claim.decision, claim.granted, claim.attempt) == (LaunchDecision.DUPLICATE_IN_FLIGHT, False, 1)


def test_claim_after_launch_is_a_duplicate_launched(store: StatusStore) -> None:
    sub = submission()
    task = launched(store, sub)

    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert claim.decision is LaunchDecision.DUPLICATE_LAUNCHED
    assert claim.record is not None
    assert claim.record.task_arn == task


def test_claim_after_a_final_outcome_is_a_duplicate_finished(store: StatusStore) -> None:
    sub = submission()
    task = launched(store, sub)
    store.record_outcome(run_of(sub), CHALLENGE, outcome(task), report_required=False)

    assert (
        store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE).decision
        is LaunchDecision.DUPLICATE_FINISHED
    )


def test_expired_lease_is_reclaimed_with_the_same_attempt(store: StatusStore, clock: Clock) -> None:
    sub = submission()
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    clock.advance(LEASE + 1)

    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert (claim.decision, claim.attempt) == (LaunchDecision.GRANTED, 1)  # same clientToken
    record = current(store, run_of(sub))
    assert record.lease_until == int(clock.now) + LEASE
    assert "expired lease" in record.history[-1].detail


def test_definite_failure_is_reclaimed_with_the_next_attempt(store: StatusStore) -> None:
    sub = submission()
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    assert store.mark_launch_failed(run_of(sub), attempt=1, reason="capacity", dead_lettered=False)
    failed = current(store, run_of(sub))
    assert (failed.state, failed.reason, failed.lease_until) == (SubmissionState.LAUNCH_FAILED, "capacity", None)

    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert (claim.decision, claim.attempt) == (LaunchDecision.GRANTED, 2)
    assert current(store, run_of(sub)).state is SubmissionState.LAUNCHING


def test_dead_lettered_then_redriven_is_reclaimed_with_the_next_attempt(store: StatusStore) -> None:
    sub = submission()
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    assert store.mark_launch_failed(run_of(sub), attempt=1, reason="capacity", dead_lettered=True)
    assert current(store, run_of(sub)).state is SubmissionState.DEAD_LETTERED

    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert (claim.decision, claim.attempt) == (LaunchDecision.GRANTED, 2)


def test_only_one_of_two_concurrent_reclaims_wins(status_table: str, clock: Clock) -> None:
    sub = submission()
    first, second = StatusStore(status_table, clock=clock), StatusStore(status_table, clock=clock)
    first.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    first.mark_launch_failed(run_of(sub), attempt=1, reason="capacity", dead_lettered=False)

    a = first.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    b = second.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert (a.granted, b.granted) == (True, False)
    assert b.decision is LaunchDecision.DUPLICATE_IN_FLIGHT


# ------------------------------------------------------------------ mark_launched / mark_launch_failed
def test_mark_launched_sets_task_deadline_and_drops_the_lease(store: StatusStore, clock: Clock) -> None:
    sub = submission()
    task = launched(store, sub, timeout=900)

    record = current(store, run_of(sub))
    assert (record.state, record.task_arn, record.cluster_arn) == (SubmissionState.LAUNCHED, task, CLUSTER_ARN)
    assert record.deadline_at == int(clock.now) + 900
    assert record.lease_until is None
    assert record.launched_at is not None


def test_mark_launched_with_a_stale_attempt_is_refused(store: StatusStore) -> None:
    sub = submission()
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert not store.mark_launched(
        run_of(sub), attempt=2, task_arn=task_arn(), cluster_arn=CLUSTER_ARN, timeout_seconds=60
    )
    assert current(store, run_of(sub)).state is SubmissionState.LAUNCHING


def test_mark_launch_failed_never_overwrites_a_launched_record(store: StatusStore) -> None:
    sub = submission()
    launched(store, sub)

    assert not store.mark_launch_failed(run_of(sub), attempt=1, reason="late", dead_lettered=True)
    assert current(store, run_of(sub)).state is SubmissionState.LAUNCHED


# ------------------------------------------------------------------ record_outcome
def test_record_outcome_once_then_duplicate_event_is_already_recorded(store: StatusStore) -> None:
    sub = submission()
    task = launched(store, sub)

    first = store.record_outcome(
        run_of(sub), CHALLENGE, outcome(task, OutcomeCode.FAILED, exit_code=3), report_required=True
    )
    again = store.record_outcome(
        run_of(sub), CHALLENGE, outcome(task, OutcomeCode.FAILED, exit_code=3), report_required=True
    )

    assert first.decision is OutcomeDecision.RECORDED
    assert first.record is not None
    assert (first.record.state, first.record.exit_code) == (SubmissionState.FAILED, 3)
    assert first.record.report_status is ReportStatus.PENDING
    # A required report stays on the sweeper's index until it is settled (decision 080).
    assert first.record.deadline_at is not None
    assert again.decision is OutcomeDecision.ALREADY_RECORDED


def test_record_outcome_for_another_task_is_other_task(store: StatusStore) -> None:
    sub = submission()
    launched(store, sub)

    result = store.record_outcome(run_of(sub), CHALLENGE, outcome(task_arn()), report_required=False)

    assert result.decision is OutcomeDecision.OTHER_TASK
    assert result.record is not None
    assert result.record.state is SubmissionState.LAUNCHED


def test_record_outcome_overtaking_mark_launched_wins(store: StatusStore) -> None:
    sub = submission()
    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    task = task_arn()

    result = store.record_outcome(
        run_of(sub), CHALLENGE, outcome(task), report_required=False, launch_attempt=claim.attempt
    )
    marked = store.mark_launched(
        run_of(sub), attempt=claim.attempt, task_arn=task, cluster_arn=CLUSTER_ARN, timeout_seconds=60
    )

    assert result.decision is OutcomeDecision.RECORDED
    assert result.record is not None
    assert result.record.report_status is ReportStatus.NOT_REQUIRED
    assert not marked
    assert current(store, run_of(sub)).state is SubmissionState.SUCCEEDED


def test_record_outcome_without_an_item_never_creates_one(store: StatusStore) -> None:
    """Defect 8: the completion function acts only on submissions the pipeline launched."""
    run = run_id(new_uuid(), PHASE)

    result = store.record_outcome(run, CHALLENGE, outcome(task_arn(), OutcomeCode.TIMED_OUT), report_required=True)

    assert result.decision is OutcomeDecision.UNKNOWN_SUBMISSION
    assert store.get(run) is None


def test_record_outcome_of_an_older_attempts_task_never_settles_a_newer_attempt(store: StatusStore) -> None:
    """Defect 1: attempt 1's task stopping while the item is LAUNCHING attempt 2 is a stale event."""
    sub = submission()
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    store.mark_launch_failed(run_of(sub), attempt=1, reason="capacity", dead_lettered=False)
    assert store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE).attempt == 2

    result = store.record_outcome(
        run_of(sub),
        CHALLENGE,
        outcome(task_arn(), OutcomeCode.FAILED, exit_code=1),
        report_required=True,
        launch_attempt=1,
    )

    assert result.decision is OutcomeDecision.STALE_TASK
    record = current(store, run_of(sub))
    assert (record.state, record.launch_attempt) == (SubmissionState.LAUNCHING, 2)


# ------------------------------------------------------------------ reporting
def _pending(store: StatusStore) -> str:
    sub = submission()
    task = launched(store, sub)
    store.record_outcome(run_of(sub), CHALLENGE, outcome(task), report_required=True)
    return run_of(sub)


def test_claim_report_grants_once_until_the_lease_expires(store: StatusStore, clock: Clock) -> None:
    run = _pending(store)

    first = store.claim_report(run, lease_seconds=LEASE)
    busy = store.claim_report(run, lease_seconds=LEASE)
    clock.advance(LEASE + 1)
    after_expiry = store.claim_report(run, lease_seconds=LEASE)

    assert (first.granted, first.attempt, first.report_status) == (True, 1, ReportStatus.REPORTING)
    assert (busy.granted, busy.report_status) == (False, ReportStatus.REPORTING)
    assert (after_expiry.granted, after_expiry.attempt) == (True, 2)  # > 1: look before posting
    assert current(store, run).report_lease_until == int(clock.now) + LEASE


def test_release_report_lets_the_retry_claim_at_once(store: StatusStore) -> None:
    run = _pending(store)
    store.claim_report(run, lease_seconds=LEASE)

    assert store.release_report(run)
    retry = store.claim_report(run, lease_seconds=LEASE)

    assert (retry.granted, retry.attempt) == (True, 2)
    assert not store.release_report(run_id(new_uuid(), PHASE))  # nothing to release


def test_mark_reported_is_final(store: StatusStore) -> None:
    run = _pending(store)
    assert not store.mark_reported(run, response_summary="201")  # not claimed yet
    store.claim_report(run, lease_seconds=LEASE)

    assert store.mark_reported(run, response_summary="201 review 9f0e")
    record = current(store, run)
    assert (record.report_status, record.report_response) == (ReportStatus.REPORTED, "201 review 9f0e")
    assert record.reported_at is not None
    claim = store.claim_report(run, lease_seconds=LEASE)
    assert (claim.granted, claim.report_status) == (False, ReportStatus.REPORTED)


def test_mark_report_rejected_is_final(store: StatusStore) -> None:
    run = _pending(store)
    store.claim_report(run, lease_seconds=LEASE)

    assert store.mark_report_rejected(run, response_summary="400 score required")
    assert current(store, run).report_status is ReportStatus.REJECTED
    assert not store.claim_report(run, lease_seconds=LEASE).granted


def test_report_not_required_is_never_claimed(store: StatusStore) -> None:
    sub = submission()
    task = launched(store, sub)
    store.record_outcome(run_of(sub), CHALLENGE, outcome(task), report_required=False)

    claim = store.claim_report(run_of(sub), lease_seconds=LEASE)

    assert (claim.granted, claim.report_status) == (False, ReportStatus.NOT_REQUIRED)


# ------------------------------------------------------------------ timeout sweeper
def test_find_overdue_and_mark_stop_requested(store: StatusStore, clock: Clock) -> None:
    due, not_due, finished = submission(), submission(), submission()
    due_task = launched(store, due, timeout=60)
    launched(store, not_due, timeout=3600)
    finished_task = launched(store, finished, timeout=60)
    store.record_outcome(run_of(finished), CHALLENGE, outcome(finished_task), report_required=False)
    clock.advance(61)

    overdue = store.find_overdue()

    assert [(r.run_id, r.task_arn, r.cluster_arn) for r in overdue] == [(run_of(due), due_task, CLUSTER_ARN)]
    assert not store.mark_stop_requested(run_of(due), task_arn=task_arn(), reason="timeout")  # other task
    assert store.mark_stop_requested(run_of(due), task_arn=due_task, reason="mm-processor timeout: 60s")
    assert store.find_overdue() == []
    record = current(store, run_of(due))
    assert record.stop_requested_at is not None
    assert record.state is SubmissionState.LAUNCHED  # the STOPPED event decides the outcome
    # The deadline is pushed out by the default grace (not removed): overdue again only if no STOPPED event came
    assert record.deadline_at == int(clock.now) + DEFAULT_RECONCILE_GRACE_SECONDS
    assert record.history[-1].state == "STOP_REQUESTED"
    assert record.reconcile_attempt == 0


def test_stop_requested_item_is_overdue_again_after_its_grace(store: StatusStore, clock: Clock) -> None:
    # Given an overdue task the sweeper stopped with a 300 s grace
    sub = submission()
    task = launched(store, sub, timeout=60)
    clock.advance(61)
    assert store.mark_stop_requested(run_of(sub), task_arn=task, reason="timeout", grace_seconds=300)
    # When the grace has not passed, it is not overdue; when it has (no STOPPED event processed), it is
    clock.advance(299)
    assert store.find_overdue() == []
    clock.advance(2)
    assert [r.run_id for r in store.find_overdue()] == [run_of(sub)]


def test_stop_requested_item_leaves_the_index_once_its_outcome_is_recorded(store: StatusStore, clock: Clock) -> None:
    sub = submission()
    task = launched(store, sub, timeout=60)
    clock.advance(61)
    assert store.mark_stop_requested(run_of(sub), task_arn=task, reason="timeout", grace_seconds=300)
    store.record_outcome(run_of(sub), CHALLENGE, outcome(task), report_required=False)
    clock.advance(1000)
    assert store.find_overdue() == []
    assert current(store, run_of(sub)).deadline_at is None


def test_mark_reconcile_requested_counts_attempts_and_pushes_the_deadline(store: StatusStore, clock: Clock) -> None:
    # Given a stopped task whose STOPPED event never came
    sub = submission()
    task = launched(store, sub, timeout=60)
    clock.advance(61)
    store.mark_stop_requested(run_of(sub), task_arn=task, reason="timeout", grace_seconds=300)
    clock.advance(301)

    # When the sweeper reconciles twice
    assert store.mark_reconcile_requested(run_of(sub), task_arn=task, grace_seconds=300, detail="first")
    first = current(store, run_of(sub))
    clock.advance(301)
    assert store.mark_reconcile_requested(run_of(sub), task_arn=task, grace_seconds=300, detail="second")

    # Then each attempt is counted, pushes the deadline and is in the history; the item stays LAUNCHED
    record = current(store, run_of(sub))
    assert (first.reconcile_attempt, record.reconcile_attempt) == (1, 2)
    assert record.deadline_at == int(clock.now) + 300
    assert [(e.state, e.detail) for e in record.history[-2:]] == [
        ("RECONCILE_REQUESTED", "first"),
        ("RECONCILE_REQUESTED", "second"),
    ]
    assert record.state is SubmissionState.LAUNCHED
    assert store.find_overdue() == []


def test_reconcile_marks_need_the_same_task_in_launched(store: StatusStore, clock: Clock) -> None:
    sub = submission()
    task = launched(store, sub, timeout=60)
    assert not store.mark_reconcile_requested(run_of(sub), task_arn=task_arn(), grace_seconds=60, detail="x")
    assert not store.mark_reconcile_abandoned(run_of(sub), task_arn=task_arn(), detail="x")
    store.record_outcome(run_of(sub), CHALLENGE, outcome(task), report_required=False)
    # a final item is never touched again by the sweeper
    assert not store.mark_reconcile_requested(run_of(sub), task_arn=task, grace_seconds=60, detail="x")
    assert not store.mark_reconcile_abandoned(run_of(sub), task_arn=task, detail="x")
    assert not store.mark_stop_requested(run_of(sub), task_arn=task, reason="x")
    assert current(store, run_of(sub)).reconcile_attempt == 0


def test_mark_reconcile_abandoned_takes_the_item_off_the_index(store: StatusStore, clock: Clock) -> None:
    sub = submission()
    task = launched(store, sub, timeout=60)
    clock.advance(61)

    assert store.mark_reconcile_abandoned(run_of(sub), task_arn=task, detail="gave up after 3 attempts")

    record = current(store, run_of(sub))
    assert record.deadline_at is None
    assert record.state is SubmissionState.LAUNCHED
    assert record.history[-1].state == "RECONCILE_GAVE_UP"
    clock.advance(10_000)
    assert store.find_overdue() == []
