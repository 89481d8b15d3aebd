"""Task definitions and tasks: what the fake ECS holds, each task's state machine, and the shapes ECS answers
and emits (DescribeTasks' task, the "ECS Task State Change" event's detail).

A task goes PROVISIONING -> RUNNING -> STOPPED (or straight to STOPPED when it never starts); a StopTask sets
desiredStatus STOPPED and the UserInitiated stop code, which the final stop keeps. Every change bumps `version`.
Callers hold the fake's lock around the transitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from fault_injection import FaultKind, FaultRule

LOSE_STOPPED_EVENT = "lose-stopped-event"  # the older name of FaultKind.STOPPED_EVENT_LOST (an alias)
# Answered by the fake's own RunTask (direct tests; in the pipeline these fire in the workers' botocore adapter).
RUN_TASK_FAULTS = (FaultKind.RUN_TASK_FAILURES, FaultKind.RUN_TASK_THROTTLING)
# What the fake ECS control plane itself decides (FaultLayer.EVENT kinds that concern tasks and their events).
TASK_FAULTS = (
    FaultKind.STOPPED_EVENT_DUPLICATE,
    FaultKind.STOPPED_EVENT_REORDERED,
    FaultKind.STOPPED_EVENT_DELAYED,
    FaultKind.STOPPED_EVENT_LOST,
    FaultKind.TASK_FAILED_TO_START,
    FaultKind.SCORER_OVERRUN,
    FaultKind.ECS_FORGETS_STOPPED_TASK,
)
FAULT_KINDS = tuple(k.value for k in (*RUN_TASK_FAULTS, *TASK_FAULTS))
# Local defaults where a rule gives no parameter (time compressed as in decision 064).
DEFAULT_EVENT_DELAY_SECONDS = 5.0  # stopped-event-delayed
DEFAULT_REORDER_DELAY_SECONDS = 1.0  # stopped-event-reordered: RUNNING put this long after STOPPED
DEFAULT_ECS_MEMORY_SECONDS = 2.0  # ecs-forgets-stopped-task (deployed: about an hour)
DEFAULT_OVERRUN_SECONDS = 600.0  # scorer-overrun: far past any local timeout


class TaskProcess(Protocol):
    """A task's process: a `subprocess.Popen`, or a `zygote.ForkedProcess` (the same calls)."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class TaskDefinitionSim:
    """The imported scorer task definition as ECS would hold it (created outside the stacks)."""

    arn: str
    container_name: str
    command: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # variable -> SSM parameter name (valueFrom)
    cpu: str = "1024"
    memory: str = "2048"

    @property
    def family(self) -> str:
        return self.arn.rsplit("/", 1)[1].rsplit(":", 1)[0]

    def matches(self, reference: str) -> bool:
        return reference in (self.arn, self.family, self.arn.rsplit("/", 1)[1])


@dataclass
class FakeTask:
    arn: str
    cluster_arn: str
    definition: TaskDefinitionSim
    started_by: str
    client_token: str | None
    overrides: dict[str, Any]
    tags: list[dict[str, str]]
    submission_id: str | None
    challenge_id: str | None
    behaviour: str | None
    created_at: float
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None
    version: int = 1
    process: TaskProcess | None = None
    stop_requested: bool = False
    container_arn: str = ""
    # Faults decided at RunTask (FaultKind -> the rule that fired), applied as the task runs and stops.
    faults: dict[FaultKind, FaultRule] = field(default_factory=dict)
    running_event_held: bool = False  # stopped-event-reordered: RUNNING goes out after STOPPED

    @property
    def lose_stopped_event(self) -> bool:
        return FaultKind.STOPPED_EVENT_LOST in self.faults

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    # ------------------------------------------------------------------ transitions (under the fake's lock)
    def request_stop(self, reason: str, now: float) -> bool:
        """StopTask: desired STOPPED, stop code UserInitiated; False when already stopped or stopping."""
        if self.last_status == "STOPPED" or self.stop_requested:
            return False
        self.stop_requested = True
        self.desired_status = "STOPPED"
        self.stopping_at = now
        self.stop_code = "UserInitiated"
        self.stopped_reason = reason
        self.version += 1
        return True

    def mark_running(self, process: TaskProcess, now: float) -> bool:
        """The container started; True when a stop was requested meanwhile (signal it now)."""
        self.process = process
        self.started_at = now
        self.last_status = "RUNNING"
        self.version += 1
        return self.stop_requested

    def mark_stopped(
        self, *, exit_code: int | None, stop_code: str, reason: str, container_reason: str | None, now: float
    ) -> bool:
        """STOPPED (a requested stop keeps its UserInitiated code and reason); True when it was not STOPPED yet."""
        was_running = self.last_status != "STOPPED"
        self.last_status = "STOPPED"
        self.desired_status = "STOPPED"
        self.exit_code = exit_code
        self.container_reason = container_reason
        self.stopping_at = self.stopping_at or now
        self.stopped_at = now
        if not self.stop_requested:
            self.stop_code = stop_code
            self.stopped_reason = reason
        self.version += 1
        return was_running


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def override_env(overrides: dict[str, Any]) -> dict[str, str]:
    """The container overrides' environment (the first value of a name wins)."""
    env: dict[str, str] = {}
    for container in overrides.get("containerOverrides") or []:
        for pair in container.get("environment") or []:
            env.setdefault(str(pair.get("name")), str(pair.get("value", "")))
    return env


def _container_json(task: FakeTask) -> dict[str, Any]:
    container: dict[str, Any] = {
        "containerArn": task.container_arn,
        "taskArn": task.arn,
        "name": task.definition.container_name,
        "lastStatus": task.last_status,
        "networkInterfaces": [],
    }
    if task.exit_code is not None:
        container["exitCode"] = task.exit_code
    if task.container_reason:
        container["reason"] = task.container_reason
    return container


def task_json(task: FakeTask, *, include_tags: bool = False) -> dict[str, Any]:
    """The task as DescribeTasks (and RunTask, StopTask) answer it (epoch timestamps)."""
    data: dict[str, Any] = {
        "taskArn": task.arn,
        "clusterArn": task.cluster_arn,
        "taskDefinitionArn": task.definition.arn,
        "group": f"family:{task.definition.family}",
        "startedBy": task.started_by,
        "lastStatus": task.last_status,
        "desiredStatus": task.desired_status,
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "cpu": task.overrides.get("cpu") or task.definition.cpu,
        "memory": task.overrides.get("memory") or task.definition.memory,
        # task-failed-to-start: ECS may describe such a task with no containers at all
        "containers": [] if FaultKind.TASK_FAILED_TO_START in task.faults else [_container_json(task)],
        "overrides": task.overrides,
        "createdAt": task.created_at,
        "version": task.version,
        "attachments": [],
    }
    times = (("startedAt", task.started_at), ("stoppingAt", task.stopping_at), ("stoppedAt", task.stopped_at))
    data.update({name: value for name, value in times if value is not None})
    if task.stop_code:
        data["stopCode"] = task.stop_code
    if task.stopped_reason:
        data["stoppedReason"] = task.stopped_reason
    if include_tags:
        data["tags"] = task.tags
    return data


def event_detail(task: FakeTask, region: str, now: float) -> dict[str, Any]:
    """The `detail` of an "ECS Task State Change" event (ISO timestamps; no tags, as ECS sends it)."""
    data = task_json(task)
    for name in ("createdAt", "startedAt", "stoppingAt", "stoppedAt"):
        if name in data:
            data[name] = iso(data[name])
    data["updatedAt"] = iso(now)
    data["availabilityZone"] = f"{region}a"
    if task.last_status == "STOPPED":
        data["executionStoppedAt"] = data.get("stoppedAt")
    return data
