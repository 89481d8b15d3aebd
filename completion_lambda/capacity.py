"""Capacity from the completion side: free a finished run's slot, hand the room to a waiting run (decision 096).

The completion function and the sweeper both end runs, so both trigger admission: after a final outcome is
recorded the run's slot is released (`CapacityStore.release`, idempotent per pool) and the env-wide dispatcher
admits whoever waits longest at the fairest challenge, sending each admitted run's message to its own challenge
queue (`mm_capacity.queues`). A failure here never costs an outcome or a report: it is logged and counted, and the
sweeper's slot reconciler and its own dispatch every run are the safety net.
"""

from __future__ import annotations

from mm_capacity.dispatcher import Dispatcher, DispatchResult
from mm_capacity.store import CapacityStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.ports import LogSink, MetricsSink

__all__ = ["FreedSlots"]


class FreedSlots:
    """Release a run's slot and dispatch env-wide; every error logged and counted, never raised."""

    def __init__(self, store: CapacityStore, dispatcher: Dispatcher, *, logger: LogSink, metrics: MetricsSink) -> None:
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
            # One env-wide dispatcher at a time (124); unreadable caps: counted by the dispatcher, nothing admitted.
            result = self._dispatcher.dispatch_in_turn()
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
