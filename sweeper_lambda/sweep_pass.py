"""What every sweeper pass shares (`SweepPass`): its ports, one guarded step per item, DescribeTasks, and the
asynchronous send of a synthetic or report-due event to the completion function."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from mm_adapters.status_store import StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.report_due import report_due_event
from mm_contracts.ports import MetricsSink
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda.capacity import SweeperCapacity
from sweeper_lambda.result import SweepResult

MAX_STOP_REASON = 255  # StopTask `reason` limit
ECS_BATCH = 100  # DescribeTasks takes at most 100 tasks; ListTasks returns at most 100 a page
# StopTask answers these when the task is unknown to ECS (already stopped and gone, or never there).
GONE_ERROR_CODES = frozenset({"InvalidParameterException", "ResourceNotFoundException", "ClusterNotFoundException"})
_ASYNC_ACCEPTED = 202


class ReconcileError(RuntimeError):
    """A reconciliation step got an answer it cannot act on (the item stays due for the next run)."""


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class SweepPorts:
    """What a sweep talks to. `capacity` None: no capacity passes (tests and tools that predate capacity; the
    deployed sweeper always has them). `lambda_client` is built on first use: most sweeps send nothing."""

    store: StatusStore
    ecs: Any
    metrics: MetricsSink
    settings: TimeoutSweeperSettings
    logger: Logger
    lambda_client: Callable[[], Any] | None = None
    capacity: SweeperCapacity | None = None


class SweepPass:
    """The ports every pass uses, and the plumbing they share: one guarded step per item, DescribeTasks, the
    asynchronous send of a synthetic or report-due event to the completion function."""

    def __init__(self, ports: SweepPorts) -> None:
        self._store = ports.store
        self._capacity = ports.capacity
        self._ecs = ports.ecs
        self._metrics = ports.metrics
        self._settings = ports.settings
        self._logger = ports.logger
        self._lambda = ports.lambda_client

    def _guarded(self, result: SweepResult, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # one failure never stops the rest; the item stays due for the next run
            result.failed.append(what)
            self._logger.exception("could not handle a sweeper item", extra={"run_id": what})

    def _describe(
        self, cluster: str, arns: list[str], *, include_tags: bool = False
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        request: dict[str, Any] = {"cluster": cluster, "tasks": arns}
        if include_tags:
            request["include"] = ["TAGS"]
        response = self._ecs.describe_tasks(**request)
        tasks = {str(t.get("taskArn")): t for t in response.get("tasks") or []}
        failures = {str(f.get("arn")): str(f.get("reason")) for f in response.get("failures") or []}
        return tasks, failures

    @property
    def _environment(self) -> str:
        return self._settings.environment_name

    @staticmethod
    def _at(now: float) -> datetime:
        return datetime.fromtimestamp(now, tz=UTC)

    def _send(self, event: dict[str, Any]) -> None:
        if self._lambda is None or not self._settings.completion_function_name:
            raise ReconcileError("no completion function to send a synthetic event to")
        response = self._lambda().invoke(
            FunctionName=self._settings.completion_function_name,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        status = response.get("StatusCode")
        if status != _ASYNC_ACCEPTED:
            raise ReconcileError(f"Lambda Invoke (Event) answered {status}, expected {_ASYNC_ACCEPTED}")

    def _stop_redriving(
        self,
        record: LifecycleRecord,
        metric: Metric,
        message: str,
        *,
        keys: dict[str, Any],
        attempts: int,
        history_state: str,
        detail: str,
    ) -> None:
        """Stop re-driving an item: counted, an ERROR log for an operator, the item off the deadline index."""
        assert record.deadline_at is not None
        self._metrics.count(metric)
        self._logger.error(message, extra={**keys, "attempts": attempts})
        self._store.clear_deadline(
            record.run_id, observed_deadline=record.deadline_at, history_state=history_state, detail=detail
        )

    def _send_report_due(self, run_id: str, keys: dict[str, Any]) -> None:
        """A definite v6 failure's terminal summation is owed now (decision 086). If this send is lost, the
        unfinished-report pass re-drives it (the item carries the report's deadline)."""
        try:
            self._send(report_due_event(run_id))
        except Exception:
            self._logger.warning("report-due send failed; the unfinished-report pass re-drives it", extra=keys)
