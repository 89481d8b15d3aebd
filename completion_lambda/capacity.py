"""Capacity from the completion side: free a finished run's slot, hand the room to a waiting run (decision 096).

The completion function and the timeout sweeper both end runs, so both trigger admission: after a final outcome
is recorded the run's slot is released (`CapacityStore.release`, idempotent per pool) and the env-wide dispatcher
admits whoever waits longest at the fairest challenge, sending each admitted run's message to its own challenge
queue. A failure here never costs an outcome or a report: it is logged and counted, and the sweeper's slot
reconciler and its own dispatch every run are the safety net.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from completion_lambda.observability import GaugeSink, MetricsSink
from mm_adapters.challenge_config import ChallengeConfigError
from mm_capacity.dispatcher import Admitted, Dispatcher, DispatchResult, admitted_message_body
from mm_capacity.reconciler import SlotReconciler
from mm_capacity.store import CapacityStore, PoolSnapshot, PoolState, WaitEntry
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE

__all__ = [
    "CapacityGauge",
    "ChallengeQueues",
    "FreedSlots",
    "SweeperCapacity",
    "capacity_gauges",
    "challenge_settings_of",
    "dispatcher_metrics",
    "entry_of_admitted",
]


class ChallengeQueues:
    """Challenge queue URLs by challenge id, from the queue name template (one GetQueueUrl per challenge and
    container), and the one way a run's message goes back to its challenge queue."""

    def __init__(self, name_template: str, sqs: Callable[[], Any]) -> None:
        self._template = name_template
        self._sqs = sqs
        self._urls: dict[str, str] = {}

    def url(self, challenge_id: str) -> str:
        url = self._urls.get(challenge_id)
        if url is None:
            name = self._template.format(challenge_id=challenge_id)
            url = str(self._sqs().get_queue_url(QueueName=name)["QueueUrl"])
            self._urls[challenge_id] = url
        return url

    def send(self, challenge_id: str, body: str, *, delay_seconds: int = 0) -> None:
        request: dict[str, Any] = {
            "QueueUrl": self.url(challenge_id),
            "MessageBody": body,
            "MessageAttributes": {CHALLENGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": challenge_id}},
        }
        if delay_seconds:
            request["DelaySeconds"] = delay_seconds
        self._sqs().send_message(**request)

    def send_admitted(self, admitted: Admitted) -> None:
        """The admitted run's routed message (narrowed to its phase) to its challenge queue, where the challenge
        processor claims its launch from ADMITTED exactly as for a first delivery."""
        self.send(admitted.entry.challenge_id, admitted_message_body(admitted))


def dispatcher_metrics(metrics: MetricsSink) -> Callable[[Metric, str | None], None]:
    """The dispatcher's and reconciler's metric callback on this package's sink. The dispatcher's second value is
    a challenge id (RunsAdmitted), the reconciler's a reason (SlotsReconciled): only reasons become a dimension;
    the per-challenge picture is the gauges'."""

    def count(metric: Metric, dimension: str | None) -> None:
        metrics.count(metric, reason=dimension if metric is Metric.SLOTS_RECONCILED else None)

    return count


def challenge_settings_of(config_source: Any, *, logger: Logger) -> Callable[[str], ChallengeConfig | None]:
    """The dispatcher's config lookup: a challenge whose config cannot be read or used is skipped this time
    (its runs keep waiting; the next trigger or sweep looks again) rather than failing the whole dispatch."""

    def lookup(challenge_id: str) -> ChallengeConfig | None:
        try:
            config: ChallengeConfig = config_source.get(challenge_id)
        except ChallengeConfigError as error:
            logger.warning(
                "challenge config unusable: its waiting runs are not admitted this time",
                extra={"challenge_id": challenge_id, "config_error": error.reason.value},
            )
            return None
        return config

    return lookup


def entry_of_admitted(record: LifecycleRecord) -> WaitEntry:
    """The queue entry an ADMITTED run was admitted from, rebuilt from its status item (what a re-send needs)."""
    return WaitEntry(
        challenge_id=record.challenge_id,
        run_id=record.run_id,
        submission_id=record.submission_id,
        phase=record.phase,
        member_id=record.member_id if record.member_id is not None else 0,
        wait_order=record.wait_order or "",
        enqueued_at=record.enqueued_at if record.enqueued_at is not None else 0,
        rerun=record.rerun,
    )


class FreedSlots:
    """Release a run's slot and dispatch env-wide; every error logged and counted, never raised."""

    def __init__(self, store: CapacityStore, dispatcher: Dispatcher, *, logger: Logger, metrics: MetricsSink) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._logger = logger
        self._metrics = metrics

    def release(self, record: LifecycleRecord) -> bool:
        """Free every pool the run holds; True when this call freed one (a duplicate frees nothing)."""
        if not record.slot_pools:
            return False
        try:
            freed = self._store.release(record)
        except Exception:
            self._logger.exception(
                "slot release failed: the sweeper's reconciler frees it", extra={"run_id": record.run_id}
            )
            self._metrics.count(Metric.CAPACITY_ERRORS, reason="release")
            return False
        if freed:
            self._logger.info("slot released", extra={"run_id": record.run_id, "pools": record.slot_pools})
        return freed

    def dispatch(self) -> DispatchResult | None:
        """Admit waiting runs env-wide (fair across challenges); None when it failed (the sweeper dispatches)."""
        try:
            result = self._dispatcher.dispatch()  # unreadable caps: counted by the dispatcher, nothing admitted
        except Exception:
            self._logger.exception("dispatch failed: the sweeper's dispatch admits the waiting runs")
            self._metrics.count(Metric.CAPACITY_ERRORS, reason="dispatch")
            return None
        if result.admitted:
            self._logger.info(
                "waiting runs admitted",
                extra={"admitted": [a.entry.run_id for a in result.admitted], "blocked_by": result.blocked_by},
            )
        return result

    def free(self, record: LifecycleRecord) -> None:
        """After a final outcome of a run that held a slot: release, then dispatch even when this call freed
        nothing (an earlier delivery may have released and died before it dispatched; dispatching again is
        harmless). A run that never held a slot (launched before capacity existed) changes no room."""
        if not record.slot_pools:
            return
        self.release(record)
        self.dispatch()


# ---------------------------------------------------------------------------------------------- gauges
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
    gauges: GaugeSink
