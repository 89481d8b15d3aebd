"""challenge_lambda.processor: RunTask outcomes that may have started a task (decision 070). The attempt is marked
ambiguous and keeps its clientToken through every retry until a task is known or ECS settles it; an adopted or
already-stopped task is recorded as launched.

The world of `test_processor.py` (real StatusStore on moto, fakes for ECS, SSM and tokens, controlled clock)."""

from __future__ import annotations

import pytest

from challenge_lambda.launcher import (
    LaunchErrorKind,
    LaunchOutcomeUnknown,
    LaunchRejected,
    LaunchResult,
    RunTaskRequest,
)
from challenge_lambda.processor import (
    InFlightElsewhere,
    RecordFailed,
    RecordOutcome,
)
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import run_id
from mm_contracts.names import client_token
from tests.conftest import Clock
from tests.unit.challenge.helpers import (
    CHALLENGE_ID,
    V5_PHASE,
    routed_submission,
)
from tests.unit.challenge.test_processor import LEASE_SECONDS, MAX_RECEIVE, World, v5_world


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock) -> World:
    return v5_world(status_table, clock)


# ------------------------------------------------------------------ ambiguous outcomes
def test_ambiguous_runtask_keeps_the_lease_and_the_retry_reuses_the_token(world: World) -> None:
    submission = routed_submission()
    world.launcher.script.append(LaunchOutcomeUnknown("ReadTimeoutError", "RunTask transport error: read timeout"))

    with pytest.raises(RecordFailed):
        world.deliver(submission)
    record = world.record(submission)
    assert record.state is SubmissionState.LAUNCHING
    assert record.lease_until == int(world.clock.now) + LEASE_SECONDS
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {"ReadTimeoutError": 1}

    # A duplicate delivery while the lease is live does not call RunTask, and is handed back to the queue
    # (it may be a copy of the very message whose retry must still happen).
    with pytest.raises(InFlightElsewhere):
        world.deliver(submission)
    assert len(world.launcher.requests) == 1

    world.clock.advance(LEASE_SECONDS + 1)  # the SQS retry comes after the visibility timeout
    assert world.deliver(submission, receive_count=2) is RecordOutcome.LAUNCHED

    token = client_token(submission.submission_id, V5_PHASE, 1)
    assert world.launcher.tokens == [token, token]
    assert world.record(submission).launch_attempt == 1


def test_an_ambiguous_attempt_keeps_its_token_through_a_later_refusal(world: World) -> None:
    """Defect 1: a 5xx can follow a started task; a refused retry proves nothing about that first call."""
    submission = routed_submission()
    world.launcher.script += [
        LaunchOutcomeUnknown("ServerException", "ServerException (HTTP 500): internal error"),
        LaunchRejected("AccessDeniedException", "AccessDeniedException: denied", LaunchErrorKind.PERMANENT),
    ]

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=1)
    assert world.record(submission).launch_ambiguous is True
    world.clock.advance(180)
    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=2)
    record = world.record(submission)
    assert (record.state, record.launch_ambiguous) == (SubmissionState.LAUNCH_FAILED, True)
    world.clock.advance(180)
    assert world.deliver(submission, receive_count=3) is RecordOutcome.LAUNCHED

    token = client_token(submission.submission_id, V5_PHASE, 1)
    assert world.launcher.tokens == [token, token, token]  # ECS answers the first call's task, if it started one
    record = world.record(submission)
    assert (record.state, record.launch_attempt, record.launch_ambiguous) == (SubmissionState.LAUNCHED, 1, False)


def test_a_throttled_retry_of_an_ambiguous_attempt_stays_in_sqs_and_keeps_its_token(world: World) -> None:
    """An ambiguous attempt is never requeued (its task may run): a throttle is retried through SQS, same token."""
    submission = routed_submission()
    world.launcher.script += [
        LaunchOutcomeUnknown("ServerException", "ServerException (HTTP 500): internal error"),
        LaunchRejected("Throttling", "ThrottlingException: Rate exceeded", LaunchErrorKind.THROTTLED),
    ]
    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=1)
    world.clock.advance(180)

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=2)
    record = world.record(submission)
    assert (record.state, record.launch_attempt, record.launch_ambiguous) == (SubmissionState.LAUNCH_FAILED, 1, True)
    world.clock.advance(180)

    assert world.deliver(submission, receive_count=3) is RecordOutcome.LAUNCHED
    token = client_token(submission.submission_id, V5_PHASE, 1)
    assert world.launcher.tokens == [token, token, token]


def test_failures_after_an_ambiguous_attempt_settle_the_token(world: World) -> None:
    """failures[] means ECS evaluated this clientToken and placed nothing: the next attempt may take a new one."""
    submission = routed_submission()
    world.launcher.script += [
        LaunchOutcomeUnknown("ReadTimeoutError", "RunTask transport error: read timeout"),
        LaunchRejected(
            "RESOURCE:MEMORY", "RunTask failures[]: RESOURCE:MEMORY", LaunchErrorKind.TRANSIENT, token_settled=True
        ),
    ]

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=1)
    world.clock.advance(180)
    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=2)
    world.clock.advance(180)
    assert world.deliver(submission, receive_count=3) is RecordOutcome.LAUNCHED

    first, second = (
        client_token(submission.submission_id, V5_PHASE, 1),
        client_token(submission.submission_id, V5_PHASE, 2),
    )
    assert world.launcher.tokens == [first, first, second]


def test_ambiguous_outcome_on_the_last_receive_is_dead_lettered_and_a_redrive_reuses_the_token(world: World) -> None:
    """Defect 3: the item shows its true state (not LAUNCHING forever); a redrive cannot start a second task."""
    submission = routed_submission()
    world.launcher.script.append(LaunchOutcomeUnknown("ServerException", "ServerException (HTTP 500)"))

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=MAX_RECEIVE)
    record = world.record(submission)
    assert (record.state, record.launch_ambiguous) == (SubmissionState.DEAD_LETTERED, True)
    assert "launch outcome unknown" in (record.reason or "")
    assert record.lease_until is None
    assert record.deadline_at is None

    world.clock.advance(3600)  # an operator redrives the DLQ
    assert world.deliver(submission, receive_count=1) is RecordOutcome.LAUNCHED
    token = client_token(submission.submission_id, V5_PHASE, 1)
    assert world.launcher.tokens == [token, token]


def test_unexpected_launcher_exception_is_treated_as_ambiguous(world: World) -> None:
    submission = routed_submission()
    world.launcher.script.append(RuntimeError("boom"))

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission)

    assert raised.value.reason_code == "RuntimeError"
    assert world.record(submission).state is SubmissionState.LAUNCHING


def test_adopted_conflict_task_is_recorded_as_launched(world: World) -> None:
    submission = routed_submission()
    task_arn = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/feedfacefeedfacefeedfacefeedface"
    world.launcher.script.append(
        LaunchResult(
            task_arn=task_arn, cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers", adopted=True
        )
    )

    assert world.deliver(submission) is RecordOutcome.LAUNCHED
    assert world.record(submission).task_arn == task_arn


def test_stopped_event_overtaking_the_launch_is_kept(world: World) -> None:
    submission = routed_submission()

    def launch_and_finish_at_once(request: RunTaskRequest) -> LaunchResult:
        task_arn = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0badc0de0badc0de0badc0de0badc0de"
        world.store.record_outcome(
            run_id(submission.submission_id, V5_PHASE),
            CHALLENGE_ID,
            Outcome(code=OutcomeCode.FAILED, test_status=TestStatus.FAILED, reason="exit 1", task_arn=task_arn),
            report_required=True,
            launch_attempt=1,  # the event names the attempt the item is on (MM_LAUNCH_ATTEMPT)
        )
        return LaunchResult(task_arn=task_arn, cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers")

    world.launcher.script.append(launch_and_finish_at_once)

    assert world.deliver(submission) is RecordOutcome.LAUNCHED
    assert world.record(submission).state is SubmissionState.FAILED
