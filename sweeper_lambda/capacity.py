"""The sweeper's capacity passes' parts (decision 096): what they use (`SweeperCapacity`) and the four capacity
gauges they publish (`capacity_gauges`, pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mm_capacity.dispatcher import Admitted, Dispatcher
from mm_capacity.reconciler import SlotReconciler
from mm_capacity.store import CapacityStore, PoolSnapshot, PoolState
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.ports import MetricsSink

__all__ = ["CapacityGauge", "SweeperCapacity", "capacity_gauges"]


@dataclass(frozen=True)
class CapacityGauge:
    metric: Metric
    value: float
    challenge_id: str | None  # None: the environment's line (totals, or the maximum for wait and fullness)
    seconds: bool = False


def _full(pool: PoolState, cap: int | None) -> bool:
    return cap is not None and pool.used >= cap


def capacity_gauges(
    snapshot: PoolSnapshot,
    *,
    challenge_caps: Mapping[str, int | None],
    oldest_enqueued_at: Mapping[str, int],
    environment: EnvironmentCapacity | None,
    now: float,
) -> list[CapacityGauge]:
    """The four capacity gauges per challenge and for the environment (pure; decision 096).

    RunningTasks: slots held. WaitingRuns: runs waiting. OldestWaitSeconds: the longest wait right now (0 when
    nothing waits). CapacityFull: 1 when a cap is reached *and* runs wait behind it (a cap reached with nothing
    waiting holds nobody back). The environment's line: the totals, the longest wait anywhere, and 1 when the
    environment cap holds runs back or any challenge's cap does.
    """
    ids = sorted(snapshot.challenges)
    gauges: list[CapacityGauge] = []
    oldest_overall = 0.0
    any_full = False
    waiting_total = 0
    for challenge_id in ids:
        pool = snapshot.challenges.get(challenge_id)
        used = pool.used if pool else 0
        waiting = pool.waiting if pool else 0
        cap = challenge_caps.get(challenge_id, pool.cap if pool else None)
        enqueued = oldest_enqueued_at.get(challenge_id)
        oldest = max(0.0, now - enqueued) if enqueued is not None and waiting > 0 else 0.0
        full = pool is not None and waiting > 0 and _full(pool, cap)
        waiting_total += waiting
        oldest_overall = max(oldest_overall, oldest)
        any_full = any_full or full
        gauges += [
            CapacityGauge(Metric.RUNNING_TASKS, used, challenge_id),
            CapacityGauge(Metric.WAITING_RUNS, waiting, challenge_id),
            CapacityGauge(Metric.OLDEST_WAIT_SECONDS, oldest, challenge_id, seconds=True),
            CapacityGauge(Metric.CAPACITY_FULL, 1 if full else 0, challenge_id),
        ]
    env_cap = environment.max_running_tasks if environment is not None else None
    env_full = waiting_total > 0 and _full(snapshot.env, env_cap)
    if environment is not None and environment.max_running_vcpu is not None and waiting_total > 0:
        cpu_cap_units = int(environment.max_running_vcpu * 1024)
        env_full = env_full or snapshot.env.cpu_used + environment.default_task_cpu > cpu_cap_units
    gauges += [
        CapacityGauge(Metric.RUNNING_TASKS, snapshot.env.used, None),
        CapacityGauge(Metric.WAITING_RUNS, waiting_total, None),
        CapacityGauge(Metric.OLDEST_WAIT_SECONDS, oldest_overall, None, seconds=True),
        CapacityGauge(Metric.CAPACITY_FULL, 1 if env_full or any_full else 0, None),
    ]
    return gauges


@dataclass(frozen=True)
class SweeperCapacity:
    """What the sweeper's capacity passes use (decision 096): the store, the env-wide dispatcher, the slot
    reconciler, the admitted-run sender, the caps, and where the gauges go."""

    store: CapacityStore
    dispatcher: Dispatcher
    reconciler: SlotReconciler
    send: Callable[[Admitted], None]
    challenge_settings: Callable[[str], ChallengeConfig | None]
    environment_capacity: Callable[[], EnvironmentCapacity]
    gauges: MetricsSink
