"""CapacityStore on moto, a run's changes that move its capacity: claim and release, requeue, dead-lettering an
admission, cancellation and force_hold, each one transaction."""

from __future__ import annotations

import pytest

from mm_adapters.status_store import LaunchDecision, OutcomeDecision, StatusStore
from mm_capacity.store import (
    ENV_POOL,
    CapacityStore,
    challenge_pool_key,
)
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform, run_id
from tests.conftest import Clock
from tests.integration.capacity.conftest import (
    CHALLENGE_A,
    CLUSTER,
    PHASE,
    TASK,
    current,
    enqueue,
    limits,
    submission,
)


# ------------------------------------------------------------------ claim, release
def test_claim_launch_grants_from_admitted_with_attempt_one(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    entry = enqueue(capacity, sub)
    waiting = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert waiting.decision is LaunchDecision.WAITING  # no launch without a slot
    capacity.admit(entry, limits())
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert claim.granted
    assert claim.attempt == 1
    record = current(status, entry.run_id)
    assert record.state is SubmissionState.LAUNCHING
    assert record.slot_pools
    again = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert again.decision is LaunchDecision.DUPLICATE_IN_FLIGHT


def test_release_frees_every_pool_once(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    entry = enqueue(capacity, sub)
    capacity.admit(entry, limits(phase_cap=2))
    record = current(status, entry.run_id)
    assert capacity.release(record)
    assert not capacity.release(record)  # a second release (a duplicate STOPPED event) frees nothing
    for pool in capacity.pools().all_pools():
        assert (pool.used, pool.cpu_used, pool.holders) == (0, 0, {})
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [])


def test_record_outcome_accepts_cancelled(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    capacity.admit(enqueue(capacity, sub), limits())
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    run = run_id(sub.submission_id, PHASE)
    assert status.mark_launched(run, attempt=claim.attempt, task_arn=TASK, cluster_arn=CLUSTER, timeout_seconds=600)
    assert capacity.request_cancel_running(run) is not None
    outcome = Outcome(
        code=OutcomeCode.CANCELLED,
        test_status=TestStatus.CANCELLED,
        reason="superseded",
        stop_code="UserInitiated",
        task_arn=TASK,
    )
    result = status.record_outcome(run, CHALLENGE_A, outcome, report_required=True)
    assert result.decision is OutcomeDecision.RECORDED
    assert result.record is not None
    assert result.record.state is SubmissionState.CANCELLED
    assert result.record.cancel_requested
    assert not result.record.holds_slot
    assert capacity.release(result.record)


# ------------------------------------------------------------------ requeue
def test_requeue_keeps_the_place_and_frees_the_slots(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission(member_id=1)
    first = enqueue(capacity, sub)
    clock.advance(1)
    later = enqueue(capacity, submission(member_id=2))
    capacity.admit(first, limits())
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert status.mark_launch_outcome_unknown(first.run_id, attempt=claim.attempt, reason="5xx", dead_lettered=False)
    launching = current(status, first.run_id)
    assert capacity.requeue(launching, reason="RunTask throttled")
    record = current(status, first.run_id)
    assert record.state is SubmissionState.WAITING
    assert record.wait_order == first.wait_order
    assert record.launch_attempt == 1
    assert record.launch_ambiguous
    assert record.lease_until is None
    assert record.slot_pools == []
    assert record.expires_at is None
    assert [e.run_id for e in capacity.queue_entries(CHALLENGE_A)] == [first.run_id, later.run_id]
    snapshot = capacity.pools()
    assert snapshot.env.used == 0
    assert snapshot.challenge(CHALLENGE_A).waiting == 2
    assert capacity.member_runs(CHALLENGE_A, 1) == ([(first.run_id, PHASE)], [])
    # admitted again, the ambiguous attempt keeps its token
    [head, _] = capacity.queue_entries(CHALLENGE_A)
    capacity.admit(head, limits())
    again = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert again.granted
    assert again.attempt == 1


def test_requeue_of_a_stale_record_writes_nothing(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    capacity.admit(enqueue(capacity, sub), limits())
    admitted = current(status, run_id(sub.submission_id, PHASE))
    assert status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120).granted
    assert not capacity.requeue(admitted, reason="stale")  # the run is LAUNCHING now
    assert current(status, admitted.run_id).state is SubmissionState.LAUNCHING
    assert capacity.pools().env.used == 1


def test_a_redriven_definite_dead_letter_waits_again_with_a_new_token(
    capacity: CapacityStore, status: StatusStore
) -> None:
    sub = submission()
    capacity.admit(enqueue(capacity, sub), limits())
    run = run_id(sub.submission_id, PHASE)
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert status.mark_launch_failed(run, attempt=claim.attempt, reason="bad subnet", dead_lettered=True)
    dead = current(status, run)
    assert not dead.holds_slot
    assert capacity.release(dead)  # the dead-letter frees its slot
    assert capacity.requeue(dead, reason="redriven")  # the released slot is not released again
    assert capacity.pools().env.used == 0
    [entry] = capacity.queue_entries(CHALLENGE_A)
    capacity.admit(entry, limits())
    again = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert again.granted
    assert again.attempt == 2


# ------------------------------------------------------------------ dead-lettering an admission never claimed
@pytest.mark.parametrize(
    ("platform", "ambiguous", "report_due"),
    [(Platform.V5, False, False), (Platform.V6, False, True), (Platform.V6, True, False)],
    ids=["v5", "v6", "v6-ambiguous"],
)
def test_dead_letter_admission_frees_the_slots_in_one_transaction(
    capacity: CapacityStore,
    status: StatusStore,
    clock: Clock,
    platform: Platform,
    ambiguous: bool,
    report_due: bool,
) -> None:
    sub = submission(platform=platform)
    entry = enqueue(capacity, sub)
    capacity.admit(entry, limits(phase_cap=3))
    if ambiguous:  # an earlier attempt may have started a task; requeued, then admitted again
        claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
        assert status.mark_launch_outcome_unknown(
            entry.run_id, attempt=claim.attempt, reason="5xx", dead_lettered=False
        )
        assert capacity.requeue(current(status, entry.run_id), reason="RunTask throttled")
        [again] = capacity.queue_entries(CHALLENGE_A)
        capacity.admit(again, limits(phase_cap=3))
    admitted = current(status, entry.run_id)
    assert admitted.state is SubmissionState.ADMITTED
    dead = capacity.dead_letter_admission(admitted, reason="admitted run never claimed")
    assert dead is not None
    assert dead == current(status, entry.run_id)
    assert dead.state is SubmissionState.DEAD_LETTERED
    assert dead.reason == "admitted run never claimed"
    assert dead.launch_ambiguous is ambiguous
    assert dead.launch_attempt == admitted.launch_attempt
    if report_due:
        assert (dead.report_status, dead.test_status) == (ReportStatus.PENDING, TestStatus.FAILED.value)
        assert dead.deadline_at == int(clock.now)
    else:
        assert (dead.report_status, dead.test_status, dead.deadline_at) == (None, None, None)
    for pool in capacity.pools().all_pools():
        assert (pool.used, pool.cpu_used, pool.holders) == (0, 0, {})
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [])
    assert capacity.dead_letter_admission(admitted, reason="again") is None  # moved on: nothing written
    # a redrive of its message puts it back in the queue
    assert capacity.requeue(dead, reason="redriven")
    assert current(status, entry.run_id).state is SubmissionState.WAITING
    assert [e.run_id for e in capacity.queue_entries(CHALLENGE_A)] == [entry.run_id]


def test_dead_letter_admission_leaves_a_claimed_run_alone(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    capacity.admit(enqueue(capacity, sub), limits())
    admitted = current(status, run_id(sub.submission_id, PHASE))
    assert status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120).granted
    assert capacity.dead_letter_admission(admitted, reason="never claimed") is None
    assert current(status, admitted.run_id).state is SubmissionState.LAUNCHING
    assert capacity.pools().env.holders == {admitted.run_id: 1024}
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [(admitted.run_id, PHASE)])


# ------------------------------------------------------------------ cancel
@pytest.mark.parametrize(
    ("platform", "report"), [(Platform.V6, ReportStatus.PENDING), (Platform.V5, ReportStatus.NOT_REQUIRED)]
)
def test_cancel_waiting_is_final_and_reported_per_platform(
    capacity: CapacityStore, status: StatusStore, clock: Clock, platform: Platform, report: ReportStatus
) -> None:
    sub = submission(platform=platform)
    entry = enqueue(capacity, sub)
    record = capacity.cancel_waiting(entry.run_id, reason="superseded by a newer submission", report_due_in_seconds=30)
    assert record is not None
    assert record.state is SubmissionState.CANCELLED
    assert record.report_status is report
    assert record.test_status == TestStatus.CANCELLED.value
    assert record.expires_at is not None
    assert record.deadline_at == (int(clock.now) + 30 if platform is Platform.V6 else None)
    assert capacity.queue_entries(CHALLENGE_A) == []
    assert capacity.pools().challenge(CHALLENGE_A).waiting == 0
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [])
    assert capacity.cancel_waiting(entry.run_id, reason="again") is None


def test_cancel_waiting_leaves_an_admitted_run_alone(capacity: CapacityStore, status: StatusStore) -> None:
    entry = enqueue(capacity, submission())
    capacity.admit(entry, limits())
    assert capacity.cancel_waiting(entry.run_id, reason="superseded") is None
    assert current(status, entry.run_id).state is SubmissionState.ADMITTED


def test_request_cancel_running_only_marks_a_launched_run(capacity: CapacityStore) -> None:
    entry = enqueue(capacity, submission())
    assert capacity.request_cancel_running(entry.run_id) is None


# ------------------------------------------------------------------ force_hold
def test_force_hold_takes_a_slot_beyond_the_cap(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    assert status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120).granted  # no capacity
    run = run_id(sub.submission_id, PHASE)
    assert status.mark_launched(run, attempt=1, task_arn=TASK, cluster_arn=CLUSTER, timeout_seconds=600)
    record = current(status, run)
    assert capacity.force_hold(record, cpu_units=512)
    assert not capacity.force_hold(record, cpu_units=512)  # held already: nothing taken twice
    snapshot = capacity.pools()
    assert snapshot.env.holders == {run: 512}
    assert snapshot.challenge(CHALLENGE_A).used == 1
    held = current(status, run)
    assert held.slot_pools == [ENV_POOL, challenge_pool_key(CHALLENGE_A)]
    assert held.slot_cpu == 512
    assert capacity.release(held)
