"""Timeout sweeper logic: stop scorer tasks that outlived their deadline, and reconcile lost STOPPED events.

The status table's `byStateDeadline` index lists LAUNCHED items whose `deadlineAt` passed. For each:

- not yet stopped: `ecs:StopTask` with a reason that starts with `TIMEOUT_STOP_REASON_PREFIX`, then
  `mark_stop_requested` pushes the deadline out by the reconcile grace. ECS then emits a STOPPED event with
  stopCode `UserInitiated` and that reason, which the completion handler maps to TIMED_OUT and reports;
  recording that outcome takes the item off the index.
- stopped earlier and still overdue: the STOPPED event was not processed within the grace (ECS or
  EventBridge never delivered it, or the rule is broken). `ecs:DescribeTasks` says what happened:
  STOPPED -> the completion function is invoked asynchronously with a synthetic event built from the
  described task; still running -> StopTask again; unknown to ECS (MISSING) -> a synthetic TIMED_OUT event.
  Each attempt pushes the deadline again; after `max_reconcile_attempts` the sweeper gives up, logs an
  ERROR, counts `ReconcileGaveUp` and takes the item off the index for an operator (decision 008).

A duplicate synthetic event (the real one arrived after all) is harmless: the completion handler records
an outcome once and reports once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from completion_lambda.observability import MetricsSink
from completion_lambda.reconcile import (
    MISSING,
    STOPPED,
    stopped_event_for_missing_task,
    stopped_event_from_task,
)
from mm_shared.constants import TIMEOUT_STOP_REASON_PREFIX
from mm_shared.models.lifecycle import LifecycleRecord, SubmissionState
from mm_shared.observability import Metric
from mm_shared.status_store import DEFAULT_RECONCILE_GRACE_SECONDS, StatusStore

MAX_STOP_REASON = 255  # StopTask `reason` limit
# StopTask answers these when the task is unknown to ECS (already stopped and gone, or never there).
_GONE_ERROR_CODES = frozenset({"InvalidParameterException", "ResourceNotFoundException", "ClusterNotFoundException"})
_ASYNC_ACCEPTED = 202


def stop_reason(record: LifecycleRecord) -> str:
    deadline = (
        datetime.fromtimestamp(record.deadline_at, tz=UTC).isoformat() if record.deadline_at is not None else "unknown"
    )
    reason = f"{TIMEOUT_STOP_REASON_PREFIX} exceeded its deadline {deadline} (submission {record.submission_id})"
    return reason[:MAX_STOP_REASON]


class ReconcileError(RuntimeError):
    """A reconciliation step got an answer it cannot act on (the item stays overdue for the next run)."""


@dataclass
class SweepResult:
    overdue: int = 0
    stopped: int = 0
    already_gone: int = 0
    reconciled: int = 0  # synthetic STOPPED events sent to the completion function
    stopped_again: int = 0  # stop requested earlier, task still running: StopTask repeated
    gave_up: int = 0
    failed: list[str] = field(default_factory=list)  # submission ids whose handling failed (retried next run)

    def to_dict(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "stopped": self.stopped,
            "alreadyGone": self.already_gone,
            "reconciled": self.reconciled,
            "stoppedAgain": self.stopped_again,
            "gaveUp": self.gave_up,
            "failed": len(self.failed),
        }


class TimeoutSweeper:
    def __init__(
        self,
        *,
        store: StatusStore,
        ecs: Any,
        metrics: MetricsSink,
        max_stops_per_run: int,
        logger: Logger,
        lambda_client: Callable[[], Any] | None = None,
        completion_function_name: str = "",
        environment_name: str = "",
        reconcile_grace_seconds: int = DEFAULT_RECONCILE_GRACE_SECONDS,
        max_reconcile_attempts: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ecs = ecs
        self._metrics = metrics
        self._max = max_stops_per_run
        self._logger = logger
        self._lambda = lambda_client  # built on first use: most sweeps reconcile nothing
        self._completion_function = completion_function_name
        self._environment = environment_name
        self._grace = reconcile_grace_seconds
        self._max_attempts = max_reconcile_attempts
        self._clock = clock

    def sweep(self) -> SweepResult:
        result = SweepResult()
        overdue = self._store.find_overdue(limit=self._max)
        result.overdue = len(overdue)
        for entry in overdue:
            try:
                self._handle(entry, result)
            except Exception:  # one failure never stops the rest; the item stays overdue for the next run
                result.failed.append(entry.submission_id)
                self._logger.exception("could not handle overdue task", extra={"submission_id": entry.submission_id})
        return result

    def _handle(self, entry: LifecycleRecord, result: SweepResult) -> None:
        # The index projects keys and ARNs only (and may lag): read the item itself.
        record = self._store.get(entry.submission_id)
        if record is None or record.state is not SubmissionState.LAUNCHED or record.task_arn != entry.task_arn:
            self._logger.info("overdue item settled in the meantime", extra={"submission_id": entry.submission_id})
            return
        if not record.task_arn or not record.cluster_arn:
            raise ValueError("overdue item has no taskArn/clusterArn")
        if record.stop_requested_at is None:
            self._stop(record, result)
        else:
            self._reconcile(record, result)

    # ------------------------------------------------------------------ first pass: stop
    def _stop(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert record.task_arn is not None
        reason = stop_reason(record)
        note = reason
        try:
            self._ecs.stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=reason)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in _GONE_ERROR_CODES:
                raise
            # Already stopped (or gone): its STOPPED event decides the outcome; reconciled if it never comes.
            note = f"{reason}; StopTask answered {code}: task already stopped or not found"
            result.already_gone += 1
            self._logger.warning(
                "overdue task already stopped or not found",
                extra={"submission_id": record.submission_id, "error_code": code},
            )
        else:
            result.stopped += 1
            self._metrics.count(Metric.TASKS_STOPPED_FOR_TIMEOUT)
            self._logger.info(
                "stopped overdue task", extra={"submission_id": record.submission_id, "task_arn": record.task_arn}
            )
        if not self._store.mark_stop_requested(
            record.submission_id, task_arn=record.task_arn, reason=note, grace_seconds=self._grace
        ):
            # The STOPPED event was recorded in between: nothing left to do.
            self._logger.info("item left LAUNCHED before the stop was recorded", extra={"id": record.submission_id})

    # ------------------------------------------------------------------ later passes: reconcile
    def _reconcile(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert record.task_arn is not None
        keys = {"submission_id": record.submission_id, "task_arn": record.task_arn}
        if record.reconcile_attempt >= self._max_attempts:
            self._give_up(record, result, keys)
            return
        attempt = record.reconcile_attempt + 1
        response = self._ecs.describe_tasks(cluster=record.cluster_arn, tasks=[record.task_arn])
        tasks = [t for t in response.get("tasks") or [] if t.get("taskArn") == record.task_arn]
        failures = response.get("failures") or []
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        if tasks and tasks[0].get("lastStatus") != STOPPED:
            status = str(tasks[0].get("lastStatus"))
            self._ecs.stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=stop_reason(record))
            result.stopped_again += 1
            self._logger.warning(
                "task still not stopped after StopTask: stopped again", extra={**keys, "status": status}
            )
            detail = f"attempt {attempt}: task still {status} after StopTask; StopTask repeated"
        else:
            if tasks:
                event = stopped_event_from_task(tasks[0], now=now)
                detail = f"attempt {attempt}: ECS describes the task STOPPED; synthetic STOPPED event sent"
            elif any(f.get("reason") == MISSING for f in failures):
                event = stopped_event_for_missing_task(record, environment_name=self._environment, now=now)
                detail = f"attempt {attempt}: ECS no longer describes the task; synthetic TIMED_OUT event sent"
            else:
                reasons = sorted({str(f.get("reason")) for f in failures})
                raise ReconcileError(f"DescribeTasks answered neither the task nor MISSING: {reasons}")
            self._send(event)
            result.reconciled += 1
            self._metrics.count(Metric.STOPPED_EVENTS_RECONCILED)
            # Never the event itself: its overrides may hold a token (insecure credentials mode).
            self._logger.warning(
                "STOPPED event was not processed within the grace: synthetic event sent to the completion function",
                extra={**keys, "attempt": attempt, "source": "described" if tasks else "missing"},
            )
        if not self._store.mark_reconcile_requested(
            record.submission_id, task_arn=record.task_arn, grace_seconds=self._grace, detail=detail
        ):
            self._logger.info("item left LAUNCHED during reconciliation", extra=keys)

    def _send(self, event: dict[str, Any]) -> None:
        if self._lambda is None or not self._completion_function:
            raise ReconcileError("no completion function to send a synthetic STOPPED event to")
        response = self._lambda().invoke(
            FunctionName=self._completion_function,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        status = response.get("StatusCode")
        if status != _ASYNC_ACCEPTED:
            raise ReconcileError(f"Lambda Invoke (Event) answered {status}, expected {_ASYNC_ACCEPTED}")

    def _give_up(self, record: LifecycleRecord, result: SweepResult, keys: dict[str, str]) -> None:
        assert record.task_arn is not None
        result.gave_up += 1
        self._metrics.count(Metric.RECONCILE_GAVE_UP)
        self._logger.error(
            "STOPPED event still not processed after the last reconcile attempt: an operator must look",
            extra={**keys, "attempts": record.reconcile_attempt},
        )
        self._store.mark_reconcile_abandoned(
            record.submission_id,
            task_arn=record.task_arn,
            detail=f"gave up after {record.reconcile_attempt} reconcile attempts; left LAUNCHED for an operator",
        )
