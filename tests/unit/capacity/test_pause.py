"""Pause and resume of a challenge's admissions (decision 105) on moto: the flag refuses every admission in the
admission transaction itself, the dispatcher skips a paused lane, new runs wait "challenge paused by an operator",
running and admitted runs go on, and every change leaves one audit item in the same transaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_capacity.dispatcher import Admitted, Dispatcher
from mm_capacity.store import AdmitOutcome, CapacityStore, challenge_pool_key
from mm_contracts.models.audit import OperatorChange
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import run_id
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY
from tests.conftest import Clock
from tests.integration.capacity.conftest import CHALLENGE_A, CHALLENGE_B, PHASE, config, enqueue, limits, submission

LOGGER = logging.getLogger("test.pause")


@pytest.fixture
def capacity(capacity_table: str, status_table: str, clock: Clock) -> CapacityStore:
    return CapacityStore(capacity_table, status_table, ttl_days=90, clock=clock)


@pytest.fixture
def status(status_table: str, clock: Clock) -> StatusStore:
    return StatusStore(status_table, ttl_days=90, clock=clock)


def change(clock: Clock, action: str = "pause", reason: str = "scorer image broken") -> OperatorChange:
    return OperatorChange(
        actor="arn:aws:sts::123456789012:assumed-role/operator/alice",
        at=datetime.fromtimestamp(clock(), tz=UTC),
        action=action,
        reason=reason,
        request_id=uuid4().hex[:12],
    )


def audit_items(table: str, challenge_id: str) -> list[dict[str, object]]:
    response = aws_clients.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression=f"{CAPACITY_TABLE_PARTITION_KEY} = :pk",
        ExpressionAttributeValues={":pk": {"S": f"AUDIT#{challenge_id}"}},
        ConsistentRead=True,
    )
    return list(response["Items"])


def settings(challenge_id: str) -> ChallengeConfig:
    return config(challenge_id, max_running_tasks=5)


def dispatcher(capacity: CapacityStore, sent: list[Admitted]) -> Dispatcher:
    configs = {CHALLENGE_A: settings(CHALLENGE_A), CHALLENGE_B: settings(CHALLENGE_B)}
    return Dispatcher(
        capacity,
        environment_capacity=lambda: EnvironmentCapacity(max_running_tasks=20),
        challenge_settings=configs.get,
        send=sent.append,
        logger=LOGGER,
    )


def test_pause_creates_the_flag_with_its_audit_item_once(
    capacity: CapacityStore, capacity_table: str, clock: Clock
) -> None:
    first = change(clock)
    assert capacity.pause(CHALLENGE_A, first)  # no pool item yet: it is created
    controls = capacity.controls(CHALLENGE_A)
    assert controls.paused
    assert controls.paused_by == first.actor
    assert controls.pause_reason == "scorer image broken"
    assert controls.paused_at == first.at.isoformat()
    assert capacity.pools().challenge(CHALLENGE_A).paused
    clock.advance(5)
    assert not capacity.pause(CHALLENGE_A, change(clock, reason="again"))  # already paused: nothing written
    assert capacity.controls(CHALLENGE_A).pause_reason == "scorer image broken"
    assert len(audit_items(capacity_table, CHALLENGE_A)) == 1
    assert not capacity.controls(CHALLENGE_B).paused


def test_resume_removes_the_flag_and_only_when_paused(
    capacity: CapacityStore, capacity_table: str, clock: Clock
) -> None:
    assert not capacity.resume(CHALLENGE_A, change(clock, "resume"))  # not paused: nothing written
    assert audit_items(capacity_table, CHALLENGE_A) == []
    capacity.pause(CHALLENGE_A, change(clock))
    clock.advance(1)
    assert capacity.resume(CHALLENGE_A, change(clock, "resume", "image fixed"))
    controls = capacity.controls(CHALLENGE_A)
    assert (controls.paused, controls.paused_by, controls.paused_at, controls.pause_reason) == (False, None, None, None)
    changes = capacity.challenge_changes(CHALLENGE_A)
    assert [c.action for c, _ in changes] == ["resume", "pause"]  # newest first
    assert changes[0][1].startswith("resumed")


def test_admission_of_a_paused_challenge_is_refused_in_the_transaction(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    entry = enqueue(capacity, submission(CHALLENGE_A))
    capacity.pause(CHALLENGE_A, change(clock))
    # The store itself, not only the dispatcher: any admitter with a stale view is refused at once.
    result = capacity.admit(entry, limits())
    assert result.outcome is AdmitOutcome.FULL
    assert result.full_pool == challenge_pool_key(CHALLENGE_A)
    record = status.get(entry.run_id)
    assert record is not None
    assert record.state is SubmissionState.WAITING
    assert capacity.pools().env.used == 0
    capacity.resume(CHALLENGE_A, change(clock, "resume"))
    assert capacity.admit(entry, limits()).outcome is AdmitOutcome.ADMITTED


def test_dispatcher_skips_a_paused_lane_and_admits_it_after_resume(capacity: CapacityStore, clock: Clock) -> None:
    paused_run = enqueue(capacity, submission(CHALLENGE_A)).run_id
    clock.advance(1)
    other_run = enqueue(capacity, submission(CHALLENGE_B)).run_id
    capacity.pause(CHALLENGE_A, change(clock))
    sent: list[Admitted] = []
    result = dispatcher(capacity, sent).dispatch()
    assert [a.entry.run_id for a in result.admitted] == [other_run]
    assert [e.run_id for e in capacity.queue_entries(CHALLENGE_A)] == [paused_run]
    # A challenge processor's own dispatch of the paused challenge admits nothing either.
    assert dispatcher(capacity, sent).dispatch(challenge_id=CHALLENGE_A).admitted == ()
    capacity.resume(CHALLENGE_A, change(clock, "resume"))
    assert [a.entry.run_id for a in dispatcher(capacity, sent).dispatch().admitted] == [paused_run]


def test_a_run_enqueued_while_paused_waits_for_the_operator(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    capacity.pause(CHALLENGE_A, change(clock))
    sub = submission(CHALLENGE_A)
    result = capacity.enqueue(sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
    assert result.created
    record = status.get(run_id(sub.submission_id, PHASE))
    assert record is not None
    assert record.wait_reason == "challenge paused by an operator"
    assert record.history[-1].detail == "challenge paused by an operator"
    capacity.resume(CHALLENGE_A, change(clock, "resume"))
    other = submission(CHALLENGE_A, member_id=2002)
    capacity.enqueue(other, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
    after = status.get(run_id(other.submission_id, PHASE))
    assert after is not None
    assert after.wait_reason is None


def test_admitted_and_running_runs_go_on_while_paused(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission(CHALLENGE_A)
    entry = enqueue(capacity, sub)
    assert capacity.admit(entry, limits()).outcome is AdmitOutcome.ADMITTED
    capacity.pause(CHALLENGE_A, change(clock))
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert claim.granted  # the slot was reserved before the pause: the launch goes on
    record = status.get(entry.run_id)
    assert record is not None
    assert capacity.release(record)  # and its slot is freed as usual
    assert capacity.controls(CHALLENGE_A).paused


def test_challenge_changes_newest_first_with_a_limit(capacity: CapacityStore, clock: Clock) -> None:
    for before in range(3):
        capacity.record_challenge_change(CHALLENGE_A, change(clock, "set-caps"), f"maxRunningTasks {before} -> 9")
        clock.advance(1)
    changes = capacity.challenge_changes(CHALLENGE_A, limit=2)
    assert [detail for _, detail in changes] == ["maxRunningTasks 2 -> 9", "maxRunningTasks 1 -> 9"]
    assert capacity.challenge_changes(CHALLENGE_B) == []
