"""challenge_lambda.processor: a v6 run that cannot be started is handed on for its terminal summation (086).

The real StatusStore on moto DynamoDB; the launcher, SSM and Lambda are fakes (see test_processor_phases)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from challenge_lambda.launcher import (
    LaunchErrorKind,
    LaunchOutcomeUnknown,
    LaunchRejected,
    LaunchResult,
    RunTaskRequest,
)
from challenge_lambda.processor import RecordFailed, RecordOutcome
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import run_id
from mm_contracts.models.report_due import report_due_event
from mm_contracts.names import client_token
from tests.conftest import Clock
from tests.unit.challenge.helpers import V5_PHASE, config_document, env_of, log_lines, routed_submission, v6_submission
from tests.unit.challenge.test_processor_phases import (
    COMPLETION_FUNCTION,
    EXAMPLE,
    EXAMPLE_TASK,
    MAX_RECEIVE,
    PROVISIONAL,
    World,
    _world,
)


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock) -> World:
    return _world(status_table, clock)


def _no_capacity() -> LaunchRejected:
    return LaunchRejected(
        "RESOURCE:CPU", "RunTask failures[]: RESOURCE:CPU", LaunchErrorKind.TRANSIENT, token_settled=True
    )


def _refuse_example(world: World) -> Callable[[RunTaskRequest], LaunchResult]:
    def answer(request: RunTaskRequest) -> LaunchResult:
        if env_of(request)["MM_PHASE"] == "EXAMPLE":
            raise _no_capacity()
        return LaunchResult(task_arn=EXAMPLE_TASK.replace("e0e0", "f1f1"), cluster_arn=world.launcher.cluster_arn)

    return answer


def test_the_last_receive_of_an_unstartable_v6_run_hands_it_on_for_its_summation(world: World) -> None:
    submission = v6_submission()
    example = run_id(submission.submission_id, EXAMPLE)
    world.launcher.script += [_refuse_example(world)] * 2 + [_no_capacity()] * (MAX_RECEIVE - 1)

    for receive in range(1, MAX_RECEIVE):
        with pytest.raises(RecordFailed):
            world.deliver(submission, receive_count=receive)
    assert world.lambda_.invocations == []  # retried from the queue: nothing owed yet
    assert world.run(submission, EXAMPLE).report_status is None

    with pytest.raises(RecordFailed):  # the message still goes to the DLQ, for a redrive
        world.deliver(submission, receive_count=MAX_RECEIVE)

    record = world.run(submission, EXAMPLE)
    assert (record.state, record.report_status, record.test_status) == (
        SubmissionState.DEAD_LETTERED,
        ReportStatus.PENDING,
        "FAILED",
    )
    assert world.lambda_.payloads() == [report_due_event(example)]
    assert world.lambda_.invocations[0]["FunctionName"] == COMPLETION_FUNCTION
    assert world.lambda_.invocations[0]["InvocationType"] == "Event"
    assert world.run(submission, PROVISIONAL).state is SubmissionState.LAUNCHED  # untouched
    failed = [line for line in log_lines(world.logs) if line["message"] == "launch failed; message back to the queue"]
    assert [line["report_due"] for line in failed] == [False] * (MAX_RECEIVE - 1) + [True]


def test_a_redriven_unstartable_run_launches_with_a_new_token(world: World) -> None:
    submission = v6_submission(phase=EXAMPLE)
    world.launcher.script += [_no_capacity()]
    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=MAX_RECEIVE)
    world.clock.advance(3600)  # the report was sent and settled long ago; an operator redrives the DLQ
    world.store.claim_report(run_id(submission.submission_id, EXAMPLE), lease_seconds=120)
    world.store.mark_reported(run_id(submission.submission_id, EXAMPLE), response_summary="summation S created")

    assert world.deliver(submission) is RecordOutcome.LAUNCHED

    record = world.run(submission, EXAMPLE)
    assert world.launcher.tokens[-1] == client_token(submission.submission_id, "EXAMPLE", 2)
    assert (record.state, record.report_status, record.test_status) == (SubmissionState.LAUNCHED, None, None)


def test_an_ambiguous_last_launch_of_a_v6_run_is_left_to_the_sweeper(world: World) -> None:
    submission = v6_submission(phase=EXAMPLE)
    world.launcher.script += [LaunchOutcomeUnknown("ServerException", "RunTask 500")]

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=MAX_RECEIVE)

    record = world.run(submission, EXAMPLE)
    assert (record.state, record.launch_ambiguous, record.report_status) == (SubmissionState.DEAD_LETTERED, True, None)
    assert world.lambda_.invocations == []


def test_a_v5_run_that_cannot_start_is_left_for_the_operator(world: World) -> None:
    world.set_config(config_document())
    submission = routed_submission()
    world.launcher.script += [_no_capacity()]

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=MAX_RECEIVE)

    record = world.run(submission, V5_PHASE)
    assert (record.state, record.report_status, record.deadline_at) == (SubmissionState.DEAD_LETTERED, None, None)
    assert world.lambda_.invocations == []
