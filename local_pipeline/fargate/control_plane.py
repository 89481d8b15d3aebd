"""The fake ECS control plane: RunTask, DescribeTasks, StopTask, ListTasks over the tasks it holds.

It honours `clientToken` (same cluster + token -> the same task, never a second one), decides the task and event
faults of its `fault_injection.FaultPlan` per run, submission or challenge at RunTask, and flags any override
variable that carries the scorer's secret (a leak). The tasks run in `runner`, their events go out through
`events`, the HTTP side is `endpoint`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fault_injection import FaultKind, FaultPlan, FaultRule
from local_pipeline.awsenv import RequestCounter
from local_pipeline.fargate.endpoint import EcsEndpoint
from local_pipeline.fargate.events import TaskEvents
from local_pipeline.fargate.gauge import RunningGauge
from local_pipeline.fargate.runner import FAIL_TO_START, TaskRunner, terminate
from local_pipeline.fargate.tasks import (
    DEFAULT_ECS_MEMORY_SECONDS,
    DEFAULT_EVENT_DELAY_SECONDS,
    DEFAULT_REORDER_DELAY_SECONDS,
    FAULT_KINDS,
    RUN_TASK_FAULTS,
    TASK_FAULTS,
    FakeTask,
    TaskDefinitionSim,
    override_env,
    task_json,
)
from local_pipeline.fargate.validation import EcsError, validate_run_task
from mm_contracts.models.phase import RUN_ID_SEPARATOR
from mm_contracts.models.task import TaskEnv, TaskTag

CAPACITY_REASON = "Capacity is unavailable at this time. Please try again later or in a different availability zone"


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
        fork_tasks: bool = True,
    ) -> None:
        self.cluster_arn = cluster_arn
        self.cluster_name = cluster_arn.rsplit("/", 1)[1]
        self.definitions = list(task_definitions)
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
        self.running = RunningGauge()  # tasks not STOPPED per challenge: the capacity caps bound these
        self.slowest_event_delay = 0.0  # the longest a STOPPED event is held back by a configured fault
        self.events = TaskEvents(emit_event, self._lock, region)
        self.runner = TaskRunner(
            lock=self._lock,
            events=self.events,
            gauge=self.running,
            resolve_secret=resolve_secret,
            log_dir=log_dir,
            max_running=max_running_tasks,
            fork_tasks=fork_tasks,
        )
        self._endpoint = EcsEndpoint(self.dispatch, self.counter)

    @property
    def event_errors(self) -> list[str]:
        return self.events.event_errors

    @property
    def lost_events(self) -> list[str]:
        """Task ARNs whose STOPPED event the `lose-stopped-event` fault dropped."""
        return self.events.lost_events

    @property
    def task_cpu_seconds(self) -> float:
        """CPU seconds the scorer task processes used (the forked ones, as they exited)."""
        return self.runner.task_cpu_seconds

    def events_in_flight(self) -> int:
        """STOPPED events held back by a delay fault and not yet put (the pipeline is not quiet meanwhile)."""
        with self._lock:
            return self.events.held

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
        return self._endpoint.url

    def start(self) -> FakeFargate:
        self._endpoint.start()
        self.runner.start(definition.command for definition in self.definitions)
        return self

    def stop(self) -> None:
        self.events.stopping.set()
        with self._lock:
            tasks = list(self.tasks.values())
        self.runner.stop(tasks)
        self._endpoint.stop()

    # ------------------------------------------------------------------ API
    def dispatch(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        actions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "RunTask": self.run_task,
            "DescribeTasks": self.describe_tasks,
            "StopTask": self.stop_task,
            "ListTasks": self.list_tasks,
        }
        if action not in actions:
            raise EcsError("UnknownOperationException", f"{action} is not supported by the local fake Fargate")
        return actions[action](body)

    def _cluster(self, reference: Any) -> str:
        if reference in (None, "default") or reference not in (self.cluster_arn, self.cluster_name):
            raise EcsError("ClusterNotFoundException", "Cluster not found.")
        return self.cluster_arn

    def _definition(self, reference: Any) -> TaskDefinitionSim:
        for definition in self.definitions:
            if isinstance(reference, str) and definition.matches(reference):
                return definition
        raise EcsError("ClientException", "Unable to find task definition.")

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

    def _task_behaviour(
        self,
        task_faults: dict[FaultKind, FaultRule],
        submission_id: str | None,
        challenge_id: str | None,
        run_key: str | None,
    ) -> str | None:
        if FaultKind.SCORER_OVERRUN in task_faults:
            return "run-long"
        if FaultKind.TASK_FAILED_TO_START in task_faults:
            return FAIL_TO_START
        return self._behaviour(submission_id, challenge_id, run_key)

    def _check_secrets(self, overrides: dict[str, Any], submission_id: str | None) -> None:
        for secret in self._secret_values():
            if secret and secret in json.dumps(overrides):
                with self._lock:
                    self.leaks.append(f"RunTask overrides for submission {submission_id} carry a secret value")

    def _run_task_fault(
        self, cluster_arn: str, fault: dict[FaultKind, FaultRule], submission_id: str | None
    ) -> dict[str, Any] | None:
        """The answer of a RunTask fault that fired (failures[] capacity, or a ThrottlingException), else None."""
        if FaultKind.RUN_TASK_FAILURES in fault:
            self.rejected_calls.append({"submissionId": submission_id or "", "answer": "failures[] capacity"})
            return {"tasks": [], "failures": [{"arn": cluster_arn, "reason": CAPACITY_REASON}]}
        if FaultKind.RUN_TASK_THROTTLING in fault:
            self.rejected_calls.append({"submissionId": submission_id or "", "answer": "ThrottlingException"})
            raise EcsError("ThrottlingException", "Rate exceeded")
        return None

    def run_task(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.run_task_calls += 1
        cluster_arn = self._cluster(body.get("cluster"))
        definition = self._definition(body.get("taskDefinition"))
        validate_run_task(body, definition)
        overrides = body.get("overrides") or {}
        env = override_env(overrides)
        tags = [{"key": str(t["key"]), "value": str(t.get("value", ""))} for t in body.get("tags") or []]
        tag_map = {t["key"]: t["value"] for t in tags}
        submission_id = env.get(TaskEnv.SUBMISSION_ID.value) or tag_map.get(TaskTag.SUBMISSION_ID.value)
        challenge_id = env.get(TaskEnv.CHALLENGE_ID.value) or tag_map.get(TaskTag.CHALLENGE_ID.value)
        phase = env.get(TaskEnv.PHASE.value) or tag_map.get(TaskTag.PHASE.value)
        run_key = f"{submission_id}{RUN_ID_SEPARATOR}{phase}" if submission_id and phase else None
        self._check_secrets(overrides, submission_id)
        token = body.get("clientToken")
        with self._lock:
            if token is not None and (cluster_arn, token) in self._tokens:
                return {"tasks": [task_json(self.tasks[self._tokens[(cluster_arn, token)]])], "failures": []}
            answer = self._run_task_fault(
                cluster_arn, self._take_fault(submission_id, challenge_id, run_key=run_key), submission_id
            )
            if answer is not None:
                return answer
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
                behaviour=self._task_behaviour(task_faults, submission_id, challenge_id, run_key),
                created_at=time.time(),
                container_arn=f"arn:aws:ecs:{self.region}:{self.account}:container/{self.cluster_name}/{task_id}/"
                f"{uuid.uuid4()}",
                faults=task_faults,
            )
            self.tasks[task.arn] = task
            self.running.started(challenge_id)
            if token is not None:
                self._tokens[(cluster_arn, token)] = task.arn
        self.runner.submit(task)
        return {"tasks": [task_json(task)], "failures": []}

    def describe_tasks(self, body: dict[str, Any]) -> dict[str, Any]:
        self._cluster(body.get("cluster"))
        include_tags = "TAGS" in (body.get("include") or [])
        found, failures = [], []
        for reference in body.get("tasks") or []:
            task = self._find(str(reference))
            if task is None or self._forgotten(task):
                failures.append({"arn": reference, "reason": "MISSING"})
            else:
                found.append(task_json(task, include_tags=include_tags))
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
            process = task.process if task.request_stop(reason, time.time()) else None
        if process is not None and process.poll() is None:
            terminate(process)
        return {"task": task_json(task)}

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

    # ------------------------------------------------------------------ inspection
    def task_json(self, task: FakeTask, *, include_tags: bool = False) -> dict[str, Any]:
        return task_json(task, include_tags=include_tags)

    def tasks_for(self, submission_id: str) -> list[FakeTask]:
        with self._lock:
            return [t for t in self.tasks.values() if t.submission_id == submission_id]
