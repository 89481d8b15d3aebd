"""CapacityStore on moto, waiting and admission: enqueue, admit and the RunTask pace, each one transaction."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from mm_adapters.status_store import StatusStore
from mm_capacity.store import (
    ADMISSION_RESEND_SECONDS,
    ENV_POOL,
    AdmissionLimits,
    AdmitOutcome,
    CapacityStore,
    challenge_pool_key,
    phase_pool_key,
)
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from tests.conftest import Clock
from tests.integration.capacity.conftest import (
    CHALLENGE_A,
    PHASE,
    current,
    enqueue,
    limits,
    raw_item,
    submission,
)


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


# ------------------------------------------------------------------ pace
def test_pace_spends_the_tokens_of_one_second(capacity: CapacityStore, clock: Clock) -> None:
    assert [capacity.pace(2) for _ in range(3)] == [True, True, False]
    clock.advance(1)
    assert capacity.pace(2)
