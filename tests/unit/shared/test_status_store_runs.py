"""The run identity in the status table (decision 084): one item per (submission, phase), on moto DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mm_adapters.status_store import LaunchDecision, OutcomeDecision, StatusStore
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.outcome import OutcomeCode
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from tests.conftest import Clock
from tests.unit.shared.test_status_store import CHALLENGE, CLUSTER_ARN, LEASE, current, outcome, submission, task_arn

EXAMPLE, PROVISIONAL, SYSTEM = ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL, ScoringPhase.SYSTEM


@pytest.fixture
def store(status_table: str, clock: Clock) -> StatusStore:
    return StatusStore(status_table, clock=clock)


def v6_submission(submission_id: str = "aB3_-xYz09QwEr") -> RoutedSubmission:
    source = KafkaCoordinates(topic="marathonmatch.submission.received", partition=0, offset=3)
    return RoutedSubmission(
        platform=Platform.V6,
        submission_id=submission_id,
        challenge_id=CHALLENGE,
        member_id=40_158_994,
        member_handle="tourist",
        url="https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at=datetime(2027, 1, 15, tzinfo=UTC),
    )


def launch(store: StatusStore, sub: RoutedSubmission, phase: ScoringPhase) -> str:
    claim = store.claim_launch(sub, phase=phase, scorer_type="java", lease_seconds=LEASE)
    assert claim.granted
    task = task_arn()
    assert store.mark_launched(
        run_id(sub.submission_id, phase),
        attempt=claim.attempt,
        task_arn=task,
        cluster_arn=CLUSTER_ARN,
        timeout_seconds=600,
    )
    return task


# ------------------------------------------------------------------ two phases, two runs
def test_a_claim_writes_the_run_identity(store: StatusStore) -> None:
    sub = v6_submission()

    store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)

    record = current(store, f"{sub.submission_id}#EXAMPLE")
    assert (record.run_id, record.submission_id, record.phase, record.platform) == (
        f"{sub.submission_id}#EXAMPLE",
        sub.submission_id,
        EXAMPLE,
        Platform.V6,
    )
    assert store.get(run_id(sub.submission_id, PROVISIONAL)) is None


def test_two_phases_of_one_submission_are_claimed_independently(store: StatusStore) -> None:
    sub = submission()

    example = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)
    provisional = store.claim_launch(sub, phase=PROVISIONAL, scorer_type="java", lease_seconds=LEASE)
    again = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)

    assert (example.decision, example.attempt) == (LaunchDecision.GRANTED, 1)
    assert (provisional.decision, provisional.attempt) == (LaunchDecision.GRANTED, 1)
    assert again.decision is LaunchDecision.DUPLICATE_IN_FLIGHT


def test_the_outcome_of_one_phase_leaves_the_other_phase_alone(store: StatusStore) -> None:
    sub = submission()
    example_task = launch(store, sub, EXAMPLE)
    provisional_task = launch(store, sub, PROVISIONAL)

    failed = store.record_outcome(
        run_id(sub.submission_id, EXAMPLE),
        CHALLENGE,
        outcome(example_task, OutcomeCode.FAILED, exit_code=2),
        report_required=True,
    )
    # The EXAMPLE task's event, delivered against the PROVISIONAL run, is another task's event.
    crossed = store.record_outcome(
        run_id(sub.submission_id, PROVISIONAL), CHALLENGE, outcome(example_task), report_required=True
    )

    assert failed.decision is OutcomeDecision.RECORDED
    assert crossed.decision is OutcomeDecision.OTHER_TASK
    provisional = current(store, run_id(sub.submission_id, PROVISIONAL))
    assert (provisional.state, provisional.task_arn) == (SubmissionState.LAUNCHED, provisional_task)
    assert current(store, run_id(sub.submission_id, EXAMPLE)).state is SubmissionState.FAILED
    claim = store.claim_report(run_id(sub.submission_id, EXAMPLE), lease_seconds=LEASE)
    assert claim.granted
    assert not store.claim_report(run_id(sub.submission_id, PROVISIONAL), lease_seconds=LEASE).granted


# ------------------------------------------------------------------ get_runs / get_many
def test_get_runs_returns_the_existing_runs_in_phase_order(store: StatusStore) -> None:
    sub, other = submission(), submission()
    store.claim_launch(sub, phase=SYSTEM, scorer_type="java", lease_seconds=LEASE)
    store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)
    store.claim_launch(other, phase=PROVISIONAL, scorer_type="java", lease_seconds=LEASE)

    runs = store.get_runs(sub.submission_id)

    assert [(r.submission_id, r.phase) for r in runs] == [(sub.submission_id, EXAMPLE), (sub.submission_id, SYSTEM)]
    assert store.get_runs(submission().submission_id) == []


def test_get_many_is_keyed_by_run_id(store: StatusStore) -> None:
    sub = submission()
    store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)
    store.claim_launch(sub, phase=PROVISIONAL, scorer_type="java", lease_seconds=LEASE)
    wanted = [run_id(sub.submission_id, EXAMPLE), run_id(sub.submission_id, PROVISIONAL)]

    found = store.get_many([*wanted, run_id(sub.submission_id, SYSTEM)])

    assert sorted(found) == sorted(wanted)
    assert found[wanted[1]].phase is PROVISIONAL


# ------------------------------------------------------------------ record_skipped
def test_record_skipped_creates_a_final_failed_run_with_its_report_due(store: StatusStore, clock: Clock) -> None:
    sub = v6_submission()

    created = store.record_skipped(
        sub, phase=PROVISIONAL, scorer_type="java", reason="challenge inactive", report_due_in_seconds=60
    )

    assert created
    record = current(store, run_id(sub.submission_id, PROVISIONAL))
    assert (record.state, record.test_status, record.reason) == (SubmissionState.FAILED, "FAILED", "challenge inactive")
    assert (record.phase, record.platform, record.submission_id) == (PROVISIONAL, Platform.V6, sub.submission_id)
    assert (record.task_arn, record.report_status) == (None, ReportStatus.PENDING)
    assert record.deadline_at == int(clock.now) + 60
    assert [(e.state, e.detail) for e in record.history] == [("SKIPPED", "SKIPPED: challenge inactive")]
    # the sweeper finds it once the report is due, with the other final items whose report is unfinished
    clock.advance(61)
    due = store.find_due(SubmissionState.FAILED, before=clock.now)
    assert [(r.run_id, r.submission_id, r.phase) for r in due] == [(record.run_id, sub.submission_id, PROVISIONAL)]
    # and the completion function can claim its report
    assert store.claim_report(record.run_id, lease_seconds=LEASE).granted


def test_record_skipped_is_idempotent(store: StatusStore, clock: Clock) -> None:
    sub = v6_submission()
    assert store.record_skipped(sub, phase=EXAMPLE, scorer_type="java", reason="first")
    clock.advance(5)

    again = store.record_skipped(sub, phase=EXAMPLE, scorer_type="java", reason="second")

    assert not again
    record = current(store, run_id(sub.submission_id, EXAMPLE))
    assert (record.reason, len(record.history)) == ("first", 1)
    assert record.deadline_at == int(clock.now) - 5


def test_record_skipped_never_touches_a_run_that_was_launched(store: StatusStore) -> None:
    sub = v6_submission()
    task = launch(store, sub, EXAMPLE)

    assert not store.record_skipped(sub, phase=EXAMPLE, scorer_type="java", reason="late skip")

    record = current(store, run_id(sub.submission_id, EXAMPLE))
    assert (record.state, record.task_arn) == (SubmissionState.LAUNCHED, task)


def test_a_skipped_run_is_never_launched(store: StatusStore) -> None:
    sub = v6_submission()
    store.record_skipped(sub, phase=EXAMPLE, scorer_type="java", reason="no phase triggered")

    claim = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)

    assert claim.decision is LaunchDecision.DUPLICATE_FINISHED
