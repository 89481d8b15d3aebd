"""SlotReconciler on moto: drift left by a crash is corrected, and counted; consistent slots are left alone."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_capacity.reconciler import SlotReconciler, SlotRepairReason
from mm_capacity.store import AdmissionLimits, AdmitOutcome, CapacityStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import ScoringPhase, run_id
from tests.conftest import Clock
from tests.integration.capacity.conftest import CHALLENGE_A, submission

PHASE = ScoringPhase.PROVISIONAL
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"
LIMITS = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=20, env_cpu_cap_units=None, cpu_units=1024)


def launched(capacity: CapacityStore, status: StatusStore, member: int, *, with_slot: bool = True) -> str:
    sub = submission(member_id=member)
    run = run_id(sub.submission_id, PHASE)
    if with_slot:
        capacity.enqueue(sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
        [entry] = [e for e in capacity.queue_entries(CHALLENGE_A) if e.run_id == run]
        capacity.admit(entry, LIMITS)
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert status.mark_launched(
        run, attempt=claim.attempt, task_arn=f"{CLUSTER}/task-{member}", cluster_arn=CLUSTER, timeout_seconds=600
    )
    return run


def reconciler(
    capacity: CapacityStore, status: StatusStore, metrics: list[tuple[Metric, str | None]]
) -> SlotReconciler:
    return SlotReconciler(
        capacity, status, logging.getLogger("test.reconciler"), lambda m, d: metrics.append((m, d)), grace_seconds=900
    )


def test_the_reconciler_repairs_what_crashes_leave(
    capacity: CapacityStore, status: StatusStore, capacity_table: str
) -> None:
    metrics: list[tuple[Metric, str | None]] = []
    healthy = launched(capacity, status, 1)
    finished = launched(capacity, status, 2)
    untracked = launched(capacity, status, 3, with_slot=False)
    # a crash between recording the outcome and releasing the slot
    outcome = Outcome(
        code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exit 0", task_arn=f"{CLUSTER}/task-2"
    )
    assert status.record_outcome(finished, CHALLENGE_A, outcome, report_required=False).record is not None
    # a count gone wrong on the challenge pool
    aws_clients.client("dynamodb").update_item(
        TableName=capacity_table,
        Key={"pk": {"S": "POOL"}, "sk": {"S": f"CHALLENGE#{CHALLENGE_A}"}},
        UpdateExpression="ADD used :three",
        ExpressionAttributeValues={":three": {"N": "3"}},
    )
    applied = reconciler(capacity, status, metrics).reconcile({healthy, untracked})
    assert sorted({(r.reason, r.run_id) for r in applied}) == sorted(
        {
            (SlotRepairReason.COUNT_DRIFT, None),
            (SlotRepairReason.RUN_NOT_HOLDING, finished),
            (SlotRepairReason.UNTRACKED_TASK, untracked),
        }
    )
    assert (Metric.SLOTS_RECONCILED, "count_drift") in metrics
    snapshot = capacity.pools()
    for pool in (snapshot.env, snapshot.challenge(CHALLENGE_A)):
        assert set(pool.holders) == {healthy, untracked}
        assert pool.used == 2
        assert pool.cpu_used == 2048
    # the finished run's member entry went with its slots: supersede no longer sees it holding one
    assert capacity.member_runs(CHALLENGE_A, 2) == ([], [])
    assert capacity.member_runs(CHALLENGE_A, 1) == ([], [(healthy, PHASE)])
    assert reconciler(capacity, status, metrics).reconcile({healthy, untracked}) == []


def test_an_ambiguous_dead_letter_keeps_its_slot_until_the_grace_passes(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    run = run_id(sub.submission_id, PHASE)
    capacity.enqueue(sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
    [entry] = capacity.queue_entries(CHALLENGE_A)
    capacity.admit(entry, LIMITS)
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert status.mark_launch_outcome_unknown(run, attempt=claim.attempt, reason="timeout", dead_lettered=True)
    metrics: list[tuple[Metric, str | None]] = []
    assert reconciler(capacity, status, metrics).reconcile(set()) == []
    assert reconciler(capacity, status, metrics).reconcile(None) == []
    clock.advance(901)
    assert reconciler(capacity, status, metrics).reconcile(None) == []  # no task list: nothing decided
    applied = reconciler(capacity, status, metrics).reconcile(set())
    assert {r.reason for r in applied} == {SlotRepairReason.NO_TASK}
    assert capacity.pools().env.used == 0


def stale_holder(capacity_table: str, run: str, cpu: int = 1024) -> None:
    """A holder left in the ENV and CHALLENGE pools (counted), as a crash between a state change and its release
    leaves it."""
    for sk in ("ENV", f"CHALLENGE#{CHALLENGE_A}"):
        aws_clients.client("dynamodb").update_item(
            TableName=capacity_table,
            Key={"pk": {"S": "POOL"}, "sk": {"S": sk}},
            UpdateExpression="SET #h = :cpu ADD used :one, cpuUsed :cpu",
            ExpressionAttributeNames={"#h": f"h#{run}"},
            ExpressionAttributeValues={":cpu": {"N": str(cpu)}, ":one": {"N": "1"}},
        )


def test_a_release_planned_from_a_stale_read_spares_a_run_admitted_since(
    capacity: CapacityStore, status: StatusStore, capacity_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = submission()
    capacity.enqueue(sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
    [entry] = capacity.queue_entries(CHALLENGE_A)
    stale_holder(capacity_table, entry.run_id)  # the plan will read: WAITING, yet holding -> release
    read_runs = status.get_many

    def read_then_interleave(run_ids: Any) -> Any:
        found = read_runs(run_ids)
        # Between the reconciler's read and its release: another sweep frees the stale slots, and the dispatcher
        # admits the run, which so legitimately holds them again.
        for sk in ("ENV", f"CHALLENGE#{CHALLENGE_A}"):
            assert capacity.release_holder(sk, entry.run_id, 1024)
        assert capacity.admit(entry, LIMITS).outcome is AdmitOutcome.ADMITTED
        return found

    monkeypatch.setattr(status, "get_many", read_then_interleave)
    metrics: list[tuple[Metric, str | None]] = []
    applied = reconciler(capacity, status, metrics).reconcile(set())
    assert [r for r in applied if r.reason is SlotRepairReason.RUN_NOT_HOLDING] == []
    snapshot = capacity.pools()
    for pool in (snapshot.env, snapshot.challenge(CHALLENGE_A)):
        assert (pool.holders, pool.used) == ({entry.run_id: 1024}, 1)
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [(entry.run_id, PHASE)])


def test_the_holder_of_a_run_without_an_item_is_released_unless_the_item_appears(
    capacity: CapacityStore, status: StatusStore, capacity_table: str
) -> None:
    ghost = run_id("0f9e8d7c-6b5a-4948-8372-615049382716", PHASE)
    stale_holder(capacity_table, ghost)
    assert capacity.release_holder_if("ENV", ghost, 1024, None)
    sub = submission()
    appeared = run_id(sub.submission_id, PHASE)
    stale_holder(capacity_table, appeared)
    capacity.enqueue(sub, phase=PHASE, scorer_type="java", timeout_seconds=600, priority_rank=1)
    assert not capacity.release_holder_if("ENV", appeared, 1024, None)  # read absent, exists now: left alone
    assert capacity.release_holder_if("ENV", appeared, 1024, SubmissionState.WAITING)
    assert not capacity.release_holder_if("ENV", appeared, 1024, SubmissionState.WAITING)  # never a double free
    assert capacity.pools().env.holders == {}
