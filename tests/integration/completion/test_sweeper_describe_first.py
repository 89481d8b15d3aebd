"""Describe before stopping (decision 073): due LAUNCHED items are described first, at least every liveness
interval, so a lost STOPPED event is reconciled from what ECS says while it still knows the task.

ECS is a small fake (`FakeEcs`): moto's ECS ignores what matters here (stop times, exit codes, forgetting a
stopped task about an hour after it stopped). The status table is moto; the completion handler is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mm_adapters.status_store import DEFAULT_LIVENESS_CHECK_SECONDS
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.task import TaskEnv, TaskTag
from mm_contracts.names import (
    OUTCOME_UNKNOWN_STOP_REASON_PREFIX,
    STATUS_TABLE_PARTITION_KEY,
    TIMEOUT_STOP_REASON_PREFIX,
    started_by,
)
from sweeper_lambda import handler as timeout_sweeper
from sweeper_lambda.result import SweepResult
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    DEFAULT_PHASE,
    ENVIRONMENT,
    Completion,
    FakeLambda,
    launch_task,
    task_arn,
    task_environment,
)
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

# The phase of the challenge's single run (the fake config's `testType`): a v5 submission has one run.
PHASE = DEFAULT_PHASE
ECS_FORGETS_AFTER_SECONDS = 3600  # ECS keeps a stopped task describable for about an hour
SWEEP_INTERVAL_SECONDS = 300


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


@dataclass
class FakeTask:
    task_arn: str
    cluster_arn: str
    started_by: str
    environment: dict[str, str]
    created_at: float
    last_status: str = "RUNNING"
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    stopped_at: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def described(self, *, include_tags: bool = False) -> dict[str, Any]:
        """As DescribeTasks returns it through botocore (datetimes), with a log-router sidecar beside the scorer."""
        scorer: dict[str, Any] = {"name": "scorer", "lastStatus": self.last_status}
        if self.exit_code is not None:
            scorer["exitCode"] = self.exit_code
        task: dict[str, Any] = {
            "taskArn": self.task_arn,
            "clusterArn": self.cluster_arn,
            "lastStatus": self.last_status,
            "desiredStatus": "STOPPED" if self.last_status == "STOPPED" else "RUNNING",
            "startedBy": self.started_by,
            "createdAt": _dt(self.created_at),
            "startedAt": _dt(self.created_at + 5),
            "containers": [scorer, {"name": "log-router", "lastStatus": self.last_status, "exitCode": 0}],
            "overrides": {
                "containerOverrides": [
                    {"name": "log-router", "environment": []},
                    {"name": "scorer", "environment": [{"name": k, "value": v} for k, v in self.environment.items()]},
                ]
            },
        }
        if include_tags:
            task["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        if self.last_status == "STOPPED":
            assert self.stopped_at is not None
            task |= {
                "stoppedAt": _dt(self.stopped_at),
                "stopCode": self.stop_code,
                "stoppedReason": self.stopped_reason,
            }
        return task


@dataclass
class FakeEcs:
    """ListTasks (paged), DescribeTasks (at most 100 a call) and StopTask, on the shared clock."""

    clock: Clock
    forget_after_seconds: float = ECS_FORGETS_AFTER_SECONDS
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failing_clusters: set[str] = field(default_factory=set)

    def run(
        self,
        *,
        submission_id: str | None,
        arn: str | None = None,
        phase: ScoringPhase | None = PHASE,
        phase_tag: ScoringPhase | None = None,
        attempt: int | None = 1,
        timeout: int | None = 3600,
        age: float = 0,
        cluster_arn: str = CLUSTER_ARN,
        started_by_value: str = started_by(ENVIRONMENT, CHALLENGE_ID),
    ) -> FakeTask:
        environment = task_environment(submission_id) if submission_id else {}
        environment.pop(TaskEnv.PHASE.value, None)  # `phase` decides: None is a task that names no phase
        if phase is not None:
            environment[TaskEnv.PHASE.value] = phase.value
        if attempt is not None:
            environment[TaskEnv.LAUNCH_ATTEMPT.value] = str(attempt)
        if timeout is not None:
            environment[TaskEnv.TIMEOUT_SECONDS.value] = str(timeout)
        task = FakeTask(arn or task_arn(), cluster_arn, started_by_value, environment, self.clock.now - age)
        if phase_tag is not None:
            task.tags[TaskTag.PHASE.value] = phase_tag.value
        self.tasks[task.task_arn] = task
        return task

    def exit(self, arn: str, exit_code: int) -> None:
        task = self.tasks[arn]
        task.last_status, task.exit_code, task.stopped_at = "STOPPED", exit_code, self.clock.now
        task.stop_code, task.stopped_reason = "EssentialContainerExited", "Essential container in task exited"

    def _known(self, arn: str) -> FakeTask | None:
        task = self.tasks.get(arn)
        if task is None or (
            task.stopped_at is not None and self.clock.now - task.stopped_at > self.forget_after_seconds
        ):
            return None
        return task

    def describe_tasks(self, *, cluster: str, tasks: list[str], include: list[str] | None = None) -> dict[str, Any]:
        self.calls.append(("describe_tasks", {"cluster": cluster, "tasks": list(tasks)}))
        assert 1 <= len(tasks) <= 100, "DescribeTasks takes 1 to 100 tasks"
        assert include in (None, ["TAGS"])
        known = [self._known(arn) for arn in tasks]
        return {
            "tasks": [t.described(include_tags=include == ["TAGS"]) for t in known if t is not None],
            "failures": [{"arn": arn, "reason": "MISSING"} for arn, t in zip(tasks, known, strict=True) if t is None],
        }

    def list_tasks(
        self, *, cluster: str, desiredStatus: str, maxResults: int = 100, nextToken: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("list_tasks", {"cluster": cluster, "nextToken": nextToken}))
        if cluster in self.failing_clusters:
            raise ClientError({"Error": {"Code": "ServerException", "Message": "boom"}}, "ListTasks")
        assert desiredStatus == "RUNNING"
        assert maxResults <= 100
        running = [t.task_arn for t in self.tasks.values() if t.cluster_arn == cluster and t.last_status != "STOPPED"]
        start = int(nextToken or 0)
        page = running[start : start + maxResults]
        response: dict[str, Any] = {"taskArns": page}
        if start + maxResults < len(running):
            response["nextToken"] = str(start + maxResults)
        return response

    def stop_task(self, *, cluster: str, task: str, reason: str) -> dict[str, Any]:
        self.calls.append(("stop_task", {"cluster": cluster, "task": task, "reason": reason}))
        known = self._known(task)
        if known is None:
            raise ClientError(
                {"Error": {"Code": "InvalidParameterException", "Message": "The referenced task was not found."}},
                "StopTask",
            )
        if known.last_status != "STOPPED":
            known.last_status, known.exit_code, known.stopped_at = "STOPPED", 143, self.clock.now
            known.stop_code, known.stopped_reason = "UserInitiated", reason
        return {"task": known.described()}

    def stops(self) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == "stop_task"]


def summary(**counts: int) -> dict[str, int]:
    return {**SweepResult().to_dict(), **counts}


@dataclass
class Harness:
    completion: Completion
    clock: Clock
    ecs: FakeEcs
    lam: FakeLambda
    metrics: RecordingMetrics
    context: Any

    def sweep(self) -> dict[str, Any]:
        result: dict[str, Any] = timeout_sweeper.handler({}, self.context)
        self.lam.run_pending()  # Lambda runs the asynchronous invocations the sweep made
        return result

    def sweep_every_interval_for(self, seconds: float) -> list[dict[str, Any]]:
        results = []
        end = self.clock.now + seconds
        while self.clock.now + SWEEP_INTERVAL_SECONDS <= end:
            self.clock.advance(SWEEP_INTERVAL_SECONDS)
            results.append(self.sweep())
        return results


@pytest.fixture
def harness(completion: Completion, install_sweeper: Any, clock: Clock, lambda_context: Any) -> Harness:
    ecs = FakeEcs(clock)
    lam = FakeLambda(deliver=completion.invoke)
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam)
    return Harness(completion, clock, ecs, lam, metrics, lambda_context)


def launched(h: Harness, *, timeout: int = 3600) -> tuple[str, FakeTask]:
    submission_id, arn = new_uuid(), task_arn()
    launch_task(h.completion.store, submission_id, arn, CLUSTER_ARN, timeout=timeout, phase=PHASE)
    return submission_id, h.ecs.run(submission_id=submission_id, arn=arn, timeout=timeout)


# ------------------------------------------------------------------ defect 5
def test_a_scorer_that_exited_0_with_its_event_lost_is_reconciled_succeeded_before_ecs_forgets_it(
    harness: Harness,
) -> None:
    # Given a 3600 s challenge whose scorer exits 0 after 100 s, and whose STOPPED event is lost
    h = harness
    submission_id, task = launched(h, timeout=3600)
    h.clock.advance(100)
    h.ecs.exit(task.task_arn, 0)

    # When the sweeper runs every 5 minutes for two hours (ECS forgets the task an hour after it stopped)
    h.sweep_every_interval_for(7200)

    # Then it was reconciled from DescribeTasks (real exit code), never stopped, and reported SUCCEEDED once
    record = h.completion.record(submission_id)
    assert (record.state, record.exit_code) == (SubmissionState.SUCCEEDED, 0)
    assert record.report_status in {ReportStatus.REPORTED, ReportStatus.NOT_REQUIRED}
    assert h.ecs.stops() == []
    assert h.metrics.reasons(Metric.STOPPED_EVENTS_RECONCILED) == {None: 1}
    assert len(h.lam.calls) == 1
    assert len(h.completion.api.reviews_for(submission_id)) <= 1


def test_a_running_task_is_described_every_liveness_interval_and_stopped_only_at_its_timeout(
    harness: Harness,
) -> None:
    h = harness
    start = int(h.clock.now)
    submission_id, _task = launched(h, timeout=2000)
    assert h.completion.record(submission_id).deadline_at == start + DEFAULT_LIVENESS_CHECK_SECONDS  # 15 minutes

    # When the sweeper runs until just before the timeout: described, never stopped, next check scheduled
    results = h.sweep_every_interval_for(1999)
    assert h.ecs.stops() == []
    # the first sweep after 900 s (at 1200 s), then the next check is the timeout (2000 s < 1200 + 900)
    assert [i for i, r in enumerate(results, 1) if r["stillRunning"]] == [4]
    assert h.completion.record(submission_id).deadline_at == start + 2000

    # When the timeout passes: stopped with the timeout reason
    h.clock.advance(SWEEP_INTERVAL_SECONDS)
    assert h.sweep() == summary(overdue=1, stopped=1)
    [stop] = h.ecs.stops()
    assert stop["reason"].startswith(TIMEOUT_STOP_REASON_PREFIX)
    assert h.completion.record(submission_id).stop_requested_at is not None


def test_a_task_stopped_moments_ago_gets_the_event_grace_before_it_is_reconciled(harness: Harness) -> None:
    # Given a 600 s challenge whose task stopped 100 s before its deadline, the event not yet processed
    h = harness
    submission_id, task = launched(h, timeout=600)
    h.clock.advance(500)
    h.ecs.exit(task.task_arn, 1)
    h.clock.advance(101)

    # When the sweeper looks at its deadline: the event may still come, so it waits out the grace
    assert h.sweep() == summary(overdue=1, awaitingEvent=1)
    assert h.lam.calls == []
    grace = h.completion.record(submission_id).deadline_at
    assert grace == int(task.stopped_at or 0) + 300 + 1

    # When the grace is over and nothing came: reconciled from the described task (exit 1), not stopped
    h.clock.advance(300)
    assert h.sweep() == summary(overdue=1, reconciled=1)
    record = h.completion.record(submission_id)
    assert (record.state, record.exit_code) == (SubmissionState.FAILED, 1)
    assert h.ecs.stops() == []


def test_a_task_ecs_forgot_that_the_pipeline_never_stopped_is_outcome_unknown_not_timed_out(
    harness: Harness,
) -> None:
    # Given a task whose event was lost and that ECS no longer describes at the first liveness check
    h = harness
    h.ecs.forget_after_seconds = 60
    submission_id, task = launched(h, timeout=3600)
    h.clock.advance(100)
    h.ecs.exit(task.task_arn, 0)
    h.lam.deliver = None  # look at the event itself (the completion function maps it; decision 073)

    h.sweep_every_interval_for(900)

    # Then the synthetic event says the outcome is unknown; nothing invents a timeout
    [event] = h.lam.events
    detail = event["detail"]
    assert detail["stoppedReason"].startswith(OUTCOME_UNKNOWN_STOP_REASON_PREFIX)
    assert not detail["stoppedReason"].startswith(TIMEOUT_STOP_REASON_PREFIX)
    assert "stopCode" not in detail
    assert {e["name"]: e["value"] for e in detail["overrides"]["containerOverrides"][0]["environment"]} == {
        TaskEnv.SUBMISSION_ID.value: submission_id,
        TaskEnv.PHASE.value: PHASE.value,
        TaskEnv.PLATFORM.value: "v5",
        TaskEnv.CHALLENGE_ID.value: CHALLENGE_ID,
        TaskEnv.LAUNCH_ATTEMPT.value: "1",
        TaskEnv.CORRELATION_ID.value: h.completion.record(submission_id).correlation_id,
    }
    assert h.ecs.stops() == []
    assert h.completion.record(submission_id).reconcile_attempt == 1


def test_a_task_the_pipeline_stopped_and_ecs_forgot_is_still_timed_out(harness: Harness) -> None:
    h = harness
    h.ecs.forget_after_seconds = 60
    launched(h, timeout=600)
    h.lam.deliver = None
    h.clock.advance(601)
    assert h.sweep()["stopped"] == 1  # stopped for its timeout; its event is lost and ECS forgets it
    h.clock.advance(901)
    assert h.sweep() == summary(overdue=1, reconciled=1)
    [event] = h.lam.events
    assert event["detail"]["stoppedReason"].startswith(TIMEOUT_STOP_REASON_PREFIX)
    assert event["detail"]["stopCode"] == "UserInitiated"


def test_an_item_launched_before_timeout_at_existed_takes_its_deadline_as_the_timeout(harness: Harness) -> None:
    # Given a LAUNCHED item written by the previous version: deadlineAt = launch + timeout, no timeoutAt
    h = harness
    submission_id, _task = launched(h, timeout=60)
    h.completion.store.client.update_item(
        TableName=h.completion.store._table,
        Key={STATUS_TABLE_PARTITION_KEY: {"S": run_id(submission_id, PHASE)}},
        UpdateExpression="SET deadlineAt = :deadline REMOVE timeoutAt",
        ExpressionAttributeValues={":deadline": {"N": str(int(h.clock.now) + 60)}},
    )
    h.clock.advance(61)
    assert h.sweep() == summary(overdue=1, stopped=1)
    assert h.ecs.stops()[0]["reason"].startswith(TIMEOUT_STOP_REASON_PREFIX)


def test_due_items_are_described_in_batches_of_at_most_100(harness: Harness, install_sweeper: Any) -> None:
    h = harness
    install_sweeper(h.completion.store, h.ecs, h.metrics, h.lam, max_stops_per_run=150)
    for _ in range(150):
        launched(h, timeout=60)
    h.clock.advance(61)
    assert h.sweep() == summary(overdue=150, stopped=150)
    describes = [args for name, args in h.ecs.calls if name == "describe_tasks"]
    assert sorted(len(args["tasks"]) for args in describes) == [50, 100]


def test_two_runs_of_one_submission_are_checked_and_reconciled_each_by_its_own_phase(harness: Harness) -> None:
    # Given one submission with an EXAMPLE and a PROVISIONAL run, each with its own task; the EXAMPLE task
    # stopped, its event was lost and ECS forgot it, the PROVISIONAL task still runs
    h = harness
    h.ecs.forget_after_seconds = 60
    h.lam.deliver = None  # look at the event itself
    submission_id = new_uuid()
    tasks = {}
    for phase in (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL):
        arn = task_arn()
        launch_task(h.completion.store, submission_id, arn, CLUSTER_ARN, timeout=3600, phase=phase)
        tasks[phase] = h.ecs.run(submission_id=submission_id, arn=arn, phase=phase, timeout=3600)
    h.clock.advance(100)
    h.ecs.exit(tasks[ScoringPhase.EXAMPLE].task_arn, 0)

    # When the sweeper runs at the first liveness check
    h.clock.advance(DEFAULT_LIVENESS_CHECK_SECONDS)
    assert h.sweep() == summary(overdue=2, reconciled=1, stillRunning=1)

    # Then the one synthetic event names the EXAMPLE run, and each run's item moved on its own
    [event] = h.lam.events
    environment = {e["name"]: e["value"] for e in event["detail"]["overrides"]["containerOverrides"][0]["environment"]}
    assert (environment[TaskEnv.SUBMISSION_ID.value], environment[TaskEnv.PHASE.value]) == (submission_id, "EXAMPLE")
    assert event["detail"]["taskArn"] == tasks[ScoringPhase.EXAMPLE].task_arn
    example = h.completion.record(submission_id, ScoringPhase.EXAMPLE)
    provisional = h.completion.record(submission_id, ScoringPhase.PROVISIONAL)
    assert (example.reconcile_attempt, provisional.reconcile_attempt) == (1, 0)
    assert provisional.deadline_at == int(h.clock.now) + DEFAULT_LIVENESS_CHECK_SECONDS
