"""Pass 3 of a sweep: stuck launches (decision 080).

LAUNCHING whose lease expired longer ago than SQS can redeliver the message, and LAUNCH_FAILED past its message
lifetime, become DEAD_LETTERED with a reason that tells an operator to redrive the message. A v6 LAUNCH_FAILED
whose failure was definite also gets its terminal report due, sent at once (decision 086), and its slot released.
A LAUNCH_FAILED whose relaunch was never confirmed sent is re-driven through the completion function instead
(decision 072).
"""

from __future__ import annotations

from functools import partial

from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import (
    LifecycleRecord,
    SubmissionState,
)
from sweeper_lambda.result import SweepResult
from sweeper_lambda.sweep_pass import SweepPass
from sweeper_lambda.synthetic_events import (
    stopped_event_for_pending_relaunch,
)


class StuckLaunchesPass(SweepPass):
    """Pass 3: stuck launches become DEAD_LETTERED (a pending relaunch is re-driven instead)."""

    def run(self, now: float, result: SweepResult) -> None:
        stuck_after = self._settings.launch_stuck_after_seconds
        # LAUNCHING: deadlineAt is the lease end; stuck once SQS can no longer redeliver the message.
        # LAUNCH_FAILED: deadlineAt is already the end of the message's lifetime.
        for state, before in ((SubmissionState.LAUNCHING, now - stuck_after), (SubmissionState.LAUNCH_FAILED, now)):
            due = self._store.find_due(state, before=before, limit=self._settings.max_stops_per_run)
            if not due:
                continue
            records = self._store.get_many(entry.run_id for entry in due)
            for entry in due:
                record = records.get(entry.run_id)
                if record is None or record.state is not state or record.deadline_at != entry.deadline_at:
                    continue  # re-claimed, launched or settled since the index listed it
                if record.deadline_at is None or record.deadline_at >= before:
                    continue
                if record.state is SubmissionState.LAUNCH_FAILED and record.relaunch_pending:
                    self._guarded(result, record.run_id, partial(self._redrive_relaunch, record, now, result))
                else:
                    self._guarded(result, record.run_id, partial(self._dead_letter, record, result))

    def _redrive_relaunch(self, record: LifecycleRecord, now: float, result: SweepResult) -> None:
        """A relaunch after a start failure whose message was never confirmed sent: the completion function
        sends it (decision 072). There is no message in any queue, so dead-lettering would be untrue."""
        assert record.deadline_at is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn or ""}
        if record.reconcile_attempt >= self._settings.max_reconcile_attempts:
            result.gave_up += 1
            self._stop_redriving(
                record,
                Metric.RECONCILE_GAVE_UP,
                "relaunch after a start failure still not sent after the last re-drive: an operator must look",
                keys=keys,
                attempts=record.reconcile_attempt,
                history_state="RELAUNCH_GAVE_UP",
                detail=f"relaunch not sent after {record.reconcile_attempt} re-drives; for an operator",
            )
            return
        clusters = self._settings.ecs_cluster_arns
        event = stopped_event_for_pending_relaunch(
            record, environment_name=self._environment, now=self._at(now), cluster_arn=clusters[0] if clusters else None
        )
        self._send(event)
        result.reconciled += 1
        self._metrics.count(Metric.STOPPED_EVENTS_RECONCILED)
        self._logger.warning("pending relaunch re-driven through the completion function", extra=keys)
        self._store.mark_relaunch_redriven(
            record.run_id,
            observed_deadline=record.deadline_at,
            next_check_at=int(now) + self._settings.reconcile_grace_seconds,
            detail=f"re-drive {record.reconcile_attempt + 1}: relaunch message never confirmed sent",
        )

    def _dead_letter(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert record.deadline_at is not None
        attempt = record.launch_attempt
        if record.state is SubmissionState.LAUNCHING:
            reason = (
                f"launch never confirmed: the delivery that claimed attempt {attempt} stopped before recording a task "
                "and SQS can no longer redeliver the message; message presumed in the DLQ; redrive it "
                "(a redrive reuses the clientToken, so a task that did start is not started twice)"
            )
        else:
            reason = (
                f"launch never confirmed: attempt {attempt} failed ({record.reason or 'no reason recorded'}) and the "
                "message was not redelivered within its lifetime; message presumed in the DLQ; redrive it"
            )
        marked = self._store.mark_launch_stuck(
            record.run_id,
            observed_state=record.state,
            attempt=attempt,
            observed_deadline=record.deadline_at,
            reason=reason,
        )
        if not marked:
            return  # a delivery re-claimed it in between
        if self._capacity is not None and record.state is SubmissionState.LAUNCH_FAILED and not record.launch_ambiguous:
            # Definite: no task of the run can exist, so its slot is free now (an ambiguous one keeps it until a
            # redrive requeues it, or the reconciler finds no task after its grace).
            self._guarded(result, record.run_id, partial(self._release_dead_lettered, record, result))
        result.launches_dead_lettered += 1
        self._metrics.count(Metric.STUCK_LAUNCHES_DEAD_LETTERED)
        keys = {"run_id": record.run_id, "was": record.state.value, "attempt": attempt}
        self._logger.warning(
            "stuck launch marked DEAD_LETTERED: redrive the challenge DLQ",
            extra={**keys, "report_due": marked.report_due},
        )
        if marked.report_due:
            self._send_report_due(record.run_id, keys)

    def _release_dead_lettered(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert self._capacity is not None
        if record.slot_pools and self._capacity.store.release(record):
            result.slots_released += 1
            self._logger.info("slot of a dead-lettered launch released", extra={"run_id": record.run_id})
