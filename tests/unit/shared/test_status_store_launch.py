"""The status store's launch protocol under races and ambiguity (issue 7, defects 1-3), on moto DynamoDB."""

from __future__ import annotations

from mm_adapters.status_store import DEFAULT_LIVENESS_CHECK_SECONDS, LaunchDecision, StatusStore
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from tests.conftest import Clock
from tests.unit.shared.test_status_store import CLUSTER_ARN, LEASE, PHASE, current, run_of, submission, task_arn


class StaleReadStore(StatusStore):
    """A delivery that read the item before another delivery re-claimed it (its `get` answers that old read)."""

    def __init__(self, table: str, stale: LifecycleRecord, clock: Clock) -> None:
        super().__init__(table, clock=clock)
        self.stale = stale

    def get(self, run_id: str) -> LifecycleRecord | None:
        return self.stale


def test_two_deliveries_that_saw_the_same_expired_lease_cannot_both_reclaim_it(status_table: str, clock: Clock) -> None:
    """Defect 2: the re-claim is conditioned on the lease the delivery observed, not only state and attempt."""
    sub = submission()
    store = StatusStore(status_table, clock=clock)
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    clock.advance(LEASE + 1)
    seen_by_both = current(store, run_of(sub))  # LAUNCHING, attempt 1, lease expired

    first = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    second = StaleReadStore(status_table, seen_by_both, clock).claim_launch(
        sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE
    )

    assert (first.decision, first.attempt) == (LaunchDecision.GRANTED, 1)
    assert second.decision is LaunchDecision.DUPLICATE_IN_FLIGHT
    assert current(store, run_of(sub)).lease_until == int(clock.now) + LEASE


def test_a_launching_item_is_due_for_the_sweeper_when_its_lease_ends(status_table: str, clock: Clock) -> None:
    sub = submission()
    store = StatusStore(status_table, clock=clock)

    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE, timeout_seconds=1800)

    record = current(store, run_of(sub))
    assert record.deadline_at == record.lease_until == int(clock.now) + LEASE
    assert record.timeout_seconds == 1800
    assert record.routed_message is not None


def test_launched_item_is_checked_before_its_timeout(status_table: str, clock: Clock) -> None:
    """Defect 5: a lost STOPPED event must be noticed while ECS still describes the task (about an hour)."""
    sub = submission()
    store = StatusStore(status_table, clock=clock)
    claim = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    store.mark_launched(
        run_of(sub), attempt=claim.attempt, task_arn=task_arn(), cluster_arn=CLUSTER_ARN, timeout_seconds=3600
    )

    record = current(store, run_of(sub))
    assert record.timeout_at == int(clock.now) + 3600
    assert record.deadline_at == int(clock.now) + DEFAULT_LIVENESS_CHECK_SECONDS


def test_outcome_unknown_keeps_the_lease_then_dead_letters_on_the_last_receive(status_table: str, clock: Clock) -> None:
    sub = submission()
    store = StatusStore(status_table, clock=clock)
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    assert store.mark_launch_outcome_unknown(run_of(sub), attempt=1, reason="ServerException", dead_lettered=False)
    record = current(store, run_of(sub))
    assert (record.state, record.launch_ambiguous, record.lease_until) == (
        SubmissionState.LAUNCHING,
        True,
        int(clock.now) + LEASE,
    )

    clock.advance(LEASE + 1)
    reclaimed = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    assert (reclaimed.granted, reclaimed.attempt) == (True, 1)
    assert store.mark_launch_outcome_unknown(run_of(sub), attempt=1, reason="ReadTimeout", dead_lettered=True)
    record = current(store, run_of(sub))
    assert (record.state, record.launch_ambiguous) == (SubmissionState.DEAD_LETTERED, True)

    redriven = store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    assert (redriven.granted, redriven.attempt) == (True, 1)  # same clientToken


def test_a_refusal_that_does_not_settle_the_token_keeps_the_ambiguity(status_table: str, clock: Clock) -> None:
    sub = submission()
    store = StatusStore(status_table, clock=clock)
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    store.mark_launch_outcome_unknown(run_of(sub), attempt=1, reason="ServerException", dead_lettered=False)
    clock.advance(LEASE + 1)
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)

    store.mark_launch_failed(run_of(sub), attempt=1, reason="Throttling", dead_lettered=False, token_settled=False)

    record = current(store, run_of(sub))
    assert (record.state, record.launch_ambiguous) == (SubmissionState.LAUNCH_FAILED, True)
    assert record.deadline_at is not None  # found by the sweeper if the message never comes back
    assert store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE).attempt == 1


def test_reclaiming_a_vanished_holders_lease_makes_the_attempt_ambiguous(status_table: str, clock: Clock) -> None:
    """The holder may have crashed after RunTask: a later throttled retry must not advance the token."""
    sub = submission()
    store = StatusStore(status_table, clock=clock)
    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    clock.advance(LEASE + 1)

    store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE)
    assert current(store, run_of(sub)).launch_ambiguous is True
    store.mark_launch_failed(run_of(sub), attempt=1, reason="Throttling", dead_lettered=False, token_settled=False)

    assert store.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=LEASE).attempt == 1
