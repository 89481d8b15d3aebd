"""Reconciling lost STOPPED events (decision 008): the sweeper over a moto status table, ECS answers from
moto or botocore's Stubber, and the synthetic event delivered to the real completion handler."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mm_adapters import aws as aws_clients
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.task import TaskEnv, TaskTag
from mm_contracts.names import TIMEOUT_STOP_REASON_PREFIX
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda import handler as timeout_sweeper
from sweeper_lambda.handler import SweepIncompleteError
from sweeper_lambda.result import SweepResult
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    COMPLETION_FUNCTION,
    Completion,
    FakeLambda,
    launch_task,
    moto_ecs_task,
    rid,
    stopped_event,
    task_arn,
    task_environment,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

TIMEOUT = 60
INSECURE_TOKEN = "eyJhbGciOiJSUzI1NiJ9.insecure-mode-token.c2lnbmF0dXJl"  # a fake, planted to be found


def described(submission_id: str, arn: str, *, last_status: str = "STOPPED", **kwargs: Any) -> dict[str, Any]:
    """A task as DescribeTasks returns it (botocore: timestamps are datetimes, no `updatedAt`)."""
    detail = stopped_event(submission_id, arn, **kwargs)["detail"]
    for name in ("createdAt", "stoppedAt", "stoppingAt"):
        detail[name] = datetime.fromisoformat(detail[name].replace("Z", "+00:00"))
    detail.pop("updatedAt")
    detail["lastStatus"] = last_status
    if last_status != "STOPPED":
        for name in ("stopCode", "stoppedReason", "stoppedAt", "stoppingAt"):
            detail.pop(name)
        detail["desiredStatus"] = "STOPPED"
        for container in detail["containers"]:
            container.pop("exitCode", None)
            container["lastStatus"] = last_status
    return detail


class Sweeps:
    """The sweeper handler with the clock: first run at the deadline, then one run per grace period."""

    def __init__(self, clock: Clock, settings: TimeoutSweeperSettings, context: Any) -> None:
        self.clock = clock
        self.grace = settings.reconcile_grace_seconds
        self.context = context

    def run(self) -> dict[str, Any]:
        result: dict[str, Any] = timeout_sweeper.handler({}, self.context)
        return result

    def after_deadline(self) -> dict[str, Any]:
        self.clock.advance(TIMEOUT + 1)
        return self.run()

    def after_grace(self) -> dict[str, Any]:
        self.clock.advance(self.grace + 1)
        return self.run()


@pytest.fixture
def sweeps(clock: Clock, sweeper_settings: TimeoutSweeperSettings, lambda_context: Any) -> Sweeps:
    return Sweeps(clock, sweeper_settings, lambda_context)


def launched(completion: Completion) -> tuple[str, str]:
    submission_id, arn = new_uuid(), task_arn()
    launch_task(completion.store, submission_id, arn, CLUSTER_ARN, timeout=TIMEOUT)
    return submission_id, arn


def summary(**counts: int) -> dict[str, int]:
    return {**SweepResult().to_dict(), **counts}


def add_running(stub: Stubber, submission_id: str, arn: str) -> None:
    """The sweeper describes before it stops: the task is still running at its deadline."""
    stub.add_response(
        "describe_tasks", {"tasks": [described(submission_id, arn, last_status="RUNNING")], "failures": []}
    )


def history(record: LifecycleRecord) -> list[str]:
    return [entry.state for entry in record.history]


def test_a_lost_stopped_event_is_reconciled_from_describe_tasks_and_reported_exactly_once(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps
) -> None:
    # Given a task that exited 1 on its own, but whose STOPPED event never reached the completion function
    submission_id, arn = launched(completion)
    environment = {**task_environment(submission_id), TaskEnv.M2M_TOKEN.value: INSECURE_TOKEN}
    ecs = aws_clients.client("ecs")
    lam = FakeLambda(deliver=completion.invoke)  # Lambda runs the completion handler with the payload
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam)
    with Stubber(ecs) as stub:
        add_running(stub, submission_id, arn)
        stub.add_response("stop_task", {"task": {}}, {"cluster": CLUSTER_ARN, "task": arn, "reason": ANY})
        stub.add_response(
            "describe_tasks",
            {"tasks": [described(submission_id, arn, environment=environment, exit_code=1)], "failures": []},
            {"cluster": CLUSTER_ARN, "tasks": [arn]},
        )
        # When the sweeper stops it at its deadline, and nothing arrives within the grace
        assert sweeps.after_deadline() == summary(overdue=1, stopped=1)
        assert completion.record(submission_id).state is SubmissionState.LAUNCHED
        assert sweeps.after_grace() == summary(overdue=1, reconciled=1)
        stub.assert_no_pending_responses()
    assert completion.record(submission_id).reconcile_attempt == 1
    assert lam.run_pending() == 1  # Lambda runs the asynchronous invocation

    # Then the completion function was invoked asynchronously, once, with an ECS Task State Change event
    [call] = lam.calls
    assert (call["FunctionName"], call["InvocationType"]) == (COMPLETION_FUNCTION, "Event")
    [event] = lam.events
    assert (event["source"], event["detail-type"], event["resources"]) == ("aws.ecs", "ECS Task State Change", [arn])
    assert isinstance(event["detail"]["stoppedAt"], str)
    # and the real outcome (exit 1) is recorded and reported once
    record = completion.record(submission_id)
    assert (record.state, record.exit_code, record.report_status) == (
        SubmissionState.FAILED,
        1,
        ReportStatus.REPORTED,
    )
    assert history(record)[-4:] == ["STOP_REQUESTED", "RECONCILE_REQUESTED", "FAILED", "REPORT_REPORTED"]
    [review] = completion.api.reviews_for(submission_id)
    assert review["metadata"]["exitCode"] == 1
    assert metrics.counted() == [(Metric.TASKS_STOPPED_FOR_TIMEOUT, None), (Metric.STOPPED_EVENTS_RECONCILED, None)]

    # When the real event turns up after all, and the sweeper runs again
    completion.invoke(stopped_event(submission_id, arn, environment=environment, exit_code=1))
    assert sweeps.after_grace() == summary()
    # Then nothing more is reported
    assert len(completion.api.reviews_for(submission_id)) == 1
    assert len(lam.calls) == 1


def test_a_task_ecs_no_longer_describes_is_reported_timed_out(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps
) -> None:
    # Given a stopped task whose event was lost, and which ECS has forgotten (more than an hour later)
    submission_id, arn = launched(completion)
    ecs = aws_clients.client("ecs")
    lam = FakeLambda(deliver=completion.invoke)
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam)
    with Stubber(ecs) as stub:
        add_running(stub, submission_id, arn)
        stub.add_response("stop_task", {"task": {}})
        stub.add_response("describe_tasks", {"tasks": [], "failures": [{"arn": arn, "reason": "MISSING"}]})
        sweeps.after_deadline()
        # When the grace passes
        assert sweeps.after_grace() == summary(overdue=1, reconciled=1)
    lam.run_pending()

    # Then it is reported TIMED_OUT (we did stop it for its timeout), once
    record = completion.record(submission_id)
    assert (record.state, record.report_status, record.stop_code) == (
        SubmissionState.TIMED_OUT,
        ReportStatus.REPORTED,
        "UserInitiated",
    )
    assert record.reason is not None
    assert "reconciled: ECS no longer describes the task" in record.reason
    [review] = completion.api.reviews_for(submission_id)
    assert review["metadata"]["outcome"] == "TIMED_OUT"
    assert review["metadata"]["exitCode"] is None
    assert (Metric.TASKS_TIMED_OUT, None) in completion.metrics.counts


def test_a_task_still_running_after_its_stop_is_stopped_again_without_an_event(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps
) -> None:
    submission_id, arn = launched(completion)
    ecs = aws_clients.client("ecs")
    lam = FakeLambda(deliver=completion.invoke)
    install_sweeper(completion.store, ecs, RecordingMetrics(), lam)
    with Stubber(ecs) as stub:
        add_running(stub, submission_id, arn)
        stub.add_response("stop_task", {"task": {}})
        stub.add_response(
            "describe_tasks", {"tasks": [described(submission_id, arn, last_status="RUNNING")], "failures": []}
        )
        reason = {"cluster": CLUSTER_ARN, "task": arn, "reason": ANY}
        stub.add_response("stop_task", {"task": {}}, reason)
        sweeps.after_deadline()
        assert sweeps.after_grace() == summary(overdue=1, stoppedAgain=1)
        stub.assert_no_pending_responses()
    assert lam.calls == []
    record = completion.record(submission_id)
    assert (record.state, record.reconcile_attempt) == (SubmissionState.LAUNCHED, 1)
    assert "task still RUNNING" in record.history[-1].detail
    assert completion.store.find_overdue() == []  # not before the next grace


def test_after_the_last_attempt_the_sweeper_gives_up_loudly_and_stops_resending(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps, captured_logs: Any
) -> None:
    # Given a lost event whose synthetic replacements are never processed either (the completion side is broken)
    submission_id, arn = launched(completion)
    ecs = aws_clients.client("ecs")
    lam = FakeLambda()  # accepted (202) but never runs
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam, max_reconcile_attempts=2)
    stopped = {"tasks": [described(submission_id, arn)], "failures": []}
    with Stubber(ecs) as stub:
        add_running(stub, submission_id, arn)
        stub.add_response("stop_task", {"task": {}})
        stub.add_response("describe_tasks", stopped)
        stub.add_response("describe_tasks", stopped)
        sweeps.after_deadline()
        # When the sweeper keeps running, one grace period apart
        results = [sweeps.after_grace() for _ in range(4)]
        stub.assert_no_pending_responses()

    # Then it sends at most max_reconcile_attempts events, then gives up once and lets the item go
    assert results == [
        summary(overdue=1, reconciled=1),
        summary(overdue=1, reconciled=1),
        summary(overdue=1, gaveUp=1),
        summary(),
    ]
    assert len(lam.calls) == 2
    assert metrics.reasons(Metric.RECONCILE_GAVE_UP) == {None: 1}
    assert metrics.reasons(Metric.STOPPED_EVENTS_RECONCILED) == {None: 2}
    record = completion.record(submission_id)
    assert (record.state, record.deadline_at, record.reconcile_attempt) == (SubmissionState.LAUNCHED, None, 2)
    assert history(record)[-1] == "RECONCILE_GAVE_UP"
    errors = [json.loads(line) for line in captured_logs.getvalue().splitlines() if '"level":"ERROR"' in line]
    assert [(e["message"], e["run_id"]) for e in errors] == [
        (
            "STOPPED event still not processed after the last reconcile attempt: an operator must look",
            rid(submission_id),
        )
    ]


def test_the_token_in_the_described_overrides_never_reaches_a_log_or_a_metric(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps, captured_logs: Any
) -> None:
    submission_id, arn = launched(completion)
    environment = {**task_environment(submission_id), TaskEnv.M2M_TOKEN.value: INSECURE_TOKEN}
    ecs = aws_clients.client("ecs")
    lam = FakeLambda(deliver=completion.invoke)
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam, max_reconcile_attempts=1)
    task = described(submission_id, arn, environment=environment, exit_code=0)
    with Stubber(ecs) as stub:
        add_running(stub, submission_id, arn)
        stub.add_response("stop_task", {"task": {}})
        stub.add_response("describe_tasks", {"tasks": [task], "failures": []})
        sweeps.after_deadline()
        sweeps.after_grace()
    lam.run_pending()
    assert INSECURE_TOKEN in lam.calls[0]["Payload"].decode()  # sent on, as EventBridge would
    assert completion.record(submission_id).state is SubmissionState.SUCCEEDED
    assert INSECURE_TOKEN not in captured_logs.getvalue()
    assert INSECURE_TOKEN not in repr(metrics.counts) + repr(completion.metrics.counts)
    assert INSECURE_TOKEN not in completion.record(submission_id).model_dump_json()


def test_a_real_moto_task_description_is_accepted_by_the_completion_handler(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps
) -> None:
    # Given a moto Fargate task (a real DescribeTasks round trip through botocore) whose STOPPED event never comes
    submission_id = new_uuid()
    environment = task_environment(submission_id)
    task = moto_ecs_task(environment=environment, tags={TaskTag.SUBMISSION_ID.value: submission_id})
    launch_task(completion.store, submission_id, task.task_arn, task.cluster_arn, timeout=TIMEOUT)
    lam = FakeLambda(deliver=completion.invoke)
    install_sweeper(completion.store, aws_clients.client("ecs"), RecordingMetrics(), lam)

    # When the sweeper stops it (moto marks it STOPPED) and reconciles after the grace
    assert sweeps.after_deadline()["stopped"] == 1
    assert sweeps.after_grace()["reconciled"] == 1
    [event] = lam.events
    assert event["detail"]["stoppedReason"].startswith(TIMEOUT_STOP_REASON_PREFIX)
    result = completion.invoke(event)

    # Then the handler took the synthetic event as it is and recorded the submission's one final state
    assert result["submissionId"] == submission_id
    assert result["disposition"] != "ignored"
    record = completion.record(submission_id)
    assert record.state in FINAL_STATES  # which one depends on moto's task shape (no stopCode)
    assert sum(state in {s.value for s in FINAL_STATES} for state in history(record)) == 1
    assert sweeps.after_grace() == summary()  # settled: off the index


def test_the_invoke_request_is_valid_for_the_lambda_api_and_a_refusal_is_retried_next_run(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps
) -> None:
    # Given the real botocore Lambda client (Stubber validates the request against the service model)
    submission_id, arn = launched(completion)
    ecs = aws_clients.client("ecs")
    lam = boto3.client("lambda", region_name="us-east-1")
    install_sweeper(completion.store, ecs, RecordingMetrics(), lam)
    missing = {"tasks": [], "failures": [{"arn": arn, "reason": "MISSING"}]}
    with Stubber(ecs) as ecs_stub, Stubber(lam) as lambda_stub:
        add_running(ecs_stub, submission_id, arn)
        ecs_stub.add_response("stop_task", {"task": {}})
        ecs_stub.add_response("describe_tasks", missing)
        ecs_stub.add_response("describe_tasks", missing)
        expected = {"FunctionName": COMPLETION_FUNCTION, "InvocationType": "Event", "Payload": ANY}
        lambda_stub.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
        lambda_stub.add_response("invoke", {"StatusCode": 202}, expected)
        sweeps.after_deadline()
        # When the first Invoke is refused, the run fails (Errors alarm) and the item stays due
        with pytest.raises(SweepIncompleteError, match="1 of 1"):
            sweeps.after_grace()
        record = completion.record(submission_id)
        assert record.reconcile_attempt == 0
        assert [r.submission_id for r in completion.store.find_overdue()] == [submission_id]
        # Then the next run sends it
        assert sweeps.run() == summary(overdue=1, reconciled=1)
        lambda_stub.assert_no_pending_responses()
    assert completion.record(submission_id).reconcile_attempt == 1


def test_an_unexpected_describe_answer_fails_that_item_only(
    completion: Completion, install_sweeper: Any, sweeps: Sweeps
) -> None:
    submission_id, arn = launched(completion)
    ecs = aws_clients.client("ecs")
    lam = FakeLambda(deliver=completion.invoke)
    install_sweeper(completion.store, ecs, RecordingMetrics(), lam)
    with Stubber(ecs) as stub:
        add_running(stub, submission_id, arn)
        stub.add_response("stop_task", {"task": {}})
        stub.add_response("describe_tasks", {"tasks": [], "failures": [{"arn": arn, "reason": "UNKNOWN"}]})
        sweeps.after_deadline()
        with pytest.raises(SweepIncompleteError):
            sweeps.after_grace()
    assert lam.calls == []
    record = completion.record(submission_id)
    assert (record.state, record.reconcile_attempt) == (SubmissionState.LAUNCHED, 0)


def test_an_item_settled_between_the_index_read_and_the_item_read_is_left_alone(
    completion: Completion, install_sweeper: Any, clock: Clock, lambda_context: Any
) -> None:
    # Given an overdue item whose outcome is recorded just after the index listed it
    submission_id, arn = launched(completion)
    clock.advance(TIMEOUT + 1)
    store = completion.store
    [entry] = store.find_overdue()

    class LaggingIndexStore(type(store)):  # type: ignore[misc]
        def find_overdue(self, *, limit: int = 100) -> list[LifecycleRecord]:
            return [entry]

    lagging = LaggingIndexStore(store._table, clock=clock)
    completion.invoke(stopped_event(submission_id, arn, exit_code=0))
    ecs = aws_clients.client("ecs")
    install_sweeper(lagging, ecs, RecordingMetrics())
    with Stubber(ecs):  # no ECS call expected (an unexpected call fails)
        assert timeout_sweeper.handler({}, lambda_context) == summary(overdue=1)
    assert completion.record(submission_id).state is SubmissionState.SUCCEEDED
