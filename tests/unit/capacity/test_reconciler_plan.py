"""plan_slot_repairs: the four repairs, decided from one snapshot (pure; no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime

from mm_capacity.reconciler import SlotRepair, SlotRepairReason, plan_slot_repairs
from mm_capacity.store import ENV_POOL, PoolSnapshot, PoolState, challenge_pool_key
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import ScoringPhase

CHALLENGE = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"
NOW = 1_800_000_000.0
GRACE = 900


def run(run_id: str, state: SubmissionState, *, updated: float = NOW, ambiguous: bool = False) -> LifecycleRecord:
    moment = datetime.fromtimestamp(updated, tz=UTC)
    return LifecycleRecord(
        run_id=run_id,
        submission_id=run_id.split("#")[0],
        phase=ScoringPhase.PROVISIONAL,
        challenge_id=CHALLENGE,
        state=state,
        launch_ambiguous=ambiguous,
        created_at=moment,
        updated_at=moment,
        slot_cpu=1024,
    )


def pool(sk: str, holders: dict[str, int], *, used: int | None = None, cpu_used: int | None = None) -> PoolState:
    return PoolState(
        sk=sk,
        used=len(holders) if used is None else used,
        cpu_used=sum(holders.values()) if cpu_used is None else cpu_used,
        waiting=0,
        holders=holders,
        cap=5,
        dispatched_round=0,
    )


def snapshot(holders: dict[str, int], **env: int) -> PoolSnapshot:
    return PoolSnapshot(
        env=pool(ENV_POOL, holders, **env),
        challenges={CHALLENGE: pool(challenge_pool_key(CHALLENGE), holders)},
        phases={},
    )


def reasons(repairs: list[SlotRepair]) -> list[tuple[SlotRepairReason, str | None, str | None]]:
    return [(repair.reason, repair.pool, repair.run_id) for repair in repairs]


def test_consistent_slots_need_no_repair() -> None:
    runs = {"a#PROVISIONAL": run("a#PROVISIONAL", SubmissionState.LAUNCHED)}
    assert plan_slot_repairs(snapshot({"a#PROVISIONAL": 1024}), runs, {"a#PROVISIONAL"}, NOW, GRACE) == []


def test_a_holder_whose_run_is_final_or_absent_is_released() -> None:
    holders = {"done#PROVISIONAL": 1024, "gone#PROVISIONAL": 1024, "waiting#PROVISIONAL": 1024}
    runs = {
        "done#PROVISIONAL": run("done#PROVISIONAL", SubmissionState.SUCCEEDED),
        "gone#PROVISIONAL": None,
        "waiting#PROVISIONAL": run("waiting#PROVISIONAL", SubmissionState.WAITING),
    }
    plan = plan_slot_repairs(snapshot(holders), runs, set(), NOW, GRACE)
    assert {(r.reason, r.run_id) for r in plan} == {(SlotRepairReason.RUN_NOT_HOLDING, run_id) for run_id in holders}
    assert {r.pool for r in plan} == {ENV_POOL, challenge_pool_key(CHALLENGE)}
    assert all(r.cpu_units == 1024 for r in plan)


def test_an_ambiguous_dead_letter_without_a_task_is_released_only_after_the_grace() -> None:
    held = {"amb#PROVISIONAL": 1024}
    old = {
        "amb#PROVISIONAL": run(
            "amb#PROVISIONAL", SubmissionState.DEAD_LETTERED, updated=NOW - GRACE - 1, ambiguous=True
        )
    }
    fresh = {"amb#PROVISIONAL": run("amb#PROVISIONAL", SubmissionState.DEAD_LETTERED, updated=NOW - 10, ambiguous=True)}
    assert {r.reason for r in plan_slot_repairs(snapshot(held), old, set(), NOW, GRACE)} == {SlotRepairReason.NO_TASK}
    assert plan_slot_repairs(snapshot(held), fresh, set(), NOW, GRACE) == []
    # its task is running, or the task list is unknown: keep the slot
    assert plan_slot_repairs(snapshot(held), old, {"amb#PROVISIONAL"}, NOW, GRACE) == []
    assert plan_slot_repairs(snapshot(held), old, None, NOW, GRACE) == []


def test_a_running_task_without_a_slot_takes_one() -> None:
    runs = {
        "untracked#PROVISIONAL": run("untracked#PROVISIONAL", SubmissionState.LAUNCHED),
        "launching#PROVISIONAL": run("launching#PROVISIONAL", SubmissionState.LAUNCHING),
    }
    plan = plan_slot_repairs(snapshot({}), runs, set(runs), NOW, GRACE)
    assert reasons(plan) == [(SlotRepairReason.UNTRACKED_TASK, None, "untracked#PROVISIONAL")]
    assert plan[0].cpu_units == 1024


def test_a_count_that_disagrees_with_its_holders_is_corrected() -> None:
    runs = {"a#PROVISIONAL": run("a#PROVISIONAL", SubmissionState.LAUNCHED)}
    drifted = snapshot({"a#PROVISIONAL": 1024}, used=3, cpu_used=1024)
    plan = plan_slot_repairs(drifted, runs, {"a#PROVISIONAL"}, NOW, GRACE)
    assert reasons(plan) == [(SlotRepairReason.COUNT_DRIFT, ENV_POOL, None)]
    assert plan[0].observed == drifted.env
