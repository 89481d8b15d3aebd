"""Pass 1 of a sweep: due LAUNCHED items (GSI `byStateDeadline`; decisions 008, 073, 095).

Describe first (DescribeTasks, up to 100 tasks a call), then act: a task STOPPED longer ago than the event grace
gets a synthetic event built from the described task; one still running past its timeout is stopped (again, if an
earlier stop did not take); one before its timeout gets its next liveness check; a superseded run's task is
stopped with the superseded reason; a task ECS forgot gets a synthetic TIMED_OUT (we stopped it) or
"outcome unknown" event. After `max_reconcile_attempts` the sweeper gives up (ERROR log, `ReconcileGaveUp`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import (
    LifecycleRecord,
    SubmissionState,
)
from mm_contracts.models.outcome import SUPERSEDED_REASON
from mm_contracts.names import TIMEOUT_STOP_REASON_PREFIX
from sweeper_lambda.result import SweepResult
from sweeper_lambda.sweep_pass import ECS_BATCH, GONE_ERROR_CODES, MAX_STOP_REASON, ReconcileError, SweepPass, chunks
from sweeper_lambda.synthetic_events import (
    MISSING,
    STOPPED,
    stopped_event_for_missing_task,
    stopped_event_for_unknown_outcome,
    stopped_event_from_task,
)


def _timeout_at(record: LifecycleRecord) -> int | None:
    # Items launched before timeoutAt existed carry their timeout in deadlineAt.
    return record.timeout_at if record.timeout_at is not None else record.deadline_at


def stop_reason(record: LifecycleRecord) -> str:
    timeout_at = _timeout_at(record)
    deadline = datetime.fromtimestamp(timeout_at, tz=UTC).isoformat() if timeout_at is not None else "unknown"
    reason = f"{TIMEOUT_STOP_REASON_PREFIX} exceeded its deadline {deadline} (run {record.run_id})"
    return reason[:MAX_STOP_REASON]


class LaunchedRunsPass(SweepPass):
    """Pass 1: due LAUNCHED items, described first, then stopped, reconciled or checked again later."""

    def run(self, now: float, result: SweepResult) -> None:
        due = self._store.find_overdue(limit=self._settings.max_stops_per_run)
        result.overdue = len(due)
        if not due:
            return
        # The index projects keys and ARNs only (and may lag): read the items themselves.
        records = self._store.get_many(entry.run_id for entry in due)
        by_cluster: dict[str, list[LifecycleRecord]] = defaultdict(list)
        for entry in due:
            record = records.get(entry.run_id)
            if record is None or record.state is not SubmissionState.LAUNCHED or record.task_arn != entry.task_arn:
                self._logger.info("overdue item settled in the meantime", extra={"run_id": entry.run_id})
                continue
            if not record.task_arn or not record.cluster_arn:
                result.failed.append(record.run_id)
                self._logger.error("overdue item has no taskArn/clusterArn", extra={"run_id": record.run_id})
                continue
            if record.reconcile_attempt >= self._settings.max_reconcile_attempts:
                self._guarded(result, record.run_id, partial(self._give_up_reconciling, record, result))
                continue
            by_cluster[record.cluster_arn].append(record)
        for cluster, cluster_records in by_cluster.items():
            for batch in chunks(cluster_records, ECS_BATCH):
                try:
                    tasks, failures = self._describe(cluster, [r.task_arn for r in batch if r.task_arn])
                except Exception:
                    result.failed.extend(r.run_id for r in batch)
                    self._logger.exception("DescribeTasks failed", extra={"cluster": cluster, "tasks": len(batch)})
                    continue
                for record in batch:
                    assert record.task_arn is not None
                    task, failure = tasks.get(record.task_arn), failures.get(record.task_arn)
                    self._guarded(
                        result,
                        record.run_id,
                        partial(self._check_launched, record, task, failure, now, result),
                    )

    def _check_launched(
        self, record: LifecycleRecord, task: dict[str, Any] | None, failure: str | None, now: float, result: SweepResult
    ) -> None:
        assert record.task_arn is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn}
        if task is not None and task.get("lastStatus") == STOPPED:
            stopped_at = task.get("stoppedAt")
            stopped_epoch = stopped_at.timestamp() if isinstance(stopped_at, datetime) else None
            grace = self._settings.event_grace_seconds
            if stopped_epoch is not None and now - stopped_epoch < grace:
                # Stopped moments ago: the real event is most likely on its way. Look again after the grace.
                result.awaiting_event += 1
                self._store.mark_liveness_checked(
                    record.run_id, task_arn=record.task_arn, next_check_at=int(stopped_epoch) + grace + 1
                )
                return
            event = stopped_event_from_task(task, now=self._at(now))
            self._reconcile(record, event, "ECS describes the task STOPPED", result, now)
            return
        if task is not None:
            self._check_running(record, str(task.get("lastStatus")), now, result, keys)
            return
        if failure == MISSING:
            if record.stop_requested_at is not None:
                event = stopped_event_for_missing_task(record, environment_name=self._environment, now=self._at(now))
                self._reconcile(record, event, "ECS no longer describes the task; synthetic TIMED_OUT", result, now)
            else:
                event = stopped_event_for_unknown_outcome(record, environment_name=self._environment, now=self._at(now))
                self._reconcile(record, event, "ECS no longer describes the task; outcome unknown", result, now)
            return
        raise ReconcileError(f"DescribeTasks answered neither the task nor MISSING: {failure}")

    def _check_running(
        self, record: LifecycleRecord, status: str, now: float, result: SweepResult, keys: dict[str, str]
    ) -> None:
        assert record.task_arn is not None
        timeout_at = _timeout_at(record)
        if record.stop_requested_at is not None:
            # Stopped earlier and still not STOPPED a grace later: stop again (counts a reconcile attempt).
            self._ecs.stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=self._stop_reason_of(record))
            result.stopped_again += 1
            self._logger.warning(
                "task still not stopped after StopTask: stopped again", extra={**keys, "status": status}
            )
            detail = f"attempt {record.reconcile_attempt + 1}: task still {status} after StopTask; StopTask repeated"
            self._mark_reconcile(record, detail, keys)
            return
        if record.cancel_requested:
            # Superseded, and the challenge processor's StopTask failed (decision 095): stop it now, before its
            # timeout. Its STOPPED event (or, once ECS forgets it, the missing-task event) records CANCELLED.
            self._stop(record, result, superseded=True)
            return
        if timeout_at is None or now >= timeout_at:
            self._stop(record, result)
            return
        result.still_running += 1
        next_check = min(timeout_at, int(now) + self._settings.liveness_check_seconds)
        self._store.mark_liveness_checked(record.run_id, task_arn=record.task_arn, next_check_at=next_check)

    @staticmethod
    def _stop_reason_of(record: LifecycleRecord) -> str:
        """A superseded run's task is stopped with the superseded reason (the completion function records it as the
        CANCELLED outcome's reason), any other with the timeout reason."""
        return SUPERSEDED_REASON if record.cancel_requested else stop_reason(record)

    def _stop(self, record: LifecycleRecord, result: SweepResult, *, superseded: bool = False) -> None:
        assert record.task_arn is not None
        reason = SUPERSEDED_REASON if superseded else stop_reason(record)
        note = reason
        try:
            self._ecs.stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=reason)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in GONE_ERROR_CODES:
                raise
            # Gone between the describe and the stop: its STOPPED event decides; reconciled if it never comes.
            note = f"{reason}; StopTask answered {code}: task already stopped or not found"
            result.already_gone += 1
            self._logger.warning(
                "overdue task already stopped or not found",
                extra={"run_id": record.run_id, "error_code": code},
            )
        else:
            if superseded:
                # RunsCancelled was counted when the challenge processor requested the cancel.
                result.superseded_stopped += 1
                self._logger.warning(
                    "task of a superseded run stopped by the sweeper (the challenge processor's StopTask had failed)",
                    extra={"run_id": record.run_id, "task_arn": record.task_arn},
                )
            else:
                result.stopped += 1
                self._metrics.count(Metric.TASKS_STOPPED_FOR_TIMEOUT)
                self._logger.info("stopped overdue task", extra={"run_id": record.run_id, "task_arn": record.task_arn})
        if not self._store.mark_stop_requested(
            record.run_id,
            task_arn=record.task_arn,
            reason=note,
            grace_seconds=self._settings.reconcile_grace_seconds,
        ):
            self._logger.info("item left LAUNCHED before the stop was recorded", extra={"run_id": record.run_id})

    def _reconcile(
        self, record: LifecycleRecord, event: dict[str, Any], what: str, result: SweepResult, now: float
    ) -> None:
        assert record.task_arn is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn}
        attempt = record.reconcile_attempt + 1
        self._send(event)
        result.reconciled += 1
        self._metrics.count(Metric.STOPPED_EVENTS_RECONCILED)
        # Never the event itself: its overrides may hold a token (insecure credentials mode).
        self._logger.warning(
            "STOPPED event was not processed: synthetic event sent to the completion function",
            extra={**keys, "attempt": attempt, "source": what},
        )
        self._mark_reconcile(record, f"attempt {attempt}: {what}; synthetic STOPPED event sent", keys)

    def _mark_reconcile(self, record: LifecycleRecord, detail: str, keys: dict[str, str]) -> None:
        assert record.task_arn is not None
        if not self._store.mark_reconcile_requested(
            record.run_id,
            task_arn=record.task_arn,
            grace_seconds=self._settings.reconcile_grace_seconds,
            detail=detail,
        ):
            self._logger.info("item left LAUNCHED during reconciliation", extra=keys)

    def _give_up_reconciling(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert record.task_arn is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn}
        result.gave_up += 1
        self._metrics.count(Metric.RECONCILE_GAVE_UP)
        self._logger.error(
            "STOPPED event still not processed after the last reconcile attempt: an operator must look",
            extra={**keys, "attempts": record.reconcile_attempt},
        )
        self._store.mark_reconcile_abandoned(
            record.run_id,
            task_arn=record.task_arn,
            detail=f"gave up after {record.reconcile_attempt} reconcile attempts; left LAUNCHED for an operator",
        )
