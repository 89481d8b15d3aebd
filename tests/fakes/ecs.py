"""A faithful fake of the ECS calls the pipeline makes, behind a real boto3 client (decision 077).

Documented behaviour it keeps (moto keeps none of it): RunTask `clientToken` idempotency per cluster for 24 h
(the same token and parameters return the same task; other parameters answer `ConflictException` naming the
task in `resourceIds`), `failures[]`, `count` <= 10, `startedBy` pattern, overrides kept; the task lifecycle
PROVISIONING -> RUNNING -> STOPPED on the virtual clock, with exit codes from the scenario; TaskFailedToStart
with an empty `containers` list; StopTask (UserInitiated, the caller's reason); DescribeTasks answering
`MISSING` once a stopped task is forgotten (about an hour after it stopped); ListTasks by cluster,
startedBy and desiredStatus, with paging.

`fake_ecs_client(fake)` is a real botocore client (parameter validation, modeled exceptions, event hooks, so
fault_injection installs on it as on any client) whose calls are answered in `before-call` by this fake.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from mm_contracts.models.task import TaskEnv, TaskTag
from tests.fakes import boto_session
from tests.fakes.clock import VirtualClock

REGION = "us-east-1"
ACCOUNT = "123456789012"
TOKEN_VALIDITY_SECONDS = 24 * 3600
FORGET_STOPPED_AFTER_SECONDS = 3600
PROVISIONING_SECONDS = 20.0
STOP_SECONDS = 5.0  # SIGTERM to STOPPED
ALL = "*"  # running_now / running_most key of every task
_STARTED_BY = re.compile(r"^[A-Za-z0-9/_-]{1,128}$")


@dataclass(frozen=True)
class TaskScript:
    """How one task behaves. `run_seconds` None: it runs until stopped."""

    run_seconds: float | None = 60.0
    exit_code: int = 0
    fail_to_start: bool = False
    start_failure_reason: str = "CannotPullContainerError: pull image manifest has been retried 1 time(s)"
    sidecar: str | None = None  # a second container (e.g. a log router) that exits 0 first
    forget_after: float = FORGET_STOPPED_AFTER_SECONDS


@dataclass
class FakeTask:
    arn: str
    cluster_arn: str
    task_definition_arn: str
    started_by: str
    overrides: dict[str, Any]
    tags: list[dict[str, str]]
    client_token: str | None
    created_at: float
    script: TaskScript
    container_names: list[str]
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_codes: dict[str, int] = field(default_factory=dict)
    ran_to_completion: bool = False  # the scorer exited by itself (not stopped, not failed to start)
    forgotten_at: float | None = None

    @property
    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for override in self.overrides.get("containerOverrides") or []:
            for variable in override.get("environment") or []:
                env[str(variable.get("name"))] = str(variable.get("value"))
        return env

    @property
    def submission_id(self) -> str:
        return self.environment.get(TaskEnv.SUBMISSION_ID.value, "")

    @property
    def phase(self) -> str:
        """The run's phase (MM_PHASE, the `Phase` tag when the overrides lack it); "" when the task names none."""
        tags = {str(tag.get("key")): str(tag.get("value")) for tag in self.tags}
        return self.environment.get(TaskEnv.PHASE.value) or tags.get(TaskTag.PHASE.value, "")


class EcsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.extra = code, message, status, extra


def _dt(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else None


class FakeEcs:
    def __init__(
        self,
        clock: VirtualClock,
        schedule: Callable[[float, Callable[[], None], str], None],
        *,
        script_for: Callable[[dict[str, str]], TaskScript] | None = None,
        on_stopped: Callable[[FakeTask], None] | None = None,
        container_names: tuple[str, ...] = ("scorer",),
    ) -> None:
        self.clock = clock
        self._schedule = schedule  # (at, action, label)
        self.script_for = script_for or (lambda _env: TaskScript())
        self.on_stopped = on_stopped or (lambda _task: None)
        self.container_names = container_names
        self.tasks: dict[str, FakeTask] = {}
        # Tasks not STOPPED, per challenge (MM_CHALLENGE_ID) and in total (ALL): now and the most at any instant,
        # updated at each start and stop, so the maxima are exact (what capacity caps bound).
        self.running_now: dict[str, int] = {}
        self.running_most: dict[str, int] = {}
        self.running_changes: list[tuple[float, str, int]] = []  # (at, challenge id, running after the change)
        self._tokens: dict[tuple[str, str], tuple[str, str, float]] = {}  # (cluster, token) -> (arn, fingerprint, at)
        self.run_task_calls: list[dict[str, Any]] = []

    # ---- helpers
    @staticmethod
    def cluster_arn(cluster: str) -> str:
        return cluster if cluster.startswith("arn:") else f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"

    def tasks_of(self, submission_id: str, phase: str | None = None) -> list[FakeTask]:
        """The tasks of a submission; with `phase`, of that one run (submission, phase)."""
        return [
            t
            for t in self.tasks.values()
            if t.submission_id == submission_id and (phase is None or t.phase == str(phase))
        ]

    def running(self) -> list[FakeTask]:
        return [t for t in self.tasks.values() if t.last_status != "STOPPED"]

    def _count_running(self, task: FakeTask, delta: int) -> None:
        for key in (task.environment.get(TaskEnv.CHALLENGE_ID.value, "?"), ALL):
            self.running_now[key] = self.running_now.get(key, 0) + delta
            self.running_most[key] = max(self.running_most.get(key, 0), self.running_now[key])
            self.running_changes.append((self.clock(), key, self.running_now[key]))

    def _known(self, task: FakeTask) -> bool:
        return task.forgotten_at is None or task.forgotten_at > self.clock()

    def forget_now(self, task: FakeTask) -> None:
        task.forgotten_at = self.clock()

    # ---- API
    def run_task(self, params: dict[str, Any]) -> dict[str, Any]:
        self.run_task_calls.append(copy.deepcopy(params))
        now = self.clock()
        count = int(params.get("count", 1))
        if count > 10:
            raise EcsError("InvalidParameterException", "count must be between 1 and 10")
        started_by = str(params.get("startedBy", ""))
        if started_by and not _STARTED_BY.match(started_by):
            raise EcsError("InvalidParameterException", "startedBy has invalid characters")
        cluster_arn = self.cluster_arn(str(params.get("cluster", "default")))
        token = params.get("clientToken")
        fingerprint = json.dumps({k: v for k, v in params.items() if k != "clientToken"}, sort_keys=True, default=str)
        if token:
            if len(str(token)) > 64:
                raise EcsError("InvalidParameterException", "clientToken is longer than 64 characters")
            held = self._tokens.get((cluster_arn, str(token)))
            if held is not None and now - held[2] < TOKEN_VALIDITY_SECONDS:
                arn, held_fingerprint, _ = held
                if held_fingerprint != fingerprint:
                    raise EcsError(
                        "ConflictException",
                        "The specified client token has already been used with different parameters",
                        resourceIds=[arn],
                    )
                return {"tasks": [self.describe(self.tasks[arn])], "failures": []}
        env: dict[str, str] = {}
        for override in (params.get("overrides") or {}).get("containerOverrides") or []:
            for variable in override.get("environment") or []:
                env[str(variable.get("name"))] = str(variable.get("value"))
        script = self.script_for(env)
        definition = str(params.get("taskDefinition"))
        task = FakeTask(
            arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster_arn.rpartition('/')[2]}/{uuid.uuid4().hex}",
            cluster_arn=cluster_arn,
            task_definition_arn=definition
            if definition.startswith("arn:")
            else f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{definition}",
            started_by=started_by,
            overrides=copy.deepcopy(params.get("overrides") or {}),
            tags=copy.deepcopy(params.get("tags") or []),
            client_token=str(token) if token else None,
            created_at=now,
            script=script,
            container_names=[*([script.sidecar] if script.sidecar else []), *self.container_names],
        )
        self.tasks[task.arn] = task
        self._count_running(task, +1)
        if token:
            self._tokens[(cluster_arn, str(token))] = (task.arn, fingerprint, now)
        self._schedule(now + PROVISIONING_SECONDS, lambda: self._start(task), f"ecs start {task.arn[-6:]}")
        return {"tasks": [self.describe(task)], "failures": []}

    def _start(self, task: FakeTask) -> None:
        if task.last_status == "STOPPED":
            return
        if task.script.fail_to_start:
            self._stop(task, stop_code="TaskFailedToStart", reason=task.script.start_failure_reason, containers=False)
            return
        if task.desired_status == "STOPPED":
            return
        task.last_status = "RUNNING"
        task.started_at = self.clock()
        if task.script.run_seconds is not None:
            self._schedule(
                self.clock() + task.script.run_seconds, lambda: self._exit(task), f"ecs exit {task.arn[-6:]}"
            )

    def _exit(self, task: FakeTask) -> None:
        if task.last_status == "STOPPED" or task.desired_status == "STOPPED":
            return
        task.ran_to_completion = True
        codes = dict.fromkeys(self.container_names, task.script.exit_code)
        if task.script.sidecar:
            codes[task.script.sidecar] = 0
        self._stop(task, stop_code="EssentialContainerExited", reason="Essential container in task exited", codes=codes)

    def _stop(
        self,
        task: FakeTask,
        *,
        stop_code: str,
        reason: str,
        codes: dict[str, int] | None = None,
        containers: bool = True,
    ) -> None:
        now = self.clock()
        if task.last_status != "STOPPED":
            self._count_running(task, -1)
        task.last_status = task.desired_status = "STOPPED"
        task.stopping_at = task.stopping_at or now
        task.stopped_at = now
        task.stop_code = stop_code
        task.stopped_reason = reason
        task.exit_codes = dict(codes or {})
        if not containers:
            task.container_names = []
        task.forgotten_at = now + task.script.forget_after
        self.on_stopped(task)

    def stop_task(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = str(params.get("task"))
        task = self.tasks.get(arn)
        if task is None or not self._known(task):
            raise EcsError("InvalidParameterException", "The referenced task was not found.")
        if task.desired_status != "STOPPED":
            task.desired_status = "STOPPED"
            task.stopping_at = self.clock()
            reason = str(params.get("reason") or "Task stopped by user")

            def stopped() -> None:
                if task.last_status != "STOPPED":
                    # SIGTERM: the scorer exits 143 (a task stopped during PROVISIONING has no exit codes).
                    codes = dict.fromkeys(task.container_names, 143) if task.started_at is not None else {}
                    self._stop(task, stop_code="UserInitiated", reason=reason, codes=codes)

            self._schedule(self.clock() + STOP_SECONDS, stopped, f"ecs stopped {arn[-6:]}")
        return {"task": self.describe(task)}

    def describe_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        include_tags = "TAGS" in (params.get("include") or [])
        tasks, failures = [], []
        for arn in params.get("tasks") or []:
            task = self.tasks.get(str(arn))
            if task is None or not self._known(task):
                failures.append({"arn": str(arn), "reason": "MISSING"})
            else:
                tasks.append(self.describe(task, include_tags=include_tags))
        return {"tasks": tasks, "failures": failures}

    def list_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        cluster_arn = self.cluster_arn(str(params.get("cluster", "default")))
        desired = str(params.get("desiredStatus") or "RUNNING")
        started_by = params.get("startedBy")
        arns = [
            t.arn
            for t in self.tasks.values()
            if t.cluster_arn == cluster_arn
            and self._known(t)
            and (started_by is None or t.started_by == started_by)
            and (t.desired_status == desired if desired != "PENDING" else t.last_status == "PROVISIONING")
        ]
        start = int(params.get("nextToken") or 0)
        size = int(params.get("maxResults") or 100)
        page = arns[start : start + size]
        response: dict[str, Any] = {"taskArns": page}
        if start + size < len(arns):
            response["nextToken"] = str(start + size)
        return response

    def describe(self, task: FakeTask, *, include_tags: bool = False) -> dict[str, Any]:
        """The task as DescribeTasks shows it now (the shape of an ECS task-state-change event's `detail`)."""
        containers = []
        for name in task.container_names:
            container: dict[str, Any] = {
                "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/{task.arn.rpartition('/')[2]}/{name}",
                "taskArn": task.arn,
                "name": name,
                "lastStatus": "STOPPED" if task.last_status == "STOPPED" else task.last_status,
            }
            if name in task.exit_codes:
                container["exitCode"] = task.exit_codes[name]
            containers.append(container)
        described: dict[str, Any] = {
            "taskArn": task.arn,
            "clusterArn": task.cluster_arn,
            "taskDefinitionArn": task.task_definition_arn,
            "lastStatus": task.last_status,
            "desiredStatus": task.desired_status,
            "launchType": "FARGATE",
            "group": f"family:{task.task_definition_arn.rpartition('/')[2].split(':')[0]}",
            "overrides": copy.deepcopy(task.overrides),
            "containers": containers,
            "createdAt": _dt(task.created_at),
            "version": 1,
        }
        if task.started_by:
            described["startedBy"] = task.started_by
        for key, value in (
            ("startedAt", task.started_at),
            ("stoppingAt", task.stopping_at),
            ("stoppedAt", task.stopped_at),
        ):
            if value is not None:
                described[key] = _dt(value)
        if task.stop_code:
            described["stopCode"] = task.stop_code
        if task.stopped_reason:
            described["stoppedReason"] = task.stopped_reason
        if include_tags:
            described["tags"] = copy.deepcopy(task.tags)
        return described


_OPERATIONS = {
    "RunTask": "run_task",
    "StopTask": "stop_task",
    "DescribeTasks": "describe_tasks",
    "ListTasks": "list_tasks",
}
_PARAMS_KEY = "fake_ecs_params"


def _answer(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {**parsed, "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}}
    return AWSResponse(url="https://ecs.fake/", status_code=status, headers=HTTPHeaders(), raw=None), parsed


def fake_ecs_client(fake: FakeEcs) -> Any:
    """A boto3 ECS client answered by `fake` (no network, no moto)."""
    client = boto_session().client(
        "ecs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS_KEY] = copy.deepcopy(params)

    def answer(model: Any, context: dict[str, Any], **_: Any) -> Any:
        method = _OPERATIONS.get(model.name)
        if method is None:
            return _answer(400, {"Error": {"Code": "UnsupportedOperation", "Message": model.name}})
        try:
            return _answer(200, getattr(fake, method)(context.get(_PARAMS_KEY, {})))
        except EcsError as error:
            return _answer(error.status, {"Error": {"Code": error.code, "Message": error.message}, **error.extra})

    client.meta.events.register("before-parameter-build.ecs", remember, unique_id="fake-ecs-params")
    client.meta.events.register_last("before-call.ecs", answer, unique_id="fake-ecs-answer")
    return client


__all__ = ["FakeEcs", "FakeTask", "TaskScript", "fake_ecs_client"]
