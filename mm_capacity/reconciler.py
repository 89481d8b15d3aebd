"""The slot reconciler (decision 094): the slots in use against the runs' states and the running tasks.

A state change and the release of its slot are separate writes (the release is idempotent, never transactional
with the outcome), so a crash between them leaves a holder behind; the sweeper runs this each time. The plan is a
pure function of what was read; applying it is conditional writes only, so a repair that raced a real transition
does nothing: a release is one transaction with a check that the run is still in the state the plan read.

Repairs:
- `run_not_holding`: a pool holds a slot for a run that is absent or in a state that holds none -> release it.
- `no_task`: an ambiguous DEAD_LETTERED run (a task may have started) whose task is not running, older than the
  grace -> release it (its redrive, if any, waits for a slot again).
- `untracked_task`: a LAUNCHED run whose task is running holds no slot (launched before capacity existed, or a
  lost write) -> it takes one, ignoring the caps (the task runs whatever the count says).
- `count_drift`: a pool's `used` / `cpuUsed` disagree with its holders -> set to what the holders add up to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mm_adapters.status_store import StatusStore
from mm_capacity.store import CapacityStore, PoolSnapshot, PoolState
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.ports import LogSink


class SlotRepairReason(StrEnum):
    RUN_NOT_HOLDING = "run_not_holding"
    NO_TASK = "no_task"
    UNTRACKED_TASK = "untracked_task"
    COUNT_DRIFT = "count_drift"


@dataclass(frozen=True)
class SlotRepair:
    reason: SlotRepairReason
    pool: str | None  # the pool released from or corrected; None for `untracked_task` (every pool of the run)
    run_id: str | None  # None for `count_drift`
    cpu_units: int = 0  # released or taken
    observed: PoolState | None = None  # `count_drift`: the pool as read (the correction is conditioned on it)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def plan_slot_repairs(
    snapshot: PoolSnapshot,
    runs: Mapping[str, LifecycleRecord | None],
    running_run_ids: set[str] | None,
    now: float,
    grace_seconds: int,
    *,
    default_cpu_units: int = 1024,
) -> list[SlotRepair]:
    """What to repair, from one pool snapshot, the runs of every holder and running task (None: absent), and the
    run ids of the pipeline's running tasks (None: unknown, so nothing that depends on them is decided)."""
    repairs: list[SlotRepair] = []
    held: set[str] = set()
    for pool in snapshot.all_pools():
        if pool.used != len(pool.holders) or pool.cpu_used != sum(pool.holders.values()):
            repairs.append(SlotRepair(SlotRepairReason.COUNT_DRIFT, pool.sk, None, observed=pool))
    for pool in snapshot.all_pools():
        for run_id, cpu in sorted(pool.holders.items()):
            held.add(run_id)
            run = runs.get(run_id)
            if run is None or not run.holds_slot:
                repairs.append(SlotRepair(SlotRepairReason.RUN_NOT_HOLDING, pool.sk, run_id, cpu))
            elif (
                run.state is SubmissionState.DEAD_LETTERED
                and running_run_ids is not None
                and run_id not in running_run_ids
                and now - _epoch(run.updated_at) > grace_seconds
            ):
                repairs.append(SlotRepair(SlotRepairReason.NO_TASK, pool.sk, run_id, cpu))
    for run_id in sorted(running_run_ids or ()):
        run = runs.get(run_id)
        if run_id not in held and run is not None and run.state is SubmissionState.LAUNCHED:
            repairs.append(SlotRepair(SlotRepairReason.UNTRACKED_TASK, None, run_id, run.slot_cpu or default_cpu_units))
    return repairs


class SlotReconciler:
    """Reads the pools and the runs, plans the repairs and applies them (counting SlotsReconciled per reason)."""

    def __init__(
        self,
        store: CapacityStore,
        status_store: StatusStore,
        logger: LogSink,
        metrics: Callable[[Metric, str | None], None] | None = None,
        *,
        grace_seconds: int = 900,
        default_cpu_units: int = 1024,
    ) -> None:
        self._store = store
        self._status = status_store
        self._logger = logger
        self._metrics = metrics or (lambda metric, dimension: None)
        self._grace = grace_seconds
        self._default_cpu = default_cpu_units

    def reconcile(self, running_run_ids: set[str] | None) -> list[SlotRepair]:
        """Repairs applied (those whose conditional write did nothing, because the run moved on, are left out)."""
        snapshot = self._store.pools()
        run_ids = {run_id for pool in snapshot.all_pools() for run_id in pool.holders} | set(running_run_ids or ())
        found = self._status.get_many(run_ids)
        runs: dict[str, LifecycleRecord | None] = {run_id: found.get(run_id) for run_id in run_ids}
        plan = plan_slot_repairs(
            snapshot, runs, running_run_ids, self._status.now(), self._grace, default_cpu_units=self._default_cpu
        )
        applied = [repair for repair in plan if self._apply(repair, runs)]
        for repair in applied:
            self._metrics(Metric.SLOTS_RECONCILED, repair.reason.value)
            self._logger.warning(
                "slot reconciled",
                extra={"reason": repair.reason.value, "pool": repair.pool, "runId": repair.run_id},
            )
        return applied

    def _apply(self, repair: SlotRepair, runs: dict[str, LifecycleRecord | None]) -> bool:
        if repair.reason is SlotRepairReason.COUNT_DRIFT:
            assert repair.observed is not None
            return self._store.correct_count(repair.observed)
        assert repair.run_id is not None
        if repair.reason is SlotRepairReason.UNTRACKED_TASK:
            run = runs[repair.run_id]
            assert run is not None
            return self._store.force_hold(run, cpu_units=repair.cpu_units)
        assert repair.pool is not None
        # Conditioned on the run as the plan read it: a run re-admitted since then keeps its new slot. Its
        # member's `r#` goes with the slot, or supersede would see the finished run as still holding one.
        run = runs.get(repair.run_id)
        member = (run.challenge_id, run.member_id) if run is not None and run.member_id is not None else None
        return self._store.release_holder_if(
            repair.pool, repair.run_id, repair.cpu_units, run.state if run is not None else None, member=member
        )


__all__ = ["SlotReconciler", "SlotRepair", "SlotRepairReason", "plan_slot_repairs"]
