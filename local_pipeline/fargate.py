"""A fake ECS Fargate endpoint: the ECS JSON protocol on loopback, each task a real local process.

moto's ECS ignores `clientToken`, never fills `failures[]` and emits no task state change events, so the
challenge, completion and sweeper workers point `AWS_ENDPOINT_URL_ECS` here instead. It:

- speaks `X-Amz-Target: AmazonEC2ContainerServiceV20141113.RunTask | DescribeTasks | StopTask | ListTasks`
  (JSON 1.1, errors as `{"__type", "message"}`, which botocore turns into ClientError codes);
- validates RunTask the way ECS does where this pipeline could get it wrong (cluster, task definition,
  FARGATE, awsvpc subnets and security groups, container override names and size, tags, startedBy,
  clientToken), and flags any override variable that carries the scorer's secret (a leak);
- honours `clientToken` (same cluster + token -> the same task, never a second one);
- decides the task and event faults of a `fault_injection.FaultPlan` per challenge or submission (decision
  079): `stopped-event-lost` (the task runs, DescribeTasks shows it STOPPED, its STOPPED event is never put:
  the sweeper's reconciliation must finish it, decision 008), `stopped-event-duplicate` (put twice),
  `stopped-event-delayed` (`delay_seconds` late), `stopped-event-reordered` (RUNNING after STOPPED),
  `task-failed-to-start` (stopCode TaskFailedToStart, no containers), `scorer-overrun` (the scorer runs
  past its timeout), `ecs-forgets-stopped-task` (DescribeTasks answers MISSING `after_seconds` after the
  stop); and, for direct tests, `run-task-failures` (`capacity`) and `run-task-throttling` (`throttle`),
  which the pipeline injects in the workers' botocore clients instead;
- runs the task as a process (the challenge's scorer command) with the container overrides'
  environment, the task definition's environment, and its `secrets` resolved from the emulated SSM, as
  the ECS agent injects them; StopTask sends SIGTERM, then SIGKILL after a grace period;
- emits "ECS Task State Change" events (RUNNING, then STOPPED with exitCode, stopCode, stoppedReason,
  overrides, startedBy, group, timestamps) through the emulated EventBridge `PutEvents`, so the rule's
  own pattern decides what reaches the completion function.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fault_injection import FaultKind, FaultPlan, FaultRule
from local_pipeline.awsenv import RequestCounter, caller_and_service
from mm_contracts.models.phase import RUN_ID_SEPARATOR
from mm_contracts.models.task import TaskEnv, TaskTag

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CAPACITY_REASON = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
FAILED_TO_START_REASON = (
    "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref "
    "example.invalid/mm-scorer:latest: not found"
)
BEHAVIOUR_ENV = "EXAMPLE_SCORER_BEHAVIOUR"
FAIL_TO_START = "fail-to-start"  # handled here: the container never starts

_STARTED_BY = re.compile(r"^[A-Za-z0-9/_-]{1,128}$")
_MAX_OVERRIDE_CHARS = 8192
_MAX_TAGS = 50
_STOP_GRACE_SECONDS = 2.0  # ECS waits stopTimeout (30 s default) between SIGTERM and SIGKILL
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT")


class EcsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


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
    process: subprocess.Popen[bytes] | None = None
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


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


ALL_CHALLENGES = "*"  # the RunningGauge key of every task at once (the environment's total)


class RunningGauge:
    """Tasks not yet STOPPED, per challenge and in total: now, and the most at any one instant.

    Updated at the two moments the number changes (RunTask accepted a task, the task stopped), under the fake's
    lock, so the maxima are exact, not sampled: what the capacity caps must never be exceeded by.
    """

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.most: dict[str, int] = {}

    def started(self, challenge_id: str | None) -> None:
        for key in (challenge_id or "?", ALL_CHALLENGES):
            self.now[key] = self.now.get(key, 0) + 1
            self.most[key] = max(self.most.get(key, 0), self.now[key])

    def stopped(self, challenge_id: str | None) -> None:
        for key in (challenge_id or "?", ALL_CHALLENGES):
            self.now[key] = max(0, self.now.get(key, 0) - 1)


def _override_env(overrides: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for container in overrides.get("containerOverrides") or []:
        for pair in container.get("environment") or []:
            env.setdefault(str(pair.get("name")), str(pair.get("value", "")))
    return env


class FakeFargate:
    """The fake ECS control plane plus its task runner. `start()` serves on `endpoint`."""

    def __init__(
        self,
        *,
        cluster_arn: str,
        task_definitions: list[TaskDefinitionSim],
        emit_event: Callable[[dict[str, Any]], None],
        resolve_secret: Callable[[str], str],
        log_dir: Path,
        counter: RequestCounter | None = None,
        max_running_tasks: int = 8,
        region: str = "us-east-1",
        account: str = "123456789012",
        secret_values: Callable[[], list[str]] | None = None,
    ) -> None:
        self.cluster_arn = cluster_arn
        self.cluster_name = cluster_arn.rsplit("/", 1)[1]
        self.definitions = list(task_definitions)
        self._emit = emit_event
        self._resolve_secret = resolve_secret
        self._secret_values = secret_values or (lambda: [])
        self.log_dir = log_dir
        self.counter = counter or RequestCounter()
        self.region = region
        self.account = account
        self._lock = threading.RLock()
        self.tasks: dict[str, FakeTask] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self.plan = FaultPlan(epoch=time.time())  # the fake's own faults (task and event kinds, direct RunTask)
        self.behaviours: dict[str, str] = {}  # challenge or submission id -> scorer behaviour
        self.run_task_calls = 0
        self.rejected_calls: list[dict[str, str]] = []  # what was answered with an error or failures[]
        self.leaks: list[str] = []  # overrides that carried a secret value (names only)
        self.event_errors: list[str] = []
        self.lost_events: list[str] = []  # task ARNs whose STOPPED event the `lose-stopped-event` fault dropped
        self.running = RunningGauge()  # tasks not STOPPED per challenge: the capacity caps bound these
        self._pending: queue.Queue[FakeTask | None] = queue.Queue()
        self._max_running = max_running_tasks
        self._runners: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.slowest_event_delay = 0.0  # the longest a STOPPED event is held back by a configured fault
        self._events_held = 0  # delayed events not yet put

    def events_in_flight(self) -> int:
        """STOPPED events held back by a delay fault and not yet put (the pipeline is not quiet meanwhile)."""
        with self._lock:
            return self._events_held

    # ------------------------------------------------------------------ configuration
    def add_fault(self, target_id: str | None, kind: str, count: int | None = None) -> None:
        """One rule by name (aliases accepted): on every matching call, or the first `count`."""
        fault = FaultKind.parse(kind)
        if fault.value not in FAULT_KINDS:
            raise ValueError(
                f"fault kind {kind!r} is not decided by the fake Fargate (one of {', '.join(FAULT_KINDS)})"
            )
        mode: dict[str, Any] = {"first_n": count} if count is not None else {"every": True}
        self.add_rule(FaultRule(kind=fault, target=target_id, **mode))

    def add_rule(self, rule: FaultRule) -> None:
        with self._lock:
            self.plan = FaultPlan(rules=[*self.plan.rules, rule], epoch=self.plan.epoch)
            if rule.kind is FaultKind.STOPPED_EVENT_DELAYED:
                self.slowest_event_delay = max(
                    self.slowest_event_delay, rule.param("delay_seconds", DEFAULT_EVENT_DELAY_SECONDS)
                )
            if rule.kind is FaultKind.STOPPED_EVENT_REORDERED:
                self.slowest_event_delay = max(self.slowest_event_delay, DEFAULT_REORDER_DELAY_SECONDS)

    def use_plan(self, plan: FaultPlan) -> None:
        """Take the rules of `plan` this fake decides (and its epoch, for windows); counters start afresh."""
        with self._lock:
            self.plan = FaultPlan(epoch=plan.epoch)
        for rule in plan.rules:
            if rule.kind.value in FAULT_KINDS:
                self.add_rule(rule)

    def set_behaviour(self, target_id: str, behaviour: str) -> None:
        with self._lock:
            self.behaviours[target_id] = behaviour

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeFargate:
        owner = self

        class Handler(_EcsHandler):
            fargate = owner

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-fargate", daemon=True)
        self._thread.start()
        for index in range(self._max_running):
            runner = threading.Thread(target=self._run_loop, name=f"fargate-runner-{index}", daemon=True)
            runner.start()
            self._runners.append(runner)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            running = [t for t in self.tasks.values() if t.process is not None and t.process.poll() is None]
        for task in running:
            if task.process is not None:
                task.process.kill()
        for _ in self._runners:
            self._pending.put(None)
        for runner in self._runners:
            runner.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._server = None

    # ------------------------------------------------------------------ API
    def dispatch(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if action == "RunTask":
            return self.run_task(body)
        if action == "DescribeTasks":
            return self.describe_tasks(body)
        if action == "StopTask":
            return self.stop_task(body)
        if action == "ListTasks":
            return self.list_tasks(body)
        raise EcsError("UnknownOperationException", f"{action} is not supported by the local fake Fargate")

    def _cluster(self, reference: Any) -> str:
        if reference in (None, "default"):
            raise EcsError("ClusterNotFoundException", "Cluster not found.")
        if reference not in (self.cluster_arn, self.cluster_name):
            raise EcsError("ClusterNotFoundException", "Cluster not found.")
        return self.cluster_arn

    def _definition(self, reference: Any) -> TaskDefinitionSim:
        for definition in self.definitions:
            if isinstance(reference, str) and definition.matches(reference):
                return definition
        raise EcsError("ClientException", "Unable to find task definition.")

    def _validate_run(self, body: dict[str, Any], definition: TaskDefinitionSim) -> None:
        if body.get("launchType") != "FARGATE" and not body.get("capacityProviderStrategy"):
            raise EcsError("InvalidParameterException", "launchType FARGATE (or a capacity provider) is required.")
        count = body.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= 10:
            raise EcsError("InvalidParameterException", "count must be between 1 and 10.")
        vpc = (body.get("networkConfiguration") or {}).get("awsvpcConfiguration")
        if not vpc or not vpc.get("subnets"):
            raise EcsError(
                "InvalidParameterException",
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            )
        if len(vpc["subnets"]) > 16 or len(vpc.get("securityGroups") or []) > 5:
            raise EcsError("InvalidParameterException", "too many subnets (16) or security groups (5).")
        if vpc.get("assignPublicIp") not in (None, "ENABLED", "DISABLED"):
            raise EcsError("InvalidParameterException", "assignPublicIp must be ENABLED or DISABLED.")
        overrides = body.get("overrides") or {}
        for container in overrides.get("containerOverrides") or []:
            if container.get("name") != definition.container_name:
                raise EcsError(
                    "InvalidParameterException",
                    f"Override for container named {container.get('name')} is not a container in the TaskDefinition.",
                )
        if len(json.dumps(overrides.get("containerOverrides") or [])) > _MAX_OVERRIDE_CHARS:
            raise EcsError("InvalidParameterException", "Container Overrides length must be at most 8192")
        started_by = body.get("startedBy")
        if started_by is not None and not _STARTED_BY.match(str(started_by)):
            raise EcsError("InvalidParameterException", "startedBy: up to 128 of [A-Za-z0-9-/_].")
        token = body.get("clientToken")
        if token is not None and (
            not isinstance(token, str) or not 1 <= len(token) <= 64 or not all(32 < ord(c) < 127 for c in token)
        ):
            raise EcsError("InvalidParameterException", "clientToken: up to 64 printable ASCII characters.")
        tags = body.get("tags") or []
        if len(tags) > _MAX_TAGS or any(
            not t.get("key") or len(t["key"]) > 128 or len(str(t.get("value", ""))) > 256 for t in tags
        ):
            raise EcsError("InvalidParameterException", "tags: at most 50, key <= 128, value <= 256 characters.")

    def _take_fault(
        self,
        submission_id: str | None,
        challenge_id: str | None,
        kinds: tuple[FaultKind, ...] = RUN_TASK_FAULTS,
        run_key: str | None = None,
    ) -> dict[FaultKind, FaultRule]:
        """The rules of `kinds` that fire for this task (each asked once, in order); a rule may name the run
        (`<submissionId>#<PHASE>`), the submission (every run of it) or the challenge."""
        fired: dict[FaultKind, FaultRule] = {}
        ids = (run_key, submission_id, challenge_id) if run_key else (submission_id, challenge_id)
        for kind in kinds:
            rule = self.plan.fire(kind, ids=ids, now=time.time())
            if rule is not None:
                fired[kind] = rule
        return fired

    def _behaviour(self, submission_id: str | None, challenge_id: str | None, run_key: str | None = None) -> str | None:
        """The scorer behaviour of the run (`<submissionId>#<PHASE>`), else of the submission, else the challenge."""
        with self._lock:
            return (
                self.behaviours.get(run_key or "")
                or self.behaviours.get(submission_id or "")
                or self.behaviours.get(challenge_id or "")
            )

    def run_task(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.run_task_calls += 1
        cluster_arn = self._cluster(body.get("cluster"))
        definition = self._definition(body.get("taskDefinition"))
        self._validate_run(body, definition)
        overrides = body.get("overrides") or {}
        env = _override_env(overrides)
        tags = [{"key": str(t["key"]), "value": str(t.get("value", ""))} for t in body.get("tags") or []]
        tag_map = {t["key"]: t["value"] for t in tags}
        submission_id = env.get(TaskEnv.SUBMISSION_ID.value) or tag_map.get(TaskTag.SUBMISSION_ID.value)
        challenge_id = env.get(TaskEnv.CHALLENGE_ID.value) or tag_map.get(TaskTag.CHALLENGE_ID.value)
        phase = env.get(TaskEnv.PHASE.value) or tag_map.get(TaskTag.PHASE.value)
        run_key = f"{submission_id}{RUN_ID_SEPARATOR}{phase}" if submission_id and phase else None
        for secret in self._secret_values():
            if secret and secret in json.dumps(overrides):
                with self._lock:
                    self.leaks.append(f"RunTask overrides for submission {submission_id} carry a secret value")
        token = body.get("clientToken")
        with self._lock:
            if token is not None and (cluster_arn, token) in self._tokens:
                return {"tasks": [self.task_json(self.tasks[self._tokens[(cluster_arn, token)]])], "failures": []}
            fault = self._take_fault(submission_id, challenge_id, run_key=run_key)
            if FaultKind.RUN_TASK_FAILURES in fault:
                self.rejected_calls.append({"submissionId": submission_id or "", "answer": "failures[] capacity"})
                return {"tasks": [], "failures": [{"arn": cluster_arn, "reason": CAPACITY_REASON}]}
            if FaultKind.RUN_TASK_THROTTLING in fault:
                self.rejected_calls.append({"submissionId": submission_id or "", "answer": "ThrottlingException"})
                raise EcsError("ThrottlingException", "Rate exceeded")
            task_faults = self._take_fault(submission_id, challenge_id, TASK_FAULTS, run_key=run_key)
            task_id = uuid.uuid4().hex
            task = FakeTask(
                arn=f"arn:aws:ecs:{self.region}:{self.account}:task/{self.cluster_name}/{task_id}",
                cluster_arn=cluster_arn,
                definition=definition,
                started_by=str(body.get("startedBy") or ""),
                client_token=token,
                overrides=overrides,
                tags=tags,
                submission_id=submission_id,
                challenge_id=challenge_id,
                behaviour=(
                    "run-long"
                    if FaultKind.SCORER_OVERRUN in task_faults
                    else FAIL_TO_START
                    if FaultKind.TASK_FAILED_TO_START in task_faults
                    else self._behaviour(submission_id, challenge_id, run_key)
                ),
                created_at=time.time(),
                container_arn=f"arn:aws:ecs:{self.region}:{self.account}:container/{self.cluster_name}/{task_id}/"
                f"{uuid.uuid4()}",
                faults=task_faults,
            )
            self.tasks[task.arn] = task
            self.running.started(challenge_id)
            if token is not None:
                self._tokens[(cluster_arn, token)] = task.arn
        self._pending.put(task)
        return {"tasks": [self.task_json(task)], "failures": []}

    def describe_tasks(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body.get("cluster"))
        include_tags = "TAGS" in (body.get("include") or [])
        found, failures = [], []
        for reference in body.get("tasks") or []:
            task = self._find(str(reference))
            if task is None or self._forgotten(task):
                failures.append({"arn": reference, "reason": "MISSING"})
            else:
                found.append(self.task_json(task, include_tags=include_tags))
        return {"tasks": found, "failures": failures}

    def list_tasks(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body.get("cluster"))
        desired = body.get("desiredStatus", "RUNNING")
        started_by = body.get("startedBy")
        family = body.get("family")
        with self._lock:
            arns = [
                t.arn
                for t in self.tasks.values()
                if t.desired_status == desired
                and (started_by is None or t.started_by == started_by)
                and (family is None or t.definition.family == family)
            ]
        return {"taskArns": arns}

    def stop_task(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body.get("cluster"))
        task = self._find(str(body.get("task")))
        if task is None:
            raise EcsError("InvalidParameterException", "The referenced task was not found.")
        reason = str(body.get("reason") or "Task stopped by user")
        with self._lock:
            if task.last_status != "STOPPED" and not task.stop_requested:
                task.stop_requested = True
                task.desired_status = "STOPPED"
                task.stopping_at = time.time()
                task.stop_code = "UserInitiated"
                task.stopped_reason = reason
                task.version += 1
                process = task.process
            else:
                process = None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            threading.Timer(_STOP_GRACE_SECONDS, self._kill_if_running, args=(process,)).start()
        return {"task": self.task_json(task)}

    @staticmethod
    def _kill_if_running(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.kill()

    def _forgotten(self, task: FakeTask) -> bool:
        """ecs-forgets-stopped-task: a stopped task ECS no longer describes (deployed: after about an hour)."""
        rule = task.faults.get(FaultKind.ECS_FORGETS_STOPPED_TASK)
        if rule is None or task.stopped_at is None:
            return False
        return time.time() - task.stopped_at >= rule.param("after_seconds", DEFAULT_ECS_MEMORY_SECONDS)

    def _find(self, reference: str) -> FakeTask | None:
        with self._lock:
            if reference in self.tasks:
                return self.tasks[reference]
            for task in self.tasks.values():
                if task.task_id == reference:
                    return task
        return None

    # ------------------------------------------------------------------ shapes
    def task_json(self, task: FakeTask, *, include_tags: bool = False) -> dict[str, Any]:
        containers: list[dict[str, Any]] = []
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
            "containers": containers if FaultKind.TASK_FAILED_TO_START in task.faults else [container],
            "overrides": task.overrides,
            "createdAt": task.created_at,
            "version": task.version,
            "attachments": [],
        }
        for name, value in (
            ("startedAt", task.started_at),
            ("stoppingAt", task.stopping_at),
            ("stoppedAt", task.stopped_at),
        ):
            if value is not None:
                data[name] = value
        if task.stop_code:
            data["stopCode"] = task.stop_code
        if task.stopped_reason:
            data["stoppedReason"] = task.stopped_reason
        if include_tags:
            data["tags"] = task.tags
        return data

    def event_detail(self, task: FakeTask) -> dict[str, Any]:
        """The `detail` of an "ECS Task State Change" event (ISO timestamps; no tags, as ECS sends it)."""
        data = self.task_json(task)
        for name in ("createdAt", "startedAt", "stoppingAt", "stoppedAt"):
            if name in data:
                data[name] = _iso(data[name])
        data["updatedAt"] = _iso(time.time())
        data["availabilityZone"] = f"{self.region}a"
        if task.last_status == "STOPPED":
            data["executionStoppedAt"] = data.get("stoppedAt")
        return data

    def _emit_state(self, task: FakeTask) -> None:
        """Put the task's state change event, as the task-event faults decided at RunTask say."""
        stopped = task.last_status == "STOPPED"
        if not stopped and FaultKind.STOPPED_EVENT_REORDERED in task.faults:
            with self._lock:
                task.running_event_held = True  # RUNNING goes out after STOPPED
            return
        if stopped and task.lose_stopped_event:
            with self._lock:
                self.lost_events.append(task.arn)
            return
        entry = self._event_entry(task)
        delayed = task.faults.get(FaultKind.STOPPED_EVENT_DELAYED) if stopped else None
        if delayed is not None:
            self._put_later(entry, delayed.param("delay_seconds", DEFAULT_EVENT_DELAY_SECONDS))
        else:
            self._put(task.arn, entry)
        if stopped and FaultKind.STOPPED_EVENT_DUPLICATE in task.faults:
            self._put(task.arn, entry)  # EventBridge delivers at least once: the same event twice
        if stopped and task.running_event_held:
            with self._lock:
                task.running_event_held = False
                task.last_status = "RUNNING"  # a snapshot of the earlier state, sent late
                late = self._event_entry(task)
                task.last_status = "STOPPED"
            self._put_later(late, DEFAULT_REORDER_DELAY_SECONDS)

    def _event_entry(self, task: FakeTask) -> dict[str, Any]:
        return {
            "Source": "aws.ecs",
            "DetailType": "ECS Task State Change",
            "Resources": [task.arn],
            "Detail": json.dumps(self.event_detail(task)),
        }

    def _put(self, task_arn: str, entry: dict[str, Any]) -> None:
        try:
            self._emit(entry)
        except Exception as error:  # recorded: the run then shows the submission as unaccounted
            with self._lock:
                self.event_errors.append(f"{task_arn}: {type(error).__name__}: {error}")

    def _put_later(self, entry: dict[str, Any], delay: float) -> None:
        with self._lock:
            self._events_held += 1

        def put() -> None:
            try:
                if not self._stopping.is_set():
                    self._put(str(entry["Resources"][0]), entry)
            finally:
                with self._lock:
                    self._events_held -= 1

        timer = threading.Timer(delay, put)
        timer.daemon = True
        timer.start()

    # ------------------------------------------------------------------ the task runner
    def _run_loop(self) -> None:
        while True:
            task = self._pending.get()
            if task is None:
                return
            try:
                self._run(task)
            except Exception as error:
                with self._lock:
                    self.event_errors.append(f"{task.arn}: runner {type(error).__name__}: {error}")

    def _task_env(self, task: FakeTask) -> dict[str, str]:
        env = {name: os.environ[name] for name in _KEEP_ENV if name in os.environ}
        env.update(task.definition.environment)
        for name, parameter in task.definition.secrets.items():
            env[name] = self._resolve_secret(parameter)
        env.update(_override_env(task.overrides))
        if task.behaviour:
            env[BEHAVIOUR_ENV] = task.behaviour
        return env

    def _finish(
        self, task: FakeTask, *, exit_code: int | None, stop_code: str, reason: str, container_reason: str | None
    ) -> None:
        with self._lock:
            now = time.time()
            if task.last_status != "STOPPED":
                self.running.stopped(task.challenge_id)
            task.last_status = "STOPPED"
            task.desired_status = "STOPPED"
            task.exit_code = exit_code
            task.container_reason = container_reason
            task.stopping_at = task.stopping_at or now
            task.stopped_at = now
            if not task.stop_requested:
                task.stop_code = stop_code
                task.stopped_reason = reason
            task.version += 1
        self._emit_state(task)

    def _run(self, task: FakeTask) -> None:
        with self._lock:
            stopped_before_start = task.stop_requested
        if stopped_before_start or self._stopping.is_set():
            self._finish(
                task, exit_code=None, stop_code="UserInitiated", reason="stopped before start", container_reason=None
            )
            return
        if task.behaviour == FAIL_TO_START:
            self._finish(
                task,
                exit_code=None,
                stop_code="TaskFailedToStart",
                reason=FAILED_TO_START_REASON,
                container_reason=FAILED_TO_START_REASON.split(":")[0],
            )
            return
        log_path = self.log_dir / f"{task.task_id}.log"
        try:
            env = self._task_env(task)
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    list(task.definition.command), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        except Exception as error:
            self._finish(
                task,
                exit_code=None,
                stop_code="TaskFailedToStart",
                reason=f"CannotStartContainerError: {type(error).__name__}",
                container_reason="CannotStartContainerError",
            )
            return
        with self._lock:
            task.process = process
            task.started_at = time.time()
            task.last_status = "RUNNING"
            task.version += 1
            stop_now = task.stop_requested
        if stop_now:
            process.send_signal(signal.SIGTERM)
            threading.Timer(_STOP_GRACE_SECONDS, self._kill_if_running, args=(process,)).start()
        self._emit_state(task)
        code = process.wait()
        exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as Docker reports it
        self._finish(
            task,
            exit_code=exit_code,
            stop_code="EssentialContainerExited",
            reason="Essential container in task exited",
            container_reason=None,
        )

    # ------------------------------------------------------------------ inspection
    def tasks_for(self, submission_id: str) -> list[FakeTask]:
        with self._lock:
            return [t for t in self.tasks.values() if t.submission_id == submission_id]


class _EcsHandler(BaseHTTPRequestHandler):
    fargate: FakeFargate
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent (the request counter keeps the numbers)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        caller, _ = caller_and_service(self.headers.get("Authorization"))
        self.fargate.counter.add(caller, "ecs")
        target = self.headers.get("X-Amz-Target") or ""
        status, payload = 200, {}
        try:
            if not target.startswith(TARGET_PREFIX):
                raise EcsError("UnknownOperationException", "missing or foreign X-Amz-Target")
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise EcsError("SerializationException", "body is not JSON") from None
            payload = self.fargate.dispatch(target[len(TARGET_PREFIX) :], body)
        except EcsError as error:
            status, payload = error.status, {"__type": error.code, "message": error.message}
        except Exception as error:  # a bug here must look like a 5xx to the caller, not hang it
            status, payload = 500, {"__type": "ServerException", "message": type(error).__name__}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)
