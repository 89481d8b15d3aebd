"""CapacityStore on moto: waiting, admission, release, requeue and cancellation, each one transaction."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import LaunchDecision, OutcomeDecision, StatusStore
from mm_capacity.store import (
    ADMISSION_RESEND_SECONDS,
    ENV_POOL,
    AdmissionLimits,
    AdmitOutcome,
    CapacityStore,
    WaitEntry,
    challenge_pool_key,
    phase_pool_key,
)
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from tests.conftest import Clock
from tests.integration.capacity.conftest import CHALLENGE_A, submission

PHASE = ScoringPhase.PROVISIONAL
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef"


def limits(challenge_cap: int = 5, *, env_cap: int = 20, phase_cap: int | None = None, **extra: Any) -> AdmissionLimits:
    return AdmissionLimits(
        challenge_cap=challenge_cap,
        phase_cap=phase_cap,
        env_cap=env_cap,
        env_cpu_cap_units=extra.get("env_cpu_cap_units"),
        cpu_units=extra.get("cpu_units", 1024),
    )


def enqueue(capacity: CapacityStore, sub: RoutedSubmission, phase: ScoringPhase = PHASE, rank: int = 1) -> WaitEntry:
    result = capacity.enqueue(sub, phase=phase, scorer_type="java", timeout_seconds=600, priority_rank=rank)
    assert result.created
    entries = {entry.run_id: entry for entry in capacity.queue_entries(sub.challenge_id)}
    return entries[run_id(sub.submission_id, phase)]


def current(status: StatusStore, run: str) -> LifecycleRecord:
    record = status.get(run)
    assert record is not None
    return record


def raw_item(table: str, key: dict[str, Any]) -> dict[str, Any]:
    return aws_clients.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})


# ------------------------------------------------------------------ enqueue
def test_enqueue_writes_a_waiting_run_without_ttl_and_its_queue_entry(
    capacity: CapacityStore, status: StatusStore, status_table: str, clock: Clock
) -> None:
    sub = submission()
    result = capacity.enqueue(
        sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1, wait_reason="challenge cap"
    )
    assert result.created
    assert result.wait_order is not None
    record = current(status, run_id(sub.submission_id, PHASE))
    assert record.state is SubmissionState.WAITING
    assert record.wait_order == result.wait_order
    assert record.enqueued_at == int(clock.now)
    assert record.priority_rank == 1
    assert record.wait_reason == "challenge cap"
    assert record.launch_attempt == 0
    assert record.expires_at is None  # a TTL must never delete a waiting run
    assert not record.holds_slot
    item = raw_item(status_table, {"runId": {"S": record.run_id}})
    assert "expiresAt" not in item
    assert "deadlineAt" not in item
    [entry] = capacity.queue_entries(CHALLENGE_A)
    assert (entry.run_id, entry.phase, entry.member_id, entry.wait_order) == (
        record.run_id,
        PHASE,
        sub.member_id,
        result.wait_order,
    )
    assert capacity.pools().challenge(CHALLENGE_A).waiting == 1
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([(record.run_id, PHASE)], [])


def test_a_duplicate_enqueue_writes_nothing(capacity: CapacityStore) -> None:
    sub = submission()
    enqueue(capacity, sub)
    again = capacity.enqueue(sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
    assert not again.created
    assert again.record is not None
    assert again.record.state is SubmissionState.WAITING
    assert len(capacity.queue_entries(CHALLENGE_A)) == 1
    assert capacity.pools().challenge(CHALLENGE_A).waiting == 1


def test_enqueue_never_overwrites_a_run_launched_without_capacity(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    assert status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120).granted
    again = capacity.enqueue(sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
    assert not again.created
    assert again.record is not None
    assert again.record.state is SubmissionState.LAUNCHING
    assert capacity.queue_entries(CHALLENGE_A) == []


def test_members_take_turns_in_the_queue(capacity: CapacityStore, clock: Clock) -> None:
    flood = [submission(member_id=1) for _ in range(3)]
    for sub in flood:
        enqueue(capacity, sub)
        clock.advance(1)
    late = submission(member_id=2)
    enqueue(capacity, late)
    order = [entry.member_id for entry in capacity.queue_entries(CHALLENGE_A)]
    assert order == [1, 2, 1, 1]


def test_priority_rank_orders_before_rounds_and_time(capacity: CapacityStore, clock: Clock) -> None:
    example = submission(member_id=1)
    enqueue(capacity, example, ScoringPhase.EXAMPLE, rank=2)
    clock.advance(5)
    system = submission(member_id=1)
    enqueue(capacity, system, ScoringPhase.SYSTEM, rank=0)
    assert [entry.phase for entry in capacity.queue_entries(CHALLENGE_A)] == [ScoringPhase.SYSTEM, ScoringPhase.EXAMPLE]


def test_queue_position_counts_the_entries_ahead(capacity: CapacityStore, clock: Clock) -> None:
    entries = []
    for member in (1, 2, 3):
        entries.append(enqueue(capacity, submission(member_id=member)))
        clock.advance(1)
    assert [capacity.queue_position(CHALLENGE_A, e.wait_order) for e in entries] == [1, 2, 3]
    assert [e.run_id for e in capacity.queue_head(CHALLENGE_A, limit=2)] == [e.run_id for e in entries[:2]]


# ------------------------------------------------------------------ admit
def test_admit_reserves_a_slot_in_every_pool_and_sets_the_resend_deadline(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    entry = enqueue(capacity, sub)
    result = capacity.admit(entry, limits(phase_cap=3, cpu_units=2048))
    assert result.outcome is AdmitOutcome.ADMITTED
    record = current(status, entry.run_id)
    assert result.record == record
    assert record.state is SubmissionState.ADMITTED
    assert record.holds_slot
    assert record.slot_pools == [ENV_POOL, challenge_pool_key(CHALLENGE_A), phase_pool_key(CHALLENGE_A, PHASE)]
    assert record.slot_cpu == 2048
    assert record.admitted_at == int(clock.now)
    assert record.deadline_at == int(clock.now) + ADMISSION_RESEND_SECONDS
    assert record.expires_at is not None
    assert record.wait_order == entry.wait_order
    snapshot = capacity.pools()
    assert snapshot.env.used == 1
    assert snapshot.env.cpu_used == 2048
    assert snapshot.env.holders == {entry.run_id: 2048}
    challenge = snapshot.challenge(CHALLENGE_A)
    assert (challenge.used, challenge.waiting, challenge.cap, challenge.dispatched_round) == (1, 0, 5, 1)
    assert snapshot.phases[(CHALLENGE_A, PHASE)].used == 1
    assert capacity.queue_entries(CHALLENGE_A) == []
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [(entry.run_id, PHASE)])


def test_an_admitted_run_past_its_deadline_is_found_for_a_resend(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    entry = enqueue(capacity, submission())
    enqueue(capacity, submission(member_id=2))  # a WAITING item (no deadlineAt) in the table does not disturb it
    capacity.admit(entry, limits())
    deadline = int(clock.now) + ADMISSION_RESEND_SECONDS
    assert status.find_due(SubmissionState.ADMITTED, before=deadline) == []
    [due] = status.find_due(SubmissionState.ADMITTED, before=deadline + 1)
    assert due.run_id == entry.run_id
    clock.advance(ADMISSION_RESEND_SECONDS + 1)
    assert capacity.mark_admission_resent(entry.run_id, observed_deadline=deadline)
    assert not capacity.mark_admission_resent(entry.run_id, observed_deadline=deadline)  # deadline moved on
    resent = current(status, entry.run_id)
    assert resent.deadline_at == int(clock.now) + ADMISSION_RESEND_SECONDS
    assert resent.admission_resends == 1
    assert capacity.mark_admission_resent(entry.run_id, observed_deadline=resent.deadline_at)
    assert current(status, entry.run_id).admission_resends == 2


@pytest.mark.parametrize(
    ("admission", "full_pool"),
    [
        (limits(1), challenge_pool_key(CHALLENGE_A)),
        (limits(5, env_cap=1), ENV_POOL),
        (limits(5, phase_cap=1), phase_pool_key(CHALLENGE_A, PHASE)),
        (limits(5, env_cpu_cap_units=1536, cpu_units=1024), ENV_POOL),
    ],
    ids=["challenge", "env", "phase", "env-cpu"],
)
def test_a_full_pool_is_named_and_nothing_is_written(
    capacity: CapacityStore, status: StatusStore, admission: AdmissionLimits, full_pool: str
) -> None:
    first, second = enqueue(capacity, submission(member_id=1)), enqueue(capacity, submission(member_id=2))
    assert capacity.admit(first, admission).outcome is AdmitOutcome.ADMITTED
    before = capacity.pools()
    result = capacity.admit(second, admission)
    assert (result.outcome, result.full_pool) == (AdmitOutcome.FULL, full_pool)
    assert current(status, second.run_id).state is SubmissionState.WAITING
    assert capacity.pools() == before
    assert [e.run_id for e in capacity.queue_entries(CHALLENGE_A)] == [second.run_id]


@pytest.mark.parametrize(
    ("admission", "full_pool"),
    [
        (limits(0), challenge_pool_key(CHALLENGE_A)),
        (limits(5, env_cap=0), ENV_POOL),
        (limits(5, phase_cap=0), phase_pool_key(CHALLENGE_A, PHASE)),
        (limits(5, env_cpu_cap_units=512, cpu_units=1024), ENV_POOL),
    ],
    ids=["challenge", "env", "phase", "cpu-heavier-than-cap"],
)
def test_a_cap_of_zero_admits_nothing_even_before_any_pool_exists(
    capacity: CapacityStore, status: StatusStore, admission: AdmissionLimits, full_pool: str
) -> None:
    entry = enqueue(capacity, submission())
    result = capacity.admit(entry, admission)
    assert (result.outcome, result.full_pool) == (AdmitOutcome.FULL, full_pool)
    assert current(status, entry.run_id).state is SubmissionState.WAITING
    assert capacity.pools().env.used == 0


def test_admitting_a_run_cancelled_meanwhile_is_gone(capacity: CapacityStore) -> None:
    entry = enqueue(capacity, submission())
    assert capacity.cancel_waiting(entry.run_id, reason="superseded") is not None
    result = capacity.admit(entry, limits())
    assert result.outcome is AdmitOutcome.GONE
    snapshot = capacity.pools()
    assert snapshot.env.used == 0
    assert snapshot.challenge(CHALLENGE_A).waiting == 0


def test_a_second_admission_of_the_same_entry_is_gone(capacity: CapacityStore) -> None:
    entry = enqueue(capacity, submission())
    assert capacity.admit(entry, limits()).outcome is AdmitOutcome.ADMITTED
    assert capacity.admit(entry, limits()).outcome is AdmitOutcome.GONE
    assert capacity.pools().env.used == 1


def test_a_committed_admission_is_admitted_whatever_fails_after_it(
    capacity: CapacityStore, status: StatusStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = enqueue(capacity, submission())

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "TransactionConflictException", "Message": "busy"}}, "UpdateItem")

    monkeypatch.setattr(capacity, "_update_if", busy)  # raising the dispatched round fails
    monkeypatch.setattr(capacity._status, "get", busy)  # and so does the re-read
    result = capacity.admit(entry, limits())
    assert (result.outcome, result.record) == (AdmitOutcome.ADMITTED, None)
    monkeypatch.undo()
    assert current(status, entry.run_id).state is SubmissionState.ADMITTED
    assert capacity.pools().env.holders == {entry.run_id: 1024}


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


# ------------------------------------------------------------------ force_hold, pace
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


def test_pace_spends_the_tokens_of_one_second(capacity: CapacityStore, clock: Clock) -> None:
    assert [capacity.pace(2) for _ in range(3)] == [True, True, False]
    clock.advance(1)
    assert capacity.pace(2)
