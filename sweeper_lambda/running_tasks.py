"""Pass 2 of a sweep: the pipeline's own running tasks (ListTasks RUNNING, `startedBy` with our prefix; decision 071).

A task its item tracks is fine; a task of an ambiguous launch attempt is adopted by its item (LAUNCHED with this
task), so it neither runs untracked nor gets a twin; anything else older than the settle period is stopped with
`ORPHAN_STOP_REASON_PREFIX`. Any task of ours running longer than its own `MM_TIMEOUT_SECONDS` plus a grace is
stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import (
    FINAL_STATES,
    LAUNCHABLE_STATES,
    LifecycleRecord,
    SubmissionState,
)
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.task import TaskEnv, TaskTag
from mm_contracts.names import ORPHAN_STOP_REASON_PREFIX, started_by_prefix
from sweeper_lambda.launched_runs import stop_reason
from sweeper_lambda.result import SweepResult
from sweeper_lambda.sweep_pass import ECS_BATCH, GONE_ERROR_CODES, MAX_STOP_REASON, SweepPass, chunks
from sweeper_lambda.synthetic_events import STOPPED

# Items that adopt a running task of their ambiguous attempt (each holds its slot already, decision 096).
_ADOPTING_STATES = LAUNCHABLE_STATES | {SubmissionState.ADMITTED}


def orphan_stop_reason(task: OurTask, why: str) -> str:
    reason = (
        f"{ORPHAN_STOP_REASON_PREFIX} no status item tracks this task "
        f"(submission {task.submission_id or 'unknown'}, phase {task.phase or 'unknown'}, "
        f"attempt {task.attempt or 'unknown'}): {why}"
    )
    return reason[:MAX_STOP_REASON]


@dataclass(frozen=True)
class OurTask:
    """A running task this pipeline started, as DescribeTasks shows it (identity from the scorer's overrides).

    Its run is (MM_SUBMISSION_ID, MM_PHASE) from the overrides, the `Phase` tag when the overrides lack it
    (decision 084). A task naming no phase names no run: no item tracks it, so it is never adopted.
    """

    task_arn: str
    cluster_arn: str
    submission_id: str | None
    phase: ScoringPhase | None
    attempt: int | None
    timeout_seconds: int | None
    started_at: float | None  # epoch seconds: startedAt, else createdAt

    @classmethod
    def from_described(cls, task: dict[str, Any], cluster_arn: str) -> OurTask:
        environment: dict[str, str] = {}
        for override in (task.get("overrides") or {}).get("containerOverrides") or []:
            pairs = {str(p.get("name")): str(p.get("value", "")) for p in override.get("environment") or []}
            if TaskEnv.SUBMISSION_ID.value in pairs:  # the scorer container: the one carrying our variables
                environment = pairs
                break
        started = task.get("startedAt") or task.get("createdAt")
        tags = {str(t.get("key")): str(t.get("value", "")) for t in task.get("tags") or []}
        return cls(
            task_arn=str(task["taskArn"]),
            cluster_arn=str(task.get("clusterArn") or cluster_arn),
            submission_id=environment.get(TaskEnv.SUBMISSION_ID.value) or None,
            phase=_phase(environment.get(TaskEnv.PHASE.value) or tags.get(TaskTag.PHASE.value)),
            attempt=_positive_int(environment.get(TaskEnv.LAUNCH_ATTEMPT.value)),
            timeout_seconds=_positive_int(environment.get(TaskEnv.TIMEOUT_SECONDS.value)),
            started_at=started.timestamp() if isinstance(started, datetime) else None,
        )

    @property
    def run_id(self) -> str | None:
        """The status item that should track this task; None when the task does not name both parts."""
        if self.submission_id is None or self.phase is None:
            return None
        return RunKey(self.submission_id, self.phase).run_id


def _phase(value: str | None) -> ScoringPhase | None:
    try:
        return ScoringPhase(value) if value else None
    except ValueError:
        return None


def _positive_int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    number = int(value)
    return number if number > 0 else None


class RunningTasksPass(SweepPass):
    """Pass 2: the pipeline's own running tasks: tracked ones are fine, an ambiguous attempt's task is adopted,
    anything else old enough is stopped; a task far past its own timeout is stopped. `running_run_ids`: the runs of
    the running tasks listed, None when the listing was incomplete (the slot reconciler then judges no slot by it)."""

    running_run_ids: set[str] | None = None

    def run(self, now: float, result: SweepResult) -> None:
        budget = self._settings.max_tasks_listed_per_run
        running: set[str] = set()
        complete = bool(self._settings.ecs_cluster_arns)  # no cluster configured: nothing is known about tasks
        for cluster in self._settings.ecs_cluster_arns:
            if budget <= 0:
                self._logger.warning("task listing budget spent: later clusters wait for the next run")
                complete = False
                break
            try:
                arns = self._list_running(cluster, budget)
            except Exception:
                result.failed.append(f"cluster: {cluster}")
                self._logger.exception("ListTasks failed", extra={"cluster": cluster})
                complete = False
                continue
            budget -= len(arns)
            if budget <= 0:
                complete = False  # the listing may have stopped short of this cluster's last tasks
            for batch in chunks(arns, ECS_BATCH):
                try:
                    running |= self._check_task_batch(cluster, batch, now, result)
                except Exception:
                    complete = False
                    result.failed.append(f"tasks: {cluster}")
                    self._logger.exception("could not check a batch of tasks", extra={"cluster": cluster})
        self.running_run_ids = running if complete else None

    def _list_running(self, cluster: str, budget: int) -> list[str]:
        arns: list[str] = []
        request: dict[str, Any] = {"cluster": cluster, "desiredStatus": "RUNNING", "maxResults": ECS_BATCH}
        while len(arns) < budget:
            response = self._ecs.list_tasks(**request)
            arns.extend(str(arn) for arn in response.get("taskArns") or [])
            token = response.get("nextToken")
            if not token:
                break
            request["nextToken"] = token
        return arns[:budget]

    def _check_task_batch(self, cluster: str, arns: list[str], now: float, result: SweepResult) -> set[str]:
        """Check a batch of listed tasks; returns the run ids of the running tasks of ours among them."""
        # With tags: the `Phase` tag names the run when the overrides do not. A task gone since the listing
        # needs nothing.
        tasks, _failures = self._describe(cluster, arns, include_tags=True)
        prefix = started_by_prefix(self._environment)
        ours = [
            OurTask.from_described(task, cluster)
            for task in tasks.values()
            if str(task.get("startedBy") or "").startswith(prefix) and task.get("lastStatus") != STOPPED
        ]
        result.tasks_seen += len(ours)
        records = self._store.get_many(t.run_id for t in ours if t.run_id)
        for task in ours:
            record = records.get(task.run_id) if task.run_id else None
            self._guarded(
                result,
                task.run_id or task.task_arn,
                partial(self._check_task, task, record, now, result),
            )
        return {task.run_id for task in ours if task.run_id}

    def _check_task(self, task: OurTask, record: LifecycleRecord | None, now: float, result: SweepResult) -> None:
        age = now - task.started_at if task.started_at is not None else 0.0
        overrun = task.timeout_seconds is not None and age > task.timeout_seconds + self._settings.overrun_grace_seconds
        if record is not None and record.state is SubmissionState.LAUNCHED and record.task_arn == task.task_arn:
            if overrun:
                self._stop_overrun(task, record, result)
            return  # tracked: the item's own deadline looks after it
        same_attempt = record is not None and task.attempt is not None and record.launch_attempt == task.attempt
        if record is not None and same_attempt:
            if record.state is SubmissionState.LAUNCHING:
                if record.lease_until is not None and record.lease_until >= now:
                    return  # its delivery holds a live lease and is recording this very task
                self._adopt(task, record, result)
                return
            # An ambiguous attempt whose task runs: a failed or dead-lettered launch, or one admitted again after a
            # requeue (its slot is held in each of these states), records the task it started.
            if record.state in _ADOPTING_STATES and record.launch_ambiguous:
                self._adopt(task, record, result)
                return
            if record.state is SubmissionState.WAITING and record.launch_ambiguous:
                # Requeued after its RunTask was throttled or crashed: it waits for a slot, and its admission's claim
                # keeps the clientToken, so RunTask answers with this very task. Stopping it would lose the run.
                self._logger.info(
                    "task of a waiting run's ambiguous attempt left running for its admission",
                    extra={"run_id": record.run_id, "task_arn": task.task_arn},
                )
                return
        if age < self._settings.orphan_settle_seconds:
            return  # too young to judge: a launch may still be recording it
        self._stop_orphan(task, record, self._why_untracked(task, record), result)

    @staticmethod
    def _why_untracked(task: OurTask, record: LifecycleRecord | None) -> str:
        if task.submission_id is None:
            return "the task names no submission"
        if task.phase is None:
            return "the task names no phase (no run of ours)"
        if record is None:
            return "the run has no status item"
        if record.state in FINAL_STATES:
            return f"the run is already {record.state.value}"
        if record.task_arn and record.task_arn != task.task_arn:
            return f"the item tracks another task ({record.state.value})"
        if task.attempt != record.launch_attempt:
            return f"the item is on attempt {record.launch_attempt} ({record.state.value})"
        return f"the item is {record.state.value} and its attempt was not ambiguous"

    def _adopt(self, task: OurTask, record: LifecycleRecord, result: SweepResult) -> None:
        assert task.attempt is not None
        timeout = task.timeout_seconds or record.timeout_seconds or self._settings.fallback_timeout_seconds
        started_at = task.started_at if task.started_at is not None else self._store.sweep_time()
        adopted = self._store.adopt_task(
            record.run_id,
            observed_state=record.state,
            attempt=task.attempt,
            task_arn=task.task_arn,
            cluster_arn=task.cluster_arn,
            started_at=started_at,
            timeout_seconds=timeout,
            liveness_check_seconds=self._settings.liveness_check_seconds,
        )
        keys = {"run_id": record.run_id, "task_arn": task.task_arn, "attempt": task.attempt}
        if not adopted:
            self._logger.info("item changed before the task could be adopted: next run decides", extra=keys)
            return
        result.adopted += 1
        self._metrics.count(Metric.ORPHAN_TASKS_ADOPTED)
        self._logger.warning(
            "running task of an unconfirmed launch adopted by its item", extra={**keys, "was": record.state.value}
        )

    def _stop_task(self, task: OurTask, reason: str) -> str | None:
        """StopTask; the error code when ECS no longer has the task (nothing left to stop)."""
        try:
            self._ecs.stop_task(cluster=task.cluster_arn, task=task.task_arn, reason=reason)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code not in GONE_ERROR_CODES:
                raise
            return code
        return None

    def _stop_orphan(self, task: OurTask, record: LifecycleRecord | None, why: str, result: SweepResult) -> None:
        reason = orphan_stop_reason(task, why)
        keys = {"run_id": task.run_id, "task_arn": task.task_arn, "attempt": task.attempt}
        gone = self._stop_task(task, reason)
        if gone:
            self._logger.info("orphan task gone before it could be stopped", extra={**keys, "error_code": gone})
            return
        result.orphans_stopped += 1
        self._metrics.count(Metric.ORPHAN_TASKS_STOPPED)
        self._logger.warning("stopped a task of ours that no item tracks", extra={**keys, "why": why})
        if record is not None:
            self._store.mark_orphan_stopped(record.run_id, detail=f"stopped task {task.task_arn}: {reason}")

    def _stop_overrun(self, task: OurTask, record: LifecycleRecord, result: SweepResult) -> None:
        """A tracked task far past its own timeout (its deadline path failed or gave up): stop it for its timeout."""
        reason = stop_reason(record)
        if self._stop_task(task, reason):
            return
        result.stopped += 1
        self._metrics.count(Metric.TASKS_STOPPED_FOR_TIMEOUT)
        self._logger.warning(
            "task ran past its timeout and grace: stopped by the task scan",
            extra={"run_id": record.run_id, "task_arn": task.task_arn},
        )
        if record.stop_requested_at is None:
            self._store.mark_stop_requested(
                record.run_id,
                task_arn=task.task_arn,
                reason=f"{reason} (found by the task scan)",
                grace_seconds=self._settings.reconcile_grace_seconds,
            )
