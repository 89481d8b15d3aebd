"""Timeout sweeper logic: every scheduled run looks at what may need the pipeline's attention, in four passes.

1. **Due LAUNCHED items** (GSI `byStateDeadline`, `deadlineAt` passed: the task's timeout, or the next liveness
   check, whichever is first; decision 073). Describe first (DescribeTasks, up to 100 tasks a call), then act:
   - STOPPED in ECS longer ago than the event grace: its STOPPED event was lost. The completion function is
     invoked asynchronously with a synthetic event built from the described task (real exit codes), at once,
     while ECS still describes it (it forgets a stopped task after about an hour). Stopped more recently: look
     again when the grace is over.
   - still running and past its timeout: `ecs:StopTask` with `TIMEOUT_STOP_REASON_PREFIX`, `mark_stop_requested`
     (the deadline moves out by the reconcile grace). Still running after an earlier stop: StopTask again.
     Still running before its timeout: `deadlineAt = min(timeoutAt, now + liveness interval)`. Still running
     with `cancelRequested` (superseded, and the challenge processor's StopTask failed; decision 095): StopTask
     with the superseded reason, so its STOPPED event records CANCELLED (looked at by its next liveness check).
   - unknown to ECS (MISSING): a synthetic TIMED_OUT event if the pipeline stopped it for its timeout,
     otherwise a synthetic "outcome unknown" event (`OUTCOME_UNKNOWN_STOP_REASON_PREFIX`): never an invented
     timeout.
   Each synthetic event counts a reconcile attempt; after `max_reconcile_attempts` the sweeper gives up (ERROR
   log, `ReconcileGaveUp`, off the index for an operator; decision 008).
2. **The pipeline's own running tasks** (ListTasks RUNNING in the environment's clusters, `startedBy` with our
   prefix; decision 071): a task its item tracks is fine; a task of an ambiguous launch attempt is adopted by its
   item (LAUNCHED with this task), so it neither runs untracked nor gets a twin; anything else older than the
   settle period is stopped with `ORPHAN_STOP_REASON_PREFIX`. Any task of ours running longer than its own
   `MM_TIMEOUT_SECONDS` plus a grace is stopped.
3. **Stuck launches** (decision 080): LAUNCHING whose lease expired longer ago than SQS can redeliver the
   message, and LAUNCH_FAILED past its message lifetime, become DEAD_LETTERED with a reason that tells an
   operator to redrive the message. A v6 LAUNCH_FAILED whose failure was definite also gets its terminal report
   due, and the report-due event is sent at once (decision 086).
4. **Unfinished reports** (decision 080): a final item (or a v6 DEAD_LETTERED one, decision 086) whose report is
   PENDING, or REPORTING with an expired lease, past its deadline: the completion function is invoked again with
   an event that identifies the task (it reports the recorded outcome), or, for a run without a task of its own
   (a skipped or dead-lettered v6 run), the report-due event naming the run; a bounded number of times
   (`ReportRetryGaveUp`).

Then, with capacity (decision 096), the safety net that keeps every waiting run moving when each trigger was lost:
5. **Slots**: the slot reconciler compares the slots held with the runs and with the running tasks pass 2 listed
   (only when that listing was complete), and corrects drift (SlotsReconciled).
6. **ADMITTED runs past their deadline**: their message never led to a claim (lost send, lost message): the
   deadline is pushed, then the message is sent to the challenge queue again (a duplicate is harmless: the launch
   claim is exactly-once). After `MAX_ADMISSION_RESENDS` re-sends the message is presumed unprocessable (its
   queue gone, its config unusable): the run becomes DEAD_LETTERED with its slot freed (else it would hold it
   forever), for an operator to redrive; a v6 run's terminal report is handed on as pass 3 does.
7. **Dispatch**, environment-wide: waiting runs are admitted into whatever room there is.
8. **Gauges**: RunningTasks, WaitingRuns, OldestWaitSeconds and CapacityFull, per challenge and for the environment.
A definite dead-letter by pass 3 (no task can exist) releases the run's slot.

Everything is by run id (`<submissionId>#<PHASE>`, decision 084): a task's run is (MM_SUBMISSION_ID, MM_PHASE).

A duplicate synthetic event (the real one arrived after all) is harmless: the completion handler records an
outcome once and reports once. One failure never stops the rest: the item stays due for the next run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from completion_lambda.capacity import SweeperCapacity, capacity_gauges, entry_of_admitted
from completion_lambda.observability import MetricsSink
from completion_lambda.outcome import SUPERSEDED_REASON
from mm_adapters.status_store import StatusStore
from mm_capacity.config import CapacityConfigError
from mm_capacity.dispatcher import CONFIG_BLOCK, Admitted
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.lifecycle import (
    FINAL_STATES,
    LAUNCHABLE_STATES,
    LifecycleRecord,
    ReportStatus,
    SubmissionState,
)
from mm_contracts.models.phase import Platform, RunKey, ScoringPhase
from mm_contracts.models.report_due import report_due_event
from mm_contracts.models.task import TaskEnv, TaskTag
from mm_contracts.names import ORPHAN_STOP_REASON_PREFIX, TIMEOUT_STOP_REASON_PREFIX, started_by_prefix
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda.reconcile import (
    MISSING,
    STOPPED,
    stopped_event_for_missing_task,
    stopped_event_for_pending_relaunch,
    stopped_event_for_recorded_outcome,
    stopped_event_for_unknown_outcome,
    stopped_event_from_task,
)

MAX_STOP_REASON = 255  # StopTask `reason` limit
ECS_BATCH = 100  # DescribeTasks takes at most 100 tasks; ListTasks returns at most 100 a page
# StopTask answers these when the task is unknown to ECS (already stopped and gone, or never there).
_GONE_ERROR_CODES = frozenset({"InvalidParameterException", "ResourceNotFoundException", "ClusterNotFoundException"})
_ASYNC_ACCEPTED = 202
# Items that adopt a running task of their ambiguous attempt (each holds its slot already, decision 096).
_ADOPTING_STATES = LAUNCHABLE_STATES | {SubmissionState.ADMITTED}


# Re-sends of an ADMITTED run's message before the sweeper gives up on it (dead-letters it, freeing its slot):
# three sends over ~15 minutes that a healthy challenge processor would each have claimed within seconds.
MAX_ADMISSION_RESENDS = 3
ADMISSION_DEAD_LETTER_REASON = (
    f"admitted but never launched: its message was not processed after {MAX_ADMISSION_RESENDS} sends; "
    "redrive it from the challenge DLQ"
)
# The StuckLaunchesDeadLettered reason of such a run (the stuck launches of pass 3 count without one).
ADMISSION_NEVER_CLAIMED = "admission_never_claimed"


def _timeout_at(record: LifecycleRecord) -> int | None:
    # Items launched before timeoutAt existed carry their timeout in deadlineAt.
    return record.timeout_at if record.timeout_at is not None else record.deadline_at


def stop_reason(record: LifecycleRecord) -> str:
    timeout_at = _timeout_at(record)
    deadline = datetime.fromtimestamp(timeout_at, tz=UTC).isoformat() if timeout_at is not None else "unknown"
    reason = f"{TIMEOUT_STOP_REASON_PREFIX} exceeded its deadline {deadline} (run {record.run_id})"
    return reason[:MAX_STOP_REASON]


def orphan_stop_reason(task: OurTask, why: str) -> str:
    reason = (
        f"{ORPHAN_STOP_REASON_PREFIX} no status item tracks this task "
        f"(submission {task.submission_id or 'unknown'}, phase {task.phase or 'unknown'}, "
        f"attempt {task.attempt or 'unknown'}): {why}"
    )
    return reason[:MAX_STOP_REASON]


class ReconcileError(RuntimeError):
    """A reconciliation step got an answer it cannot act on (the item stays due for the next run)."""


@dataclass
class SweepResult:
    overdue: int = 0  # due LAUNCHED items
    stopped: int = 0  # StopTask for a timeout
    superseded_stopped: int = 0  # StopTask of a superseded run's task whose first StopTask failed (decision 095)
    already_gone: int = 0
    reconciled: int = 0  # synthetic STOPPED events sent to the completion function
    stopped_again: int = 0  # stop requested earlier, task still running: StopTask repeated
    gave_up: int = 0
    still_running: int = 0  # described running before its timeout: next liveness check scheduled
    awaiting_event: int = 0  # described STOPPED within the event grace: its event may still come
    tasks_seen: int = 0  # running tasks of ours listed in the clusters
    orphans_stopped: int = 0
    adopted: int = 0
    launches_dead_lettered: int = 0
    reports_redriven: int = 0
    report_gave_up: int = 0
    slots_reconciled: int = 0  # slot repairs by the reconciler
    slots_released: int = 0  # slots freed by a definite dead-letter of this sweep
    admissions_resent: int = 0  # ADMITTED runs past their deadline whose message was sent again
    runs_admitted: int = 0  # waiting runs admitted by this sweep's dispatch
    failed: list[str] = field(default_factory=list)  # what could not be handled (retried next run)

    @property
    def examined(self) -> int:
        return self.overdue + self.tasks_seen + self.launches_dead_lettered + self.reports_redriven

    def to_dict(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "stopped": self.stopped,
            "supersededStopped": self.superseded_stopped,
            "alreadyGone": self.already_gone,
            "reconciled": self.reconciled,
            "stoppedAgain": self.stopped_again,
            "gaveUp": self.gave_up,
            "stillRunning": self.still_running,
            "awaitingEvent": self.awaiting_event,
            "tasksSeen": self.tasks_seen,
            "orphansStopped": self.orphans_stopped,
            "adopted": self.adopted,
            "launchesDeadLettered": self.launches_dead_lettered,
            "reportsRedriven": self.reports_redriven,
            "reportGaveUp": self.report_gave_up,
            "slotsReconciled": self.slots_reconciled,
            "slotsReleased": self.slots_released,
            "admissionsResent": self.admissions_resent,
            "runsAdmitted": self.runs_admitted,
            "failed": len(self.failed),
        }


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


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TimeoutSweeper:
    def __init__(
        self,
        *,
        store: StatusStore,
        ecs: Any,
        metrics: MetricsSink,
        settings: TimeoutSweeperSettings,
        logger: Logger,
        lambda_client: Callable[[], Any] | None = None,
        capacity: SweeperCapacity | None = None,
    ) -> None:
        self._store = store
        # None: no capacity passes (tests and tools that predate capacity); the deployed sweeper always has them.
        self._capacity = capacity
        # The run ids of the running tasks pass 2 listed; None when that listing was incomplete (the reconciler
        # then judges no slot by its task).
        self._running_run_ids: set[str] | None = None
        self._ecs = ecs
        self._metrics = metrics
        self._settings = settings
        self._logger = logger
        self._lambda = lambda_client  # built on first use: most sweeps send nothing

    def sweep(self) -> SweepResult:
        result = SweepResult()
        now = self._store.sweep_time()
        self._running_run_ids = None
        passes: list[tuple[str, Callable[[float, SweepResult], None]]] = [
            ("launched items", self._sweep_launched),
            ("running tasks", self._sweep_tasks),
            ("stuck launches", self._sweep_stuck_launches),
            ("unfinished reports", self._sweep_reports),
        ]
        if self._capacity is not None:
            passes += [
                ("slots", self._reconcile_slots),
                ("admitted runs", self._resend_admitted),
                ("dispatch", self._dispatch),
                ("capacity gauges", self._emit_gauges),
            ]
        for name, sweep_pass in passes:
            try:
                sweep_pass(now, result)
            except Exception:  # a whole pass failed (a query): the others still run
                result.failed.append(f"pass: {name}")
                self._logger.exception("sweeper pass failed", extra={"sweep_pass": name})
        return result

    # ================================================================== 1. due LAUNCHED items
    def _sweep_launched(self, now: float, result: SweepResult) -> None:
        due = self._store.find_overdue(limit=self._settings.max_stops_per_run)
        result.overdue = len(due)
        if not due:
            return
        # The index projects keys and ARNs only (and may lag): read the items themselves.
        records = self._store.get_many(entry.run_id for entry in due)
        by_cluster: dict[str, list[LifecycleRecord]] = defaultdict(list)
        for entry in due:
            record = records.get(entry.run_id)
            if record is None or record.state is not SubmissionState.LAUNCHED or record.task_arn != entry.task_arn:
                self._logger.info("overdue item settled in the meantime", extra={"run_id": entry.run_id})
                continue
            if not record.task_arn or not record.cluster_arn:
                result.failed.append(record.run_id)
                self._logger.error("overdue item has no taskArn/clusterArn", extra={"run_id": record.run_id})
                continue
            if record.reconcile_attempt >= self._settings.max_reconcile_attempts:
                self._guarded(result, record.run_id, partial(self._give_up, record, result))
                continue
            by_cluster[record.cluster_arn].append(record)
        for cluster, cluster_records in by_cluster.items():
            for batch in _chunks(cluster_records, ECS_BATCH):
                try:
                    tasks, failures = self._describe(cluster, [r.task_arn for r in batch if r.task_arn])
                except Exception:
                    result.failed.extend(r.run_id for r in batch)
                    self._logger.exception("DescribeTasks failed", extra={"cluster": cluster, "tasks": len(batch)})
                    continue
                for record in batch:
                    assert record.task_arn is not None
                    task, failure = tasks.get(record.task_arn), failures.get(record.task_arn)
                    self._guarded(
                        result,
                        record.run_id,
                        partial(self._check_launched, record, task, failure, now, result),
                    )

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

    def _check_launched(
        self, record: LifecycleRecord, task: dict[str, Any] | None, failure: str | None, now: float, result: SweepResult
    ) -> None:
        assert record.task_arn is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn}
        if task is not None and task.get("lastStatus") == STOPPED:
            stopped_at = task.get("stoppedAt")
            stopped_epoch = stopped_at.timestamp() if isinstance(stopped_at, datetime) else None
            grace = self._settings.event_grace_seconds
            if stopped_epoch is not None and now - stopped_epoch < grace:
                # Stopped moments ago: the real event is most likely on its way. Look again after the grace.
                result.awaiting_event += 1
                self._store.mark_liveness_checked(
                    record.run_id, task_arn=record.task_arn, next_check_at=int(stopped_epoch) + grace + 1
                )
                return
            event = stopped_event_from_task(task, now=self._at(now))
            self._reconcile(record, event, "ECS describes the task STOPPED", result, now)
            return
        if task is not None:
            self._check_running(record, str(task.get("lastStatus")), now, result, keys)
            return
        if failure == MISSING:
            if record.stop_requested_at is not None:
                event = stopped_event_for_missing_task(record, environment_name=self._environment, now=self._at(now))
                self._reconcile(record, event, "ECS no longer describes the task; synthetic TIMED_OUT", result, now)
            else:
                event = stopped_event_for_unknown_outcome(record, environment_name=self._environment, now=self._at(now))
                self._reconcile(record, event, "ECS no longer describes the task; outcome unknown", result, now)
            return
        raise ReconcileError(f"DescribeTasks answered neither the task nor MISSING: {failure}")

    def _check_running(
        self, record: LifecycleRecord, status: str, now: float, result: SweepResult, keys: dict[str, str]
    ) -> None:
        assert record.task_arn is not None
        timeout_at = _timeout_at(record)
        if record.stop_requested_at is not None:
            # Stopped earlier and still not STOPPED a grace later: stop again (counts a reconcile attempt).
            self._ecs.stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=self._stop_reason_of(record))
            result.stopped_again += 1
            self._logger.warning(
                "task still not stopped after StopTask: stopped again", extra={**keys, "status": status}
            )
            detail = f"attempt {record.reconcile_attempt + 1}: task still {status} after StopTask; StopTask repeated"
            self._mark_reconcile(record, detail, keys)
            return
        if record.cancel_requested:
            # Superseded, and the challenge processor's StopTask failed (decision 095): stop it now, before its
            # timeout. Its STOPPED event (or, once ECS forgets it, the missing-task event) records CANCELLED.
            self._stop(record, result, superseded=True)
            return
        if timeout_at is None or now >= timeout_at:
            self._stop(record, result)
            return
        result.still_running += 1
        next_check = min(timeout_at, int(now) + self._settings.liveness_check_seconds)
        self._store.mark_liveness_checked(record.run_id, task_arn=record.task_arn, next_check_at=next_check)

    @staticmethod
    def _stop_reason_of(record: LifecycleRecord) -> str:
        """A superseded run's task is stopped with the superseded reason (the completion function records it as the
        CANCELLED outcome's reason), any other with the timeout reason."""
        return SUPERSEDED_REASON if record.cancel_requested else stop_reason(record)

    def _stop(self, record: LifecycleRecord, result: SweepResult, *, superseded: bool = False) -> None:
        assert record.task_arn is not None
        reason = SUPERSEDED_REASON if superseded else stop_reason(record)
        note = reason
        try:
            self._ecs.stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=reason)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in _GONE_ERROR_CODES:
                raise
            # Gone between the describe and the stop: its STOPPED event decides; reconciled if it never comes.
            note = f"{reason}; StopTask answered {code}: task already stopped or not found"
            result.already_gone += 1
            self._logger.warning(
                "overdue task already stopped or not found",
                extra={"run_id": record.run_id, "error_code": code},
            )
        else:
            if superseded:
                # RunsCancelled was counted when the challenge processor requested the cancel.
                result.superseded_stopped += 1
                self._logger.warning(
                    "task of a superseded run stopped by the sweeper (the challenge processor's StopTask had failed)",
                    extra={"run_id": record.run_id, "task_arn": record.task_arn},
                )
            else:
                result.stopped += 1
                self._metrics.count(Metric.TASKS_STOPPED_FOR_TIMEOUT)
                self._logger.info("stopped overdue task", extra={"run_id": record.run_id, "task_arn": record.task_arn})
        if not self._store.mark_stop_requested(
            record.run_id,
            task_arn=record.task_arn,
            reason=note,
            grace_seconds=self._settings.reconcile_grace_seconds,
        ):
            self._logger.info("item left LAUNCHED before the stop was recorded", extra={"run_id": record.run_id})

    def _reconcile(
        self, record: LifecycleRecord, event: dict[str, Any], what: str, result: SweepResult, now: float
    ) -> None:
        assert record.task_arn is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn}
        attempt = record.reconcile_attempt + 1
        self._send(event)
        result.reconciled += 1
        self._metrics.count(Metric.STOPPED_EVENTS_RECONCILED)
        # Never the event itself: its overrides may hold a token (insecure credentials mode).
        self._logger.warning(
            "STOPPED event was not processed: synthetic event sent to the completion function",
            extra={**keys, "attempt": attempt, "source": what},
        )
        self._mark_reconcile(record, f"attempt {attempt}: {what}; synthetic STOPPED event sent", keys)

    def _mark_reconcile(self, record: LifecycleRecord, detail: str, keys: dict[str, str]) -> None:
        assert record.task_arn is not None
        if not self._store.mark_reconcile_requested(
            record.run_id,
            task_arn=record.task_arn,
            grace_seconds=self._settings.reconcile_grace_seconds,
            detail=detail,
        ):
            self._logger.info("item left LAUNCHED during reconciliation", extra=keys)

    def _give_up(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert record.task_arn is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn}
        result.gave_up += 1
        self._metrics.count(Metric.RECONCILE_GAVE_UP)
        self._logger.error(
            "STOPPED event still not processed after the last reconcile attempt: an operator must look",
            extra={**keys, "attempts": record.reconcile_attempt},
        )
        self._store.mark_reconcile_abandoned(
            record.run_id,
            task_arn=record.task_arn,
            detail=f"gave up after {record.reconcile_attempt} reconcile attempts; left LAUNCHED for an operator",
        )

    # ================================================================== 2. the pipeline's own running tasks
    def _sweep_tasks(self, now: float, result: SweepResult) -> None:
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
            for batch in _chunks(arns, ECS_BATCH):
                try:
                    running |= self._check_task_batch(cluster, batch, now, result)
                except Exception:
                    complete = False
                    result.failed.append(f"tasks: {cluster}")
                    self._logger.exception("could not check a batch of tasks", extra={"cluster": cluster})
        self._running_run_ids = running if complete else None

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
            if code not in _GONE_ERROR_CODES:
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

    # ================================================================== 3. stuck launches
    def _sweep_stuck_launches(self, now: float, result: SweepResult) -> None:
        stuck_after = self._settings.launch_stuck_after_seconds
        # LAUNCHING: deadlineAt is the lease end; stuck once SQS can no longer redeliver the message.
        # LAUNCH_FAILED: deadlineAt is already the end of the message's lifetime.
        for state, before in ((SubmissionState.LAUNCHING, now - stuck_after), (SubmissionState.LAUNCH_FAILED, now)):
            due = self._store.find_due(state, before=before, limit=self._settings.max_stops_per_run)
            if not due:
                continue
            records = self._store.get_many(entry.run_id for entry in due)
            for entry in due:
                record = records.get(entry.run_id)
                if record is None or record.state is not state or record.deadline_at != entry.deadline_at:
                    continue  # re-claimed, launched or settled since the index listed it
                if record.deadline_at is None or record.deadline_at >= before:
                    continue
                if record.state is SubmissionState.LAUNCH_FAILED and record.relaunch_pending:
                    self._guarded(result, record.run_id, partial(self._redrive_relaunch, record, now, result))
                else:
                    self._guarded(result, record.run_id, partial(self._dead_letter, record, result))

    def _redrive_relaunch(self, record: LifecycleRecord, now: float, result: SweepResult) -> None:
        """A relaunch after a start failure whose message was never confirmed sent: the completion function
        sends it (decision 072). There is no message in any queue, so dead-lettering would be untrue."""
        assert record.deadline_at is not None
        keys = {"run_id": record.run_id, "task_arn": record.task_arn or ""}
        if record.reconcile_attempt >= self._settings.max_reconcile_attempts:
            result.gave_up += 1
            self._metrics.count(Metric.RECONCILE_GAVE_UP)
            self._logger.error(
                "relaunch after a start failure still not sent after the last re-drive: an operator must look",
                extra={**keys, "attempts": record.reconcile_attempt},
            )
            self._store.clear_deadline(
                record.run_id,
                observed_deadline=record.deadline_at,
                history_state="RELAUNCH_GAVE_UP",
                detail=f"relaunch not sent after {record.reconcile_attempt} re-drives; for an operator",
            )
            return
        clusters = self._settings.ecs_cluster_arns
        event = stopped_event_for_pending_relaunch(
            record, environment_name=self._environment, now=self._at(now), cluster_arn=clusters[0] if clusters else None
        )
        self._send(event)
        result.reconciled += 1
        self._metrics.count(Metric.STOPPED_EVENTS_RECONCILED)
        self._logger.warning("pending relaunch re-driven through the completion function", extra=keys)
        self._store.mark_relaunch_redriven(
            record.run_id,
            observed_deadline=record.deadline_at,
            next_check_at=int(now) + self._settings.reconcile_grace_seconds,
            detail=f"re-drive {record.reconcile_attempt + 1}: relaunch message never confirmed sent",
        )

    def _dead_letter(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert record.deadline_at is not None
        attempt = record.launch_attempt
        if record.state is SubmissionState.LAUNCHING:
            reason = (
                f"launch never confirmed: the delivery that claimed attempt {attempt} stopped before recording a task "
                "and SQS can no longer redeliver the message; message presumed in the DLQ; redrive it "
                "(a redrive reuses the clientToken, so a task that did start is not started twice)"
            )
        else:
            reason = (
                f"launch never confirmed: attempt {attempt} failed ({record.reason or 'no reason recorded'}) and the "
                "message was not redelivered within its lifetime; message presumed in the DLQ; redrive it"
            )
        marked = self._store.mark_launch_stuck(
            record.run_id,
            observed_state=record.state,
            attempt=attempt,
            observed_deadline=record.deadline_at,
            reason=reason,
        )
        if not marked:
            return  # a delivery re-claimed it in between
        if self._capacity is not None and record.state is SubmissionState.LAUNCH_FAILED and not record.launch_ambiguous:
            # Definite: no task of the run can exist, so its slot is free now (an ambiguous one keeps it until a
            # redrive requeues it, or the reconciler finds no task after its grace).
            self._guarded(result, record.run_id, partial(self._release_dead_lettered, record, result))
        result.launches_dead_lettered += 1
        self._metrics.count(Metric.STUCK_LAUNCHES_DEAD_LETTERED)
        keys = {"run_id": record.run_id, "was": record.state.value, "attempt": attempt}
        self._logger.warning(
            "stuck launch marked DEAD_LETTERED: redrive the challenge DLQ",
            extra={**keys, "report_due": marked.report_due},
        )
        if marked.report_due:
            # A definite v6 failure: its terminal summation is owed now (decision 086). If this send is lost, the
            # unfinished-report pass re-drives it (the item carries the report's deadline).
            try:
                self._send(report_due_event(record.run_id))
            except Exception:
                self._logger.warning("report-due send failed; the unfinished-report pass re-drives it", extra=keys)

    def _release_dead_lettered(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert self._capacity is not None
        if record.slot_pools and self._capacity.store.release(record):
            result.slots_released += 1
            self._logger.info("slot of a dead-lettered launch released", extra={"run_id": record.run_id})

    # ================================================================== 4. unfinished reports
    def _sweep_reports(self, now: float, result: SweepResult) -> None:
        # DEAD_LETTERED: only a v6 run dead-lettered definitely carries a deadline there (its terminal report).
        for state in [*sorted(FINAL_STATES), SubmissionState.DEAD_LETTERED]:
            due = self._store.find_due(state, before=now, limit=self._settings.max_stops_per_run)
            if not due:
                continue
            records = self._store.get_many(entry.run_id for entry in due)
            for entry in due:
                record = records.get(entry.run_id)
                if record is None or record.deadline_at is None or record.deadline_at != entry.deadline_at:
                    continue
                self._guarded(result, record.run_id, partial(self._check_report, record, now, result))

    def _check_report(self, record: LifecycleRecord, now: float, result: SweepResult) -> None:
        assert record.deadline_at is not None
        status = record.report_status
        lease_expired = record.report_lease_until is None or record.report_lease_until < now
        keys = {"run_id": record.run_id, "report_status": status.value if status else None}
        if status is ReportStatus.REPORTING and not lease_expired:
            return  # an invocation is reporting right now: look again next run
        if status not in {ReportStatus.PENDING, ReportStatus.REPORTING}:
            # Settled (or never needed) but still on the index: nothing left to do.
            self._store.clear_deadline(
                record.run_id,
                observed_deadline=record.deadline_at,
                history_state="REPORT_CHECKED",
                detail=f"report {status.value if status else 'status unknown'}: nothing to re-drive",
            )
            return
        if record.report_retry_attempt >= self._settings.max_report_retries:
            result.report_gave_up += 1
            self._metrics.count(Metric.REPORT_RETRY_GAVE_UP)
            self._logger.error(
                "report still unfinished after the last re-drive: an operator must look",
                extra={**keys, "attempts": record.report_retry_attempt},
            )
            self._store.clear_deadline(
                record.run_id,
                observed_deadline=record.deadline_at,
                history_state="REPORT_RETRY_GAVE_UP",
                detail=f"report still {status.value} after {record.report_retry_attempt} re-drives: for an operator",
            )
            return
        self._send(self._report_event(record, now))
        attempt = record.report_retry_attempt + 1
        result.reports_redriven += 1
        self._metrics.count(Metric.REPORTS_REDRIVEN)
        self._logger.warning(
            "unfinished report re-driven through the completion function", extra={**keys, "attempt": attempt}
        )
        self._store.mark_report_redriven(
            record.run_id,
            observed_deadline=record.deadline_at,
            next_check_at=int(now) + self._settings.report_retry_interval_seconds,
            detail=f"re-drive {attempt}: report was {status.value}; "
            + ("synthetic STOPPED event sent" if record.task_arn else "report-due event sent"),
        )

    def _report_event(self, record: LifecycleRecord, now: float) -> dict[str, Any]:
        """What makes the completion function report the recorded outcome: a run with a task gets its STOPPED
        event again; a run that never had one (a skipped v6 run, decision 086) gets the report-due event, as does a
        dead-lettered v6 run (no task of its attempt exists; a task ARN it keeps is an earlier start failure's)."""
        if not record.task_arn or record.state is SubmissionState.DEAD_LETTERED:
            return report_due_event(record.run_id)
        clusters = self._settings.ecs_cluster_arns
        return stopped_event_for_recorded_outcome(
            record,
            environment_name=self._environment,
            now=self._at(now),
            cluster_arn=clusters[0] if clusters else None,
        )

    # ================================================================== 5-8. capacity (decision 096)
    def _reconcile_slots(self, now: float, result: SweepResult) -> None:
        assert self._capacity is not None
        repairs = self._capacity.reconciler.reconcile(self._running_run_ids)
        result.slots_reconciled += len(repairs)

    def _resend_admitted(self, now: float, result: SweepResult) -> None:
        due = self._store.find_due(SubmissionState.ADMITTED, before=now, limit=self._settings.max_stops_per_run)
        if not due:
            return
        records = self._store.get_many(entry.run_id for entry in due)
        for entry in due:
            record = records.get(entry.run_id)
            if record is None or record.state is not SubmissionState.ADMITTED or record.deadline_at is None:
                continue  # claimed (or cancelled) since the index listed it
            if record.deadline_at != entry.deadline_at or record.deadline_at >= now:
                continue
            self._guarded(result, record.run_id, partial(self._resend, record, result))

    def _resend(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert self._capacity is not None
        assert record.deadline_at is not None
        if record.admission_resends >= MAX_ADMISSION_RESENDS:
            self._dead_letter_admission(record, result)
            return
        # Push the deadline first: of two overlapping sweeps only one re-sends, and a send lost now is re-sent
        # after the new deadline.
        if not self._capacity.store.mark_admission_resent(record.run_id, observed_deadline=record.deadline_at):
            return
        self._capacity.send(Admitted(entry_of_admitted(record), record))
        result.admissions_resent += 1
        self._logger.warning(
            "admitted run never claimed: its message was sent to the challenge queue again",
            extra={"run_id": record.run_id, "challenge_id": record.challenge_id},
        )

    def _dead_letter_admission(self, record: LifecycleRecord, result: SweepResult) -> None:
        """Its message was sent again and again and never processed: DEAD_LETTERED, slot freed (one transaction),
        so the run neither holds its slot forever nor is re-sent forever. The dispatch pass of this same sweep
        hands the slot to the next waiting run."""
        assert self._capacity is not None
        keys = {"run_id": record.run_id, "challenge_id": record.challenge_id, "resends": record.admission_resends}
        dead = self._capacity.store.dead_letter_admission(record, reason=ADMISSION_DEAD_LETTER_REASON)
        if dead is None:
            self._logger.info("admitted run moved on before it could be dead-lettered", extra=keys)
            return
        result.launches_dead_lettered += 1
        if record.slot_pools:
            result.slots_released += 1
        self._metrics.count(Metric.STUCK_LAUNCHES_DEAD_LETTERED, reason=ADMISSION_NEVER_CLAIMED)
        report_due = dead.platform is Platform.V6 and dead.report_status is ReportStatus.PENDING
        self._logger.error(
            "admitted run never claimed after its last re-send: DEAD_LETTERED, slot freed; redrive the challenge DLQ",
            extra={**keys, "report_due": report_due},
        )
        if report_due:
            # A v6 run: its terminal summation is owed now (decision 086), as for a definite dead-letter of pass 3.
            # If this send is lost, the unfinished-report pass re-drives it (the item carries the report's deadline).
            try:
                self._send(report_due_event(record.run_id))
            except Exception:
                self._logger.warning("report-due send failed; the unfinished-report pass re-drives it", extra=keys)

    def _dispatch(self, now: float, result: SweepResult) -> None:
        assert self._capacity is not None
        dispatched = self._capacity.dispatcher.dispatch()
        if dispatched.blocked_by == CONFIG_BLOCK:
            # Counted (CapacityConfigErrors) and logged by the dispatcher; failing the sweep makes it an Error too.
            result.failed.append("capacity: environment caps unreadable, nothing admitted")
        result.runs_admitted += len(dispatched.admitted)
        if dispatched.admitted:
            self._logger.info(
                "sweeper admitted waiting runs",
                extra={"admitted": len(dispatched.admitted), "blocked_by": dispatched.blocked_by},
            )

    def _emit_gauges(self, now: float, result: SweepResult) -> None:
        capacity = self._capacity
        assert capacity is not None
        snapshot = capacity.store.pools()
        caps: dict[str, int | None] = {}
        oldest: dict[str, int] = {}
        shown: list[str] = []
        for challenge_id, pool in snapshot.challenges.items():
            config = capacity.challenge_settings(challenge_id)
            if config is None and pool.used == 0 and pool.waiting == 0:
                continue  # an idle challenge without a config (ended): its line stops
            shown.append(challenge_id)
            caps[challenge_id] = config.capacity.max_running_tasks if config is not None else pool.cap
            if pool.waiting > 0:
                entries = capacity.store.queue_entries(challenge_id)
                if entries:
                    oldest[challenge_id] = min(entry.enqueued_at for entry in entries)
        environment: EnvironmentCapacity | None
        try:
            environment = capacity.environment_capacity()
        except CapacityConfigError:
            environment = None  # counted by the dispatch pass; the gauges without the environment's cap
        shown_snapshot = replace(snapshot, challenges={cid: snapshot.challenges[cid] for cid in shown})
        for gauge in capacity_gauges(
            shown_snapshot, challenge_caps=caps, oldest_enqueued_at=oldest, environment=environment, now=now
        ):
            capacity.gauges.gauge(gauge.metric, gauge.value, challenge_id=gauge.challenge_id, seconds=gauge.seconds)

    # ================================================================== plumbing
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
