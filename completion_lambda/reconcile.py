"""Synthetic "ECS Task State Change" events for STOPPED events that were never processed (decision 008).

Pure functions: the sweeper builds one of these and invokes the completion function with it, so the
outcome is decided, recorded and reported by exactly the code a real event goes through.

- `stopped_event_from_task`: ECS still describes the task. DescribeTasks returns the same camelCase keys as
  the event's `detail` (overrides, containers with exit codes, stopCode, stoppedReason, startedBy); only the
  timestamps differ (botocore gives datetimes, the event has ISO strings).
- `stopped_event_for_missing_task`: ECS forgot the task (it keeps stopped tasks for about an hour). We did
  stop it for its timeout, so the event says so: stopCode `UserInitiated` with our timeout marker, no
  containers, and the identity overrides rebuilt from the status item.

The payload may hold the insecure-mode token (the described task's overrides): never log it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from mm_shared.constants import TIMEOUT_STOP_REASON_PREFIX, started_by
from mm_shared.models.ecs_event import ECS_EVENT_SOURCE, ECS_TASK_STATE_CHANGE, StopCode
from mm_shared.models.lifecycle import LifecycleRecord
from mm_shared.models.task import TaskEnv

STOPPED = "STOPPED"
MISSING = "MISSING"  # DescribeTasks `failures[].reason` for a task ECS does not know (any more)
MISSING_TASK_NOTE = "(reconciled: ECS no longer describes the task)"


def _iso(value: datetime) -> str:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_ready(value: Any) -> Any:
    """A DescribeTasks structure with every datetime as an ISO string (as EventBridge delivers it)."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def _envelope(detail: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    task_arn = str(detail["taskArn"])
    # arn:<partition>:ecs:<region>:<account>:task/<cluster>/<id>
    parts = task_arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) > 5 else ("", "")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": ECS_TASK_STATE_CHANGE,
        "source": ECS_EVENT_SOURCE,
        "account": account,
        "time": _iso(now),
        "region": region,
        "resources": [task_arn],
        "detail": detail,
    }


def stopped_event_from_task(task: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The event ECS would have sent for this described (STOPPED) task."""
    detail = json_ready(task)
    detail.setdefault("updatedAt", _iso(now))
    return _envelope(detail, now=now)


def missing_task_stop_reason(record: LifecycleRecord) -> str:
    submission = record.submission_id
    return f"{TIMEOUT_STOP_REASON_PREFIX} stopped past its deadline (submission {submission}) {MISSING_TASK_NOTE}"


def stopped_event_for_missing_task(record: LifecycleRecord, *, environment_name: str, now: datetime) -> dict[str, Any]:
    """A STOPPED event for a task we stopped for its timeout and ECS no longer describes: reported TIMED_OUT."""
    if not record.task_arn or not record.cluster_arn:
        raise ValueError("the status item has no taskArn/clusterArn")
    environment = [
        {"name": TaskEnv.SUBMISSION_ID.value, "value": record.submission_id},
        {"name": TaskEnv.CHALLENGE_ID.value, "value": record.challenge_id},
    ]
    if record.correlation_id:
        environment.append({"name": TaskEnv.CORRELATION_ID.value, "value": record.correlation_id})
    stopped_at = record.stop_requested_at or now
    detail: dict[str, Any] = {
        "taskArn": record.task_arn,
        "clusterArn": record.cluster_arn,
        "lastStatus": STOPPED,
        "desiredStatus": STOPPED,
        "startedBy": started_by(environment_name, record.challenge_id),
        "containers": [],
        "overrides": {"containerOverrides": [{"environment": environment}]},
        "stopCode": StopCode.USER_INITIATED,
        "stoppedReason": missing_task_stop_reason(record),
        "stoppedAt": _iso(stopped_at),
        "updatedAt": _iso(now),
    }
    return _envelope(detail, now=now)


__all__ = [
    "MISSING",
    "MISSING_TASK_NOTE",
    "STOPPED",
    "json_ready",
    "missing_task_stop_reason",
    "stopped_event_for_missing_task",
    "stopped_event_from_task",
]
