"""Timeout sweeper over moto (status table + ECS), and the TIMED_OUT report its stop leads to."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.task import TaskTag
from mm_contracts.names import TIMEOUT_STOP_REASON_PREFIX
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda import handler as timeout_sweeper
from sweeper_lambda.handler import SweepIncompleteError
from sweeper_lambda.launched_runs import stop_reason
from sweeper_lambda.result import SweepResult
from sweeper_lambda.sweep_pass import MAX_STOP_REASON
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    DEFAULT_PHASE,
    Completion,
    launch_task,
    moto_ecs_task,
    rid,
    stopped_event,
    task_arn,
    task_environment,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def expected_summary(**counts: int) -> dict[str, int]:
    return {**SweepResult().to_dict(), **counts}


def running(arn: str) -> dict[str, Any]:
    """A running task as DescribeTasks returns it (the sweeper describes before it stops)."""
    return {"taskArn": arn, "clusterArn": CLUSTER_ARN, "lastStatus": "RUNNING", "desiredStatus": "RUNNING"}


def test_sweeper_stops_an_overdue_task_and_its_stopped_event_is_reported_as_timed_out(
    completion: Completion,
    install_sweeper: Any,
    sweeper_settings: TimeoutSweeperSettings,
    clock: Clock,
    lambda_context: Any,
) -> None:
    # Given a running scorer task (moto) whose submission is LAUNCHED with a 60 s timeout
    submission_id = new_uuid()
    environment = task_environment(submission_id, phase=DEFAULT_PHASE)
    task = moto_ecs_task(
        environment=environment,
        tags={TaskTag.SUBMISSION_ID.value: submission_id, TaskTag.PHASE.value: DEFAULT_PHASE.value},
    )
    launch_task(completion.store, submission_id, task.task_arn, task.cluster_arn, timeout=60)
    ecs = aws_clients.client("ecs")
    sweeper_metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, sweeper_metrics)

    # When the sweeper runs before the deadline, nothing happens
    assert timeout_sweeper.handler({}, lambda_context)["overdue"] == 0

    # When it runs after the deadline
    clock.advance(61)
    summary = timeout_sweeper.handler({}, lambda_context)

    # Then the task is stopped with the marker reason and the item leaves the overdue index
    assert summary == expected_summary(overdue=1, stopped=1)
    described = ecs.describe_tasks(cluster=task.cluster_arn, tasks=[task.task_arn])["tasks"][0]
    assert described["lastStatus"] == "STOPPED"
    assert described["stoppedReason"].startswith(TIMEOUT_STOP_REASON_PREFIX)
    record = completion.record(submission_id)
    assert record.stop_requested_at is not None
    # the deadline moves out by the reconcile grace: overdue again only if the STOPPED event is never processed
    assert record.deadline_at == int(clock.now) + sweeper_settings.reconcile_grace_seconds
    assert sweeper_metrics.counted() == [(Metric.TASKS_STOPPED_FOR_TIMEOUT, None)]
    assert timeout_sweeper.handler({}, lambda_context)["overdue"] == 0  # not stopped twice

    # When ECS emits the STOPPED event (UserInitiated, with our reason)
    event = stopped_event(
        submission_id,
        task.task_arn,
        cluster_arn=task.cluster_arn,
        environment=environment,
        exit_code=143,
        stop_code="UserInitiated",
        stopped_reason=described["stoppedReason"],
    )
    completion.invoke(event)
    completion.invoke(event)  # and again

    # Then the run is TIMED_OUT and exactly one failure review is posted
    record = completion.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.TIMED_OUT, ReportStatus.REPORTED)
    [review] = completion.api.reviews_for(submission_id)
    assert review["score"] == 0
    assert review["metadata"]["outcome"] == "TIMED_OUT"
    assert review["metadata"]["testStatus"] == "FAILED"
    assert (Metric.TASKS_TIMED_OUT, None) in completion.metrics.counts


def _overdue(store: StatusStore, clock: Clock, count: int) -> list[tuple[str, str]]:
    items = []
    for _ in range(count):
        submission_id, arn = new_uuid(), task_arn()
        launch_task(store, submission_id, arn, CLUSTER_ARN, timeout=60)
        items.append((submission_id, arn))
    clock.advance(61)
    return items


def test_a_task_already_stopped_is_marked_stop_requested_with_a_note(
    status_table: str, clock: Clock, install_sweeper: Any, lambda_context: Any
) -> None:
    store = StatusStore(status_table, clock=clock)
    [(submission_id, arn)] = _overdue(store, clock, 1)
    ecs = aws_clients.client("ecs")
    metrics = RecordingMetrics()
    install_sweeper(store, ecs, metrics)
    with Stubber(ecs) as stub:
        # running when described, gone when stopped (it stopped in between)
        stub.add_response("describe_tasks", {"tasks": [running(arn)], "failures": []})
        stub.add_client_error(
            "stop_task",
            service_error_code="InvalidParameterException",
            service_message="The referenced task was not found.",
        )
        summary = timeout_sweeper.handler({}, lambda_context)
    assert summary == expected_summary(overdue=1, alreadyGone=1)
    record = store.get(rid(submission_id))
    assert record is not None
    assert record.stop_requested_at is not None
    assert "InvalidParameterException" in record.history[-1].detail
    assert metrics.counted() == []  # nothing was stopped by us


def test_one_failing_stop_does_not_stop_the_rest(
    status_table: str, clock: Clock, install_sweeper: Any, lambda_context: Any
) -> None:
    store = StatusStore(status_table, clock=clock)
    items = _overdue(store, clock, 3)
    ecs = aws_clients.client("ecs")
    metrics = RecordingMetrics()
    install_sweeper(store, ecs, metrics)
    order = [record.submission_id for record in store.find_overdue()]  # the index projects submissionId
    arns = dict(items)
    with Stubber(ecs) as stub:
        # one DescribeTasks for the three (one cluster), then one StopTask each
        stub.add_response("describe_tasks", {"tasks": [running(arns[s]) for s in order], "failures": []})
        stub.add_client_error("stop_task", service_error_code="ServerException", http_status_code=500)
        stub.add_response("stop_task", {"task": {}})
        stub.add_response("stop_task", {"task": {}})
        # Then the run finishes the batch and reports the failure by failing the invocation
        with pytest.raises(SweepIncompleteError, match="1 of 3"):
            timeout_sweeper.handler({}, lambda_context)
    failed, *stopped = order
    assert all(store.get(rid(s)).stop_requested_at is not None for s in stopped)  # type: ignore[union-attr]
    assert store.get(rid(failed)).stop_requested_at is None  # type: ignore[union-attr]
    assert metrics.counted() == [(Metric.TASKS_STOPPED_FOR_TIMEOUT, None)] * 2
    # The failed one is still overdue: the next run retries it
    assert [r.submission_id for r in store.find_overdue()] == [failed]
    assert len(items) == 3


def test_stop_reason_is_marked_and_within_the_stoptask_limit() -> None:
    from mm_contracts.models.lifecycle import LifecycleRecord

    record = LifecycleRecord.model_validate(
        {
            "runId": "x" * 300 + "#SYSTEM",
            "submissionId": "x" * 300,
            "phase": "SYSTEM",
            "challengeId": "c",
            "state": "LAUNCHED",
            "deadlineAt": 1_800_000_000,
            "createdAt": "2027-01-15T08:00:00+00:00",
            "updatedAt": "2027-01-15T08:00:00+00:00",
        }
    )
    reason = stop_reason(record)
    assert reason.startswith(TIMEOUT_STOP_REASON_PREFIX)
    assert len(reason) <= MAX_STOP_REASON
