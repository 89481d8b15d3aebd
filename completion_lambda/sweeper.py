"""Timeout sweeper logic: stop scorer tasks that outlived their deadline.

The status table's `byStateDeadline` index lists LAUNCHED items whose `deadlineAt` passed. Each task is
stopped with a reason that starts with `TIMEOUT_STOP_REASON_PREFIX`; ECS then emits a STOPPED event with
stopCode `UserInitiated` and that reason, which the completion handler maps to TIMED_OUT and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from completion_lambda.observability import MetricsSink
from mm_shared.constants import TIMEOUT_STOP_REASON_PREFIX
from mm_shared.models.lifecycle import LifecycleRecord
from mm_shared.observability import Metric
from mm_shared.status_store import StatusStore

MAX_STOP_REASON = 255  # StopTask `reason` limit
# StopTask answers these when the task is unknown to ECS (already stopped and gone, or never there).
_GONE_ERROR_CODES = frozenset({"InvalidParameterException", "ResourceNotFoundException", "ClusterNotFoundException"})


def stop_reason(record: LifecycleRecord) -> str:
    deadline = (
        datetime.fromtimestamp(record.deadline_at, tz=UTC).isoformat() if record.deadline_at is not None else "unknown"
    )
    reason = f"{TIMEOUT_STOP_REASON_PREFIX} exceeded its deadline {deadline} (submission {record.submission_id})"
    return reason[:MAX_STOP_REASON]


@dataclass
class SweepResult:
    overdue: int = 0
    stopped: int = 0
    already_gone: int = 0
    failed: list[str] = field(default_factory=list)  # submission ids whose stop failed (retried next run)

    def to_dict(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "stopped": self.stopped,
            "alreadyGone": self.already_gone,
            "failed": len(self.failed),
        }


class TimeoutSweeper:
    def __init__(
        self, *, store: StatusStore, ecs: Any, metrics: MetricsSink, max_stops_per_run: int, logger: Logger
    ) -> None:
        self._store = store
        self._ecs = ecs
        self._metrics = metrics
        self._max = max_stops_per_run
        self._logger = logger

    def sweep(self) -> SweepResult:
        result = SweepResult()
        overdue = self._store.find_overdue(limit=self._max)
        result.overdue = len(overdue)
        for record in overdue:
            try:
                self._stop(record, result)
            except Exception:  # one failure never stops the rest; the item stays overdue for the next run
                result.failed.append(record.submission_id)
                self._logger.exception("could not stop overdue task", extra={"submission_id": record.submission_id})
        return result

    def _stop(self, record: LifecycleRecord, result: SweepResult) -> None:
        if not record.task_arn or not record.cluster_arn:
            raise ValueError("overdue item has no taskArn/clusterArn")
        reason = stop_reason(record)
        note = reason
        try:
            self._ecs.stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=reason)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in _GONE_ERROR_CODES:
                raise
            # Already stopped (or gone): its STOPPED event decides the outcome; just stop re-sweeping it.
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
        if not self._store.mark_stop_requested(record.submission_id, task_arn=record.task_arn, reason=note):
            # The STOPPED event was recorded in between: nothing left to do.
            self._logger.info("item left LAUNCHED before the stop was recorded", extra={"id": record.submission_id})
