"""A v6 run that cannot be started gets its terminal report due (decision 086), on moto DynamoDB.

Only a *definite* dead-letter of a v6 run: a v5 run and an ambiguous launch stay with the operator's redrive and
the sweeper's adopt-or-stop path. A redrive claims the run again and forgets that report (never while it is being
sent), so the new attempt's outcome is reported afresh.
"""

from __future__ import annotations

import pytest

from mm_adapters.status_store import DEFAULT_MESSAGE_LIFETIME_SECONDS, LaunchDecision, StatusStore
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.outcome import OutcomeCode
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from tests.conftest import Clock
from tests.unit.shared.test_status_store import CLUSTER_ARN, LEASE, current, outcome, submission, task_arn
from tests.unit.shared.test_status_store_launch import StaleReadStore
from tests.unit.shared.test_status_store_runs import v6_submission

EXAMPLE = ScoringPhase.EXAMPLE
REPORT_LEASE = 120


@pytest.fixture
def store(status_table: str, clock: Clock) -> StatusStore:
    return StatusStore(status_table, clock=clock)


def claimed(store: StatusStore, sub: RoutedSubmission) -> tuple[str, int]:
    claim = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)
    assert claim.granted
    return run_id(sub.submission_id, EXAMPLE), claim.attempt


def dead_lettered_v6(store: StatusStore) -> tuple[RoutedSubmission, str]:
    sub = v6_submission()
    run, attempt = claimed(store, sub)
    result = store.mark_launch_failed(run, attempt=attempt, reason="RESOURCE:CPU: capacity", dead_lettered=True)
    assert result.report_due
    return sub, run


# ------------------------------------------------------------------ the dead-letter write
def test_a_definite_v6_dead_letter_gets_its_report_due_in_the_same_write(store: StatusStore, clock: Clock) -> None:
    sub = v6_submission()
    run, attempt = claimed(store, sub)

    result = store.mark_launch_failed(run, attempt=attempt, reason="RESOURCE:CPU: capacity", dead_lettered=True)

    record = current(store, run)
    assert (bool(result), result.report_due) == (True, True)
    assert (record.state, record.report_status, record.test_status) == (
        SubmissionState.DEAD_LETTERED,
        ReportStatus.PENDING,
        "FAILED",
    )
    assert record.deadline_at == int(clock.now)  # due now: the sweeper re-drives it if nobody reports it
    assert record.reason == "RESOURCE:CPU: capacity"
    assert (record.launch_ambiguous, record.lease_until) == (False, None)


def test_a_v5_dead_letter_is_left_for_the_operators_redrive(store: StatusStore) -> None:
    run, attempt = claimed(store, submission())

    result = store.mark_launch_failed(run, attempt=attempt, reason="capacity", dead_lettered=True)

    record = current(store, run)
    assert (bool(result), result.report_due) == (True, False)
    assert (record.state, record.report_status, record.test_status, record.deadline_at) == (
        SubmissionState.DEAD_LETTERED,
        None,
        None,
        None,
    )


def test_an_ambiguous_v6_dead_letter_gets_no_report(store: StatusStore, clock: Clock) -> None:
    """An earlier RunTask of the attempt may have started a task: the throttled last call settles nothing."""
    sub = v6_submission()
    run, attempt = claimed(store, sub)
    assert store.mark_launch_outcome_unknown(run, attempt=attempt, reason="5xx", dead_lettered=False)

    result = store.mark_launch_failed(
        run, attempt=attempt, reason="Throttling", dead_lettered=True, token_settled=False
    )

    record = current(store, run)
    assert (bool(result), result.report_due) == (True, False)
    assert (record.state, record.launch_ambiguous, record.report_status, record.deadline_at) == (
        SubmissionState.DEAD_LETTERED,
        True,
        None,
        None,
    )


def test_a_v6_dead_letter_whose_answer_settles_the_token_is_definite(store: StatusStore) -> None:
    """failures[] after an ambiguous call of the same attempt: ECS saw this token and started nothing."""
    sub = v6_submission()
    run, attempt = claimed(store, sub)
    store.mark_launch_outcome_unknown(run, attempt=attempt, reason="5xx", dead_lettered=False)

    result = store.mark_launch_failed(run, attempt=attempt, reason="failures[]", dead_lettered=True)

    assert result.report_due
    assert current(store, run).report_status is ReportStatus.PENDING


def test_a_dead_letter_of_a_launch_not_held_writes_nothing(store: StatusStore) -> None:
    sub = v6_submission()
    run, attempt = claimed(store, sub)
    store.mark_launched(run, attempt=attempt, task_arn=task_arn(), cluster_arn=CLUSTER_ARN, timeout_seconds=600)

    result = store.mark_launch_failed(run, attempt=attempt, reason="late", dead_lettered=True)

    assert (bool(result), result.report_due) == (False, False)
    assert current(store, run).state is SubmissionState.LAUNCHED


# ------------------------------------------------------------------ the sweeper's dead-letter
def test_a_stuck_v6_launch_failure_gets_its_report_due(store: StatusStore, clock: Clock) -> None:
    sub = v6_submission()
    run, attempt = claimed(store, sub)
    store.mark_launch_failed(run, attempt=attempt, reason="capacity", dead_lettered=False)
    deadline = current(store, run).deadline_at
    assert deadline is not None
    clock.advance(DEFAULT_MESSAGE_LIFETIME_SECONDS + 1)

    result = store.mark_launch_stuck(
        run, observed_state=SubmissionState.LAUNCH_FAILED, attempt=attempt, observed_deadline=deadline, reason="stuck"
    )

    record = current(store, run)
    assert result.report_due
    assert (record.state, record.report_status, record.deadline_at) == (
        SubmissionState.DEAD_LETTERED,
        ReportStatus.PENDING,
        int(clock.now),
    )


@pytest.mark.parametrize("platform", ["v5", "v6-launching"])
def test_a_stuck_launch_of_v5_or_an_unconfirmed_v6_launch_gets_no_report(
    store: StatusStore, clock: Clock, platform: str
) -> None:
    sub = submission() if platform == "v5" else v6_submission()
    run, attempt = claimed(store, sub)
    if platform == "v5":
        store.mark_launch_failed(run, attempt=attempt, reason="capacity", dead_lettered=False)
    state = current(store, run).state
    deadline = current(store, run).deadline_at
    assert deadline is not None
    clock.advance(3 * DEFAULT_MESSAGE_LIFETIME_SECONDS)

    result = store.mark_launch_stuck(
        run, observed_state=state, attempt=attempt, observed_deadline=deadline, reason="stuck"
    )

    record = current(store, run)
    assert (bool(result), result.report_due) == (True, False)
    assert (record.state, record.report_status, record.deadline_at) == (SubmissionState.DEAD_LETTERED, None, None)


# ------------------------------------------------------------------ the redrive
def test_a_redrive_claim_clears_a_settled_dead_letter_report(store: StatusStore, clock: Clock) -> None:
    sub, run = dead_lettered_v6(store)
    assert store.claim_report(run, lease_seconds=REPORT_LEASE).granted
    assert store.mark_reported(run, response_summary="summation S1 created (FAILED)")
    clock.advance(3600)

    claim = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)

    record = current(store, run)
    assert (claim.decision, claim.attempt) == (LaunchDecision.GRANTED, 2)  # a new clientToken: nothing started
    assert (record.state, record.report_status, record.test_status, record.report_response) == (
        SubmissionState.LAUNCHING,
        None,
        None,
        None,
    )
    assert (record.report_attempt, record.report_retry_attempt, record.reported_at) == (0, 0, None)
    # ... and the new attempt's outcome is reported afresh: a first claim, nothing to look for
    task = task_arn()
    assert store.mark_launched(run, attempt=2, task_arn=task, cluster_arn=CLUSTER_ARN, timeout_seconds=600)
    store.record_outcome(run, sub.challenge_id, outcome(task, OutcomeCode.FAILED, 2), report_required=True)
    report = store.claim_report(run, lease_seconds=REPORT_LEASE)
    assert (report.granted, report.attempt, report.ambiguous_at) == (True, 1, None)


def test_a_redrive_claim_forgets_a_pending_dead_letter_report(store: StatusStore, clock: Clock) -> None:
    """The run is in progress again: a late report-due event finds nothing to report."""
    sub, run = dead_lettered_v6(store)

    claim = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)

    assert claim.granted
    assert current(store, run).report_status is None
    assert not store.claim_report(run, lease_seconds=REPORT_LEASE).granted


def test_a_redrive_waits_while_the_dead_letter_report_is_being_sent(store: StatusStore, clock: Clock) -> None:
    sub, run = dead_lettered_v6(store)
    assert store.claim_report(run, lease_seconds=REPORT_LEASE).granted

    during = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)
    clock.advance(REPORT_LEASE + 1)  # the reporter died: its lease expired
    after = store.claim_launch(sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE)

    assert during.decision is LaunchDecision.DUPLICATE_IN_FLIGHT
    assert (after.decision, after.attempt) == (LaunchDecision.GRANTED, 2)
    assert (current(store, run).report_status, current(store, run).report_lease_until) == (None, None)


def test_a_redrive_that_read_the_item_before_the_report_was_claimed_still_waits(
    status_table: str, store: StatusStore, clock: Clock
) -> None:
    """The live-lease check is part of the conditional write, not only of the read before it."""
    sub, run = dead_lettered_v6(store)
    read_before = current(store, run)  # no report lease yet
    assert store.claim_report(run, lease_seconds=REPORT_LEASE).granted

    claim = StaleReadStore(status_table, read_before, clock).claim_launch(
        sub, phase=EXAMPLE, scorer_type="java", lease_seconds=LEASE
    )

    assert claim.decision is LaunchDecision.DUPLICATE_IN_FLIGHT
    assert (current(store, run).state, current(store, run).report_status) == (
        SubmissionState.DEAD_LETTERED,
        ReportStatus.REPORTING,
    )
