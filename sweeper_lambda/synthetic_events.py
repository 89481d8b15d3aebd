"""Synthetic "ECS Task State Change" events for STOPPED events that were never processed (decision 008).

Pure functions: the sweeper builds one of these and invokes the completion function with it, so the
outcome is decided, recorded and reported by exactly the code a real event goes through.

- `stopped_event_from_task`: ECS still describes the task. DescribeTasks returns the same camelCase keys as
  the event's `detail` (overrides, containers with exit codes, stopCode, stoppedReason, startedBy); only the
  timestamps differ (botocore gives datetimes, the event has ISO strings).
- `stopped_event_for_missing_task`: ECS forgot the task (it keeps stopped tasks for about an hour). We did
  stop it for its timeout, so the event says so: stopCode `UserInitiated` with our timeout marker, no
  containers, and the identity overrides rebuilt from the status item.
- `stopped_event_for_unknown_outcome`: ECS forgot a task we did *not* stop: nobody knows how it ended, and the
  event says so (stoppedReason `OUTCOME_UNKNOWN_STOP_REASON_PREFIX`, no stopCode, no containers; decision 073).
- `stopped_event_for_recorded_outcome`: the outcome is recorded but its report was never finished (decision
  080): the event only identifies the task (the completion function reports the recorded outcome).

The payload may hold the insecure-mode token (the described task's overrides): never log it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from mm_contracts.models.ecs_names import ECS_EVENT_SOURCE, ECS_TASK_STATE_CHANGE, StopCode
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import OUTCOME_UNKNOWN_STOP_REASON_PREFIX, TIMEOUT_STOP_REASON_PREFIX, started_by

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
    return f"{TIMEOUT_STOP_REASON_PREFIX} stopped past its deadline (run {record.run_id}) {MISSING_TASK_NOTE}"


def _identity_environment(record: LifecycleRecord) -> list[dict[str, str]]:
    """The overrides' identity variables, rebuilt from the status item (never a token: the item holds none).

    The run is (MM_SUBMISSION_ID, MM_PHASE): without the phase the completion function could not find the item
    of a multi-phase challenge (decision 084).
    """
    environment = [
        {"name": TaskEnv.SUBMISSION_ID.value, "value": record.submission_id},
        {"name": TaskEnv.PHASE.value, "value": record.phase.value},
        {"name": TaskEnv.PLATFORM.value, "value": record.platform.value},
        {"name": TaskEnv.CHALLENGE_ID.value, "value": record.challenge_id},
    ]
    if record.launch_attempt > 0:
        environment.append({"name": TaskEnv.LAUNCH_ATTEMPT.value, "value": str(record.launch_attempt)})
    if record.correlation_id:
        environment.append({"name": TaskEnv.CORRELATION_ID.value, "value": record.correlation_id})
    return environment


def _rebuilt_detail(
    record: LifecycleRecord,
    *,
    environment_name: str,
    now: datetime,
    stopped_at: datetime,
    stopped_reason: str,
    stop_code: str | None,
    cluster_arn: str | None = None,
    containers: list[dict[str, Any]] | None = None,
    container_name: str | None = None,
) -> dict[str, Any]:
    cluster = record.cluster_arn or cluster_arn
    if not record.task_arn or not cluster:
        raise ValueError("the status item has no taskArn/clusterArn")
    override: dict[str, Any] = {"environment": _identity_environment(record)}
    if container_name:
        override["name"] = container_name
    detail: dict[str, Any] = {
        "taskArn": record.task_arn,
        "clusterArn": cluster,
        "lastStatus": STOPPED,
        "desiredStatus": STOPPED,
        "startedBy": started_by(environment_name, record.challenge_id),
        "containers": containers or [],
        "overrides": {"containerOverrides": [override]},
        "stoppedReason": stopped_reason,
        "stoppedAt": _iso(stopped_at),
        "updatedAt": _iso(now),
    }
    if stop_code:
        detail["stopCode"] = stop_code
    return detail


def stopped_event_for_missing_task(record: LifecycleRecord, *, environment_name: str, now: datetime) -> dict[str, Any]:
    """A STOPPED event for a task we stopped for its timeout and ECS no longer describes: reported TIMED_OUT."""
    detail = _rebuilt_detail(
        record,
        environment_name=environment_name,
        now=now,
        stopped_at=record.stop_requested_at or now,
        stopped_reason=missing_task_stop_reason(record),
        stop_code=StopCode.USER_INITIATED,
    )
    return _envelope(detail, now=now)


def unknown_outcome_stop_reason(record: LifecycleRecord) -> str:
    return (
        f"{OUTCOME_UNKNOWN_STOP_REASON_PREFIX} ECS no longer describes the task and its STOPPED event was never "
        f"processed; the pipeline did not stop it (run {record.run_id})"
    )


def stopped_event_for_unknown_outcome(
    record: LifecycleRecord, *, environment_name: str, now: datetime
) -> dict[str, Any]:
    """A STOPPED event for a task ECS forgot and that we never stopped: the outcome is unknown, and says so."""
    detail = _rebuilt_detail(
        record,
        environment_name=environment_name,
        now=now,
        stopped_at=now,
        stopped_reason=unknown_outcome_stop_reason(record),
        stop_code=None,
    )
    return _envelope(detail, now=now)


# The one container of a rebuilt event: the overrides name it, so it is the scorer container by the overrides.
RECORDED_OUTCOME_CONTAINER = "recorded-outcome"
REPORT_REDRIVE_NOTE = "(re-driven by the sweeper: the recorded outcome is reported)"


def stopped_event_for_recorded_outcome(
    record: LifecycleRecord, *, environment_name: str, now: datetime, cluster_arn: str | None = None
) -> dict[str, Any]:
    """A STOPPED event that identifies a task whose outcome is recorded and whose report is unfinished.

    Stop code, exit code and reason are the recorded ones; the completion function reports the recorded
    outcome whatever the event says, so this only has to name the task, the run (submission, phase) and the
    attempt. A run without a task (a skipped v6 run) is re-driven with the report-due event instead.
    """
    containers: list[dict[str, Any]] = []
    if record.exit_code is not None:
        containers.append({"name": RECORDED_OUTCOME_CONTAINER, "lastStatus": STOPPED, "exitCode": record.exit_code})
    detail = _rebuilt_detail(
        record,
        environment_name=environment_name,
        now=now,
        stopped_at=record.stopped_at or now,
        stopped_reason=f"{record.reason or ''} {REPORT_REDRIVE_NOTE}".strip(),
        stop_code=record.stop_code or None,
        cluster_arn=cluster_arn,
        containers=containers,
        container_name=RECORDED_OUTCOME_CONTAINER,
    )
    return _envelope(detail, now=now)


RELAUNCH_REDRIVE_NOTE = "(re-driven by the sweeper: the relaunch was never confirmed sent)"


def stopped_event_for_pending_relaunch(
    record: LifecycleRecord, *, environment_name: str, now: datetime, cluster_arn: str | None = None
) -> dict[str, Any]:
    """The start failure's STOPPED event again, for a relaunch whose message was never confirmed sent.

    The completion function finds the item LAUNCH_FAILED for this task with `relaunchPending` and sends the
    routed message (decision 072); a relaunch already sent is a harmless duplicate.
    """
    detail = _rebuilt_detail(
        record,
        environment_name=environment_name,
        now=now,
        stopped_at=now,
        stopped_reason=f"{record.reason or ''} {RELAUNCH_REDRIVE_NOTE}".strip(),
        stop_code=StopCode.TASK_FAILED_TO_START,
        cluster_arn=cluster_arn,
    )
    return _envelope(detail, now=now)


__all__ = [
    "MISSING",
    "MISSING_TASK_NOTE",
    "RECORDED_OUTCOME_CONTAINER",
    "RELAUNCH_REDRIVE_NOTE",
    "REPORT_REDRIVE_NOTE",
    "STOPPED",
    "json_ready",
    "missing_task_stop_reason",
    "stopped_event_for_missing_task",
    "stopped_event_for_pending_relaunch",
    "stopped_event_for_recorded_outcome",
    "stopped_event_for_unknown_outcome",
    "stopped_event_from_task",
    "unknown_outcome_stop_reason",
]
