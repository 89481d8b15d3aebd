"""Stuck items (decision 080): a launch that can no longer be confirmed shows its true state (DEAD_LETTERED, with
what an operator must do), and a report left PENDING or REPORTING is re-driven through the completion function."""

from __future__ import annotations

import json
from typing import Any

import pytest

from completion_lambda.events import parse_event
from mm_contracts.metric_names import Metric
from mm_contracts.models.ecs_event import EcsTaskStateChangeEvent
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform, ScoringPhase
from mm_contracts.models.report_due import parse_report_due_event, report_due_event
from mm_contracts.models.task import TaskEnv
from sweeper_lambda.synthetic_events import RECORDED_OUTCOME_CONTAINER
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    Completion,
    FakeLambda,
    launch_task,
    rid,
    routed,
    task_arn,
)
from tests.integration.completion.test_sweeper_describe_first import PHASE, FakeEcs, Harness, summary
from tests.integration.completion.test_sweeper_orphans import claimed
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

STUCK_AFTER = 600  # TimeoutSweeperSettings.launch_stuck_after_seconds (default: 180 s x 3 receives + 60 s)
REPORT_CHECK = 600  # the completion function's report-check delay
RETRY_INTERVAL = 900  # TimeoutSweeperSettings.report_retry_interval_seconds (default)


@pytest.fixture
def harness(completion: Completion, install_sweeper: Any, clock: Clock, lambda_context: Any) -> Harness:
    ecs = FakeEcs(clock)
    lam = FakeLambda()  # accepted, not run: the tests look at what was sent
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam, ecs_cluster_arns=(CLUSTER_ARN,))
    return Harness(completion, clock, ecs, lam, metrics, lambda_context)


# ------------------------------------------------------------------ stuck launches
def test_a_launching_item_whose_message_can_no_longer_come_back_becomes_dead_lettered(harness: Harness) -> None:
    # Given a delivery that claimed the launch and crashed: no task in ECS, the lease expired
    h = harness
    submission_id = claimed(h.completion.store, lease=60)

    # While SQS can still redeliver the message, the item is left to the redelivery
    h.clock.advance(60 + STUCK_AFTER - 1)
    assert h.sweep() == summary()
    assert h.completion.record(submission_id).state is SubmissionState.LAUNCHING

    # After that, it tells the truth
    h.clock.advance(2)
    assert h.sweep() == summary(launchesDeadLettered=1)
    record = h.completion.record(submission_id)
    assert record.state is SubmissionState.DEAD_LETTERED
    assert record.reason is not None
    for words in ("launch never confirmed", "message presumed in the DLQ", "redrive it"):
        assert words in record.reason
    assert record.launch_ambiguous is True  # a redrive reuses the clientToken: a task it did start is not doubled
    assert (record.deadline_at, record.lease_until) == (None, None)
    assert h.metrics.reasons(Metric.STUCK_LAUNCHES_DEAD_LETTERED) == {None: 1}
    assert h.sweep() == summary()  # off the index


def test_a_stuck_launching_item_whose_task_runs_is_adopted_instead(harness: Harness) -> None:
    h = harness
    submission_id = claimed(h.completion.store, lease=60)
    task = h.ecs.run(submission_id=submission_id, attempt=1, age=0)
    h.clock.advance(60 + STUCK_AFTER + 1)
    assert h.sweep() == summary(slotsReconciled=1, tasksSeen=1, adopted=1)
    record = h.completion.record(submission_id)
    assert (record.state, record.task_arn) == (SubmissionState.LAUNCHED, task.task_arn)


def test_a_launch_failed_item_never_redelivered_becomes_dead_lettered_with_its_reason(harness: Harness) -> None:
    h = harness
    store = h.completion.store
    submission_id = claimed(store)
    assert store.mark_launch_failed(
        rid(submission_id),
        attempt=1,
        reason="failures[]: RESOURCE:MEMORY",
        dead_lettered=False,
        message_lifetime_seconds=900,
    )
    h.clock.advance(899)
    assert h.sweep() == summary()
    h.clock.advance(2)
    assert h.sweep() == summary(launchesDeadLettered=1)
    record = h.completion.record(submission_id)
    assert record.state is SubmissionState.DEAD_LETTERED
    assert record.reason is not None
    assert "RESOURCE:MEMORY" in record.reason
    assert "redrive it" in record.reason
    assert record.launch_ambiguous is False  # kept: that failure was definite


# ------------------------------------------------------------------ unfinished reports
def finished(h: Harness, *, exit_code: int = 1) -> tuple[str, str]:
    """A recorded FAILED outcome with a required report (PENDING, deadline = now + report check)."""
    store = h.completion.store
    submission_id, arn = new_uuid(), task_arn()
    launch_task(store, submission_id, arn, CLUSTER_ARN)
    outcome = Outcome(
        code=OutcomeCode.FAILED,
        test_status=TestStatus.FAILED,
        reason="scorer exited 1",
        exit_code=exit_code,
        stop_code="EssentialContainerExited",
        task_arn=arn,
    )
    result = store.record_outcome(
        rid(submission_id),
        CHALLENGE_ID,
        outcome,
        report_required=True,
        launch_attempt=1,
        report_check_seconds=REPORT_CHECK,
    )
    assert result.record is not None
    assert result.record.report_status is ReportStatus.PENDING
    return submission_id, arn


def test_a_report_stuck_in_reporting_is_re_driven_with_an_event_that_identifies_the_task(harness: Harness) -> None:
    # Given a completion invocation that claimed the report and crashed after its POST (lease 90 s)
    h = harness
    submission_id, arn = finished(h)
    assert h.completion.store.claim_report(rid(submission_id), lease_seconds=90).granted

    # When the sweeper runs after the report check
    h.clock.advance(REPORT_CHECK + 1)
    assert h.sweep() == summary(reportsRedriven=1)

    # Then the completion function was invoked asynchronously with a STOPPED event naming the task
    [call] = h.lam.calls
    assert call["InvocationType"] == "Event"
    [event] = h.lam.events
    parsed = parse_event(event)
    assert isinstance(parsed, EcsTaskStateChangeEvent)
    detail = parsed.detail
    assert (detail.task_arn, detail.cluster_arn, detail.last_status) == (arn, CLUSTER_ARN, "STOPPED")
    assert detail.started_by is not None
    assert detail.started_by.endswith(CHALLENGE_ID)
    record = h.completion.record(submission_id)
    assert detail.environment() == {
        TaskEnv.SUBMISSION_ID.value: submission_id,
        TaskEnv.PHASE.value: PHASE.value,
        TaskEnv.PLATFORM.value: "v5",
        TaskEnv.CHALLENGE_ID.value: CHALLENGE_ID,
        TaskEnv.LAUNCH_ATTEMPT.value: "1",
        TaskEnv.CORRELATION_ID.value: record.correlation_id,
    }
    assert detail.stop_code == "EssentialContainerExited"
    scorer = detail.container(RECORDED_OUTCOME_CONTAINER)
    assert scorer is not None
    assert scorer.exit_code == 1
    # and the item counts the re-drive and is looked at again later
    assert record.report_retry_attempt == 1
    assert record.deadline_at == int(h.clock.now) + RETRY_INTERVAL
    assert record.history[-1].state == "REPORT_REDRIVEN"
    assert h.metrics.reasons(Metric.REPORTS_REDRIVEN) == {None: 1}


def test_a_report_being_sent_right_now_is_not_re_driven(harness: Harness) -> None:
    h = harness
    submission_id, _arn = finished(h)
    h.clock.advance(REPORT_CHECK - 30)
    assert h.completion.store.claim_report(rid(submission_id), lease_seconds=90).granted  # lease ends at +60
    h.clock.advance(31)
    assert h.sweep() == summary()
    assert h.lam.calls == []
    h.clock.advance(60)  # lease expired: now it is stuck
    assert h.sweep() == summary(reportsRedriven=1)


def test_a_pending_report_re_driven_through_the_completion_function_is_reported_once(
    harness: Harness,
) -> None:
    # Given an outcome recorded whose completion invocation died before it claimed the report (event in the DLQ)
    h = harness
    submission_id, _arn = finished(h)
    h.lam.deliver = h.completion.invoke
    h.clock.advance(REPORT_CHECK + 1)
    assert h.sweep() == summary(reportsRedriven=1)
    record = h.completion.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.REPORTED)
    assert len(h.completion.api.reviews_for(submission_id)) == 1
    h.clock.advance(RETRY_INTERVAL + 1)
    assert h.sweep() == summary()  # settled: off the index


def test_after_the_last_re_drive_the_sweeper_gives_up_loudly(
    harness: Harness, install_sweeper: Any, captured_logs: Any
) -> None:
    h = harness
    install_sweeper(h.completion.store, h.ecs, h.metrics, h.lam, ecs_cluster_arns=(CLUSTER_ARN,), max_report_retries=2)
    submission_id, _arn = finished(h)
    h.clock.advance(REPORT_CHECK + 1)
    results = [h.sweep()]
    for _ in range(3):
        h.clock.advance(RETRY_INTERVAL + 1)
        results.append(h.sweep())
    assert results == [summary(reportsRedriven=1), summary(reportsRedriven=1), summary(reportGaveUp=1), summary()]
    assert len(h.lam.calls) == 2
    assert h.metrics.reasons(Metric.REPORT_RETRY_GAVE_UP) == {None: 1}
    record = h.completion.record(submission_id)
    assert (record.report_status, record.deadline_at, record.report_retry_attempt) == (ReportStatus.PENDING, None, 2)
    assert record.history[-1].state == "REPORT_RETRY_GAVE_UP"
    errors = [json.loads(line) for line in captured_logs.getvalue().splitlines() if '"level":"ERROR"' in line]
    assert [(e["message"], e["run_id"]) for e in errors] == [
        ("report still unfinished after the last re-drive: an operator must look", rid(submission_id))
    ]


# ------------------------------------------------------------------ a run without a task (a skipped v6 run)
def test_an_unfinished_report_of_a_run_without_a_task_is_re_driven_with_the_report_due_event(harness: Harness) -> None:
    """A skipped run never had a task, so no STOPPED event can name it: the sweeper sends the report-due event
    for its run (decision 086), and counts the re-drive like any other."""
    h = harness
    submission_id = "aB3_-xYz09QwEr"
    assert h.completion.store.record_skipped(
        routed(submission_id, platform=Platform.V6),
        phase=ScoringPhase.EXAMPLE,
        scorer_type="example-scorer",
        reason="challenge inactive",
    )
    h.clock.advance(1)

    assert h.sweep() == summary(reportsRedriven=1)

    [call] = h.lam.calls
    assert call["InvocationType"] == "Event"
    [event] = h.lam.events
    assert event == report_due_event(f"{submission_id}#EXAMPLE")
    parsed = parse_report_due_event(event)
    assert parsed is not None
    assert parsed.detail.run_id == rid(submission_id, ScoringPhase.EXAMPLE)
    record = h.completion.record(submission_id, ScoringPhase.EXAMPLE)
    assert (record.state, record.report_status, record.report_retry_attempt) == (
        SubmissionState.FAILED,
        ReportStatus.PENDING,
        1,
    )
    assert record.deadline_at == int(h.clock.now) + RETRY_INTERVAL
    assert record.history[-1].state == "REPORT_REDRIVEN"
    assert "report-due event" in record.history[-1].detail


# ------------------------------------------------------------------ a relaunch never confirmed sent
def test_a_relaunch_never_sent_is_re_driven_not_dead_lettered(harness: Harness) -> None:
    """The completion function crashed between LAUNCH_FAILED (relaunch pending) and the SQS send, and every
    retry of its event failed too: no message exists anywhere, so the sweeper re-drives the start failure's
    event (the completion function then sends the relaunch) instead of claiming the message is in a DLQ."""
    h = harness
    store = h.completion.store
    submission_id, arn = new_uuid(), task_arn()
    launch_task(store, submission_id, arn, CLUSTER_ARN)
    reason = "scorer task failed to start: CannotPullContainerError: pull image manifest has been retried 5 time(s)"
    claim = store.mark_start_failed_for_relaunch(
        rid(submission_id),
        CHALLENGE_ID,
        task_arn=arn,
        launch_attempt=1,
        reason=reason,
        max_relaunches=2,
        recheck_seconds=900,
    )
    assert claim.record is not None
    assert claim.record.relaunch_pending is True

    h.clock.advance(901)
    h.sweep()

    record = h.completion.record(submission_id)
    assert record.state is SubmissionState.LAUNCH_FAILED  # not DEAD_LETTERED: there is nothing to redrive
    [event] = h.lam.events
    detail = event["detail"]
    assert (detail["taskArn"], detail["stopCode"]) == (arn, "TaskFailedToStart")
    assert "CannotPullContainerError" in detail["stoppedReason"]
    env = {e["name"]: e["value"] for e in detail["overrides"]["containerOverrides"][0]["environment"]}
    assert (env[TaskEnv.SUBMISSION_ID.value], env[TaskEnv.PHASE.value]) == (submission_id, PHASE.value)
    assert isinstance(parse_event(event), EcsTaskStateChangeEvent)
    assert record.deadline_at is not None
    assert record.deadline_at > int(h.clock.now)
