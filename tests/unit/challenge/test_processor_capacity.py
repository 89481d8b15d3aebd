"""challenge_lambda.processor under capacity: enqueue, dispatch, pacing (decisions 093, 094; supersede: 095,
`test_processor_supersede.py`).

The real StatusStore and CapacityStore on moto DynamoDB; the launcher, SSM, SQS and Lambda are fakes; the clock is
controlled (a pacing sleep advances it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from challenge_lambda.launcher import LaunchErrorKind, LaunchRejected
from challenge_lambda.processor import PACE_MAX_WAITS, RecordFailed, RecordOutcome
from mm_capacity.store import CapacityStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import client_token
from tests.conftest import Clock
from tests.unit.challenge.helpers import (
    CAPACITY_PARAMETER_NAME,
    CAPACITY_TABLE,
    CHALLENGE_ID,
    CHALLENGE_QUEUE_URL,
    FakeSleep,
    capacity_document,
    config_document,
    log_lines,
    phases_of,
    routed_submission,
    v6_config_document,
    v6_submission,
)
from tests.unit.challenge.test_processor_phases import MAX_RECEIVE, World, _world

EXAMPLE, PROVISIONAL = ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL
T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


@dataclass
class Capacity:
    world: World
    capacity: CapacityStore

    def deliver(self, body: RoutedSubmission, *, receive_count: int = 1, advance: float = 1.0) -> RecordOutcome:
        """One delivery, a second after the last one (so enqueue times, and so queue order, are distinct)."""
        self.world.clock.advance(advance)
        return self.world.deliver(body, receive_count=receive_count)

    def caps(self, *, v6: bool = True, **capacity: Any) -> None:
        """The challenge config with these `capacity` fields (wire names)."""
        document = v6_config_document(capacity=capacity) if v6 else config_document(capacity=capacity)
        self.world.set_config(document)
        self.world.processor.configs.invalidate()

    def state(self, submission: RoutedSubmission, phase: ScoringPhase) -> SubmissionState:
        return self.world.run(submission, phase).state

    def finish(self, submission: RoutedSubmission, phase: ScoringPhase) -> None:
        """What the completion function does on a STOPPED event: the outcome, then the slot released."""
        record = self.world.run(submission, phase)
        assert record.task_arn is not None
        recorded = self.world.store.record_outcome(
            record.run_id,
            CHALLENGE_ID,
            Outcome(
                code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exit 0", task_arn=record.task_arn
            ),
            report_required=False,
        )
        assert recorded.record is not None
        assert self.capacity.release(recorded.record)

    def sent_run_ids(self) -> list[str]:
        return [run_id(body.submission_id, body.phase) for body in self.world.sqs.bodies() if body.phase is not None]


@pytest.fixture
def cap(status_table: str, capacity_table: str, clock: Clock) -> Capacity:
    return capacity_world(status_table, clock)


def capacity_world(status_table: str, clock: Clock) -> Capacity:
    """The v6 processor world with the capacity store beside it."""
    return Capacity(_world(status_table, clock), CapacityStore(CAPACITY_TABLE, status_table, clock=clock))


def member_submission(member_id: int, minutes: int, phase: ScoringPhase | None = EXAMPLE) -> RoutedSubmission:
    """A v6 submission of `member_id`, made `minutes` after T0 (one run when `phase` is given)."""
    return v6_submission(phase=phase).model_copy(
        update={"member_id": member_id, "created": T0 + timedelta(minutes=minutes)}
    )


def no_capacity() -> LaunchRejected:
    """RunTask failures[]: a definite failure (ECS evaluated the clientToken and placed nothing)."""
    return LaunchRejected("RESOURCE:CPU", "failures[]: RESOURCE:CPU", LaunchErrorKind.TRANSIENT, token_settled=True)


def v5_member_submission(member_id: int, minutes: int) -> RoutedSubmission:
    return routed_submission().model_copy(update={"member_id": member_id, "created": T0 + timedelta(minutes=minutes)})


# ------------------------------------------------------------------ the flow (common.md cases 1-6)
def test_a_run_with_room_is_enqueued_admitted_and_launched_under_its_own_message(cap: Capacity) -> None:
    submission = member_submission(1, 0)

    assert cap.deliver(submission) is RecordOutcome.LAUNCHED

    record = cap.world.run(submission, EXAMPLE)
    assert record.state is SubmissionState.LAUNCHED
    assert record.slot_pools  # it holds its slot (ENV, CHALLENGE) until its STOPPED event
    assert record.wait_order is not None
    assert cap.world.sqs.sent == []  # no extra hop through the queue when nothing contends
    assert len(cap.world.launcher.requests) == 1
    metrics = cap.world.metrics
    assert (phases_of(metrics, Metric.RUNS_ENQUEUED), metrics.total(Metric.RUNS_ENQUEUED)) == ({"EXAMPLE": 1}, 1)
    pools = cap.capacity.pools()
    assert (pools.env.used, pools.challenges[CHALLENGE_ID].used) == (1, 1)


def test_a_full_cap_leaves_the_run_waiting_with_its_position_and_acknowledges_the_message(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=1)
    first, second, third = member_submission(1, 0), member_submission(2, 1), member_submission(3, 2)

    outcomes = [cap.deliver(first), cap.deliver(second), cap.deliver(third, receive_count=MAX_RECEIVE)]

    assert outcomes == [RecordOutcome.LAUNCHED, RecordOutcome.WAITING, RecordOutcome.WAITING]  # acknowledged
    assert len(cap.world.launcher.requests) == 1
    for submission, position in ((second, 1), (third, 2)):
        record = cap.world.run(submission, EXAMPLE)
        assert (record.state, record.slot_pools, record.lease_until) == (SubmissionState.WAITING, [], None)
        assert record.expires_at is None  # a TTL never drops a waiting run
        assert record.wait_order is not None
        assert cap.capacity.queue_position(CHALLENGE_ID, record.wait_order) == position
    waiting = [line for line in log_lines(cap.world.logs) if line["message"].startswith("run waits for capacity")]
    # The log names the wait order (the queue's sort key), not the position: no Query per waiting run (114).
    orders = [cap.world.run(s, EXAMPLE).wait_order for s in (second, third)]
    assert [line["wait_order"] for line in waiting] == orders
    assert {line["blocked_by"] for line in waiting} == {f"CHALLENGE#{CHALLENGE_ID}"}
    assert cap.world.metrics.total(Metric.DEAD_LETTERED) == 0


def test_a_duplicate_delivery_of_a_waiting_run_dispatches_again_and_launches_once_a_slot_is_free(
    cap: Capacity,
) -> None:
    cap.caps(maxRunningTasks=1)
    running, waiting = member_submission(1, 0), member_submission(2, 1)
    cap.deliver(running)
    assert cap.deliver(waiting) is RecordOutcome.WAITING

    assert cap.deliver(waiting, receive_count=2) is RecordOutcome.WAITING  # still full: nothing changes
    assert len(cap.world.launcher.requests) == 1
    cap.finish(running, EXAMPLE)
    assert cap.deliver(waiting) is RecordOutcome.LAUNCHED  # a copy arriving after the slot freed
    assert cap.deliver(waiting) is RecordOutcome.DUPLICATE

    assert len(cap.world.launcher.requests) == 2
    assert cap.world.launcher.tokens[-1] == client_token(waiting.submission_id, "EXAMPLE", 1)
    assert cap.state(waiting, EXAMPLE) is SubmissionState.LAUNCHED


def test_another_admitted_run_is_sent_to_the_own_queue_and_its_message_launches_it_once(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=1)
    running, queued, newcomer = member_submission(1, 0), member_submission(2, 1), member_submission(3, 2)
    cap.deliver(running)
    cap.deliver(queued)
    cap.finish(running, EXAMPLE)  # a slot is free, but no dispatch ran yet

    assert cap.deliver(newcomer) is RecordOutcome.WAITING  # the older head of the queue takes the slot

    assert cap.sent_run_ids() == [run_id(queued.submission_id, EXAMPLE)]
    assert cap.world.sqs.sent[0]["QueueUrl"] == CHALLENGE_QUEUE_URL
    assert (cap.state(queued, EXAMPLE), cap.state(newcomer, EXAMPLE)) == (
        SubmissionState.ADMITTED,
        SubmissionState.WAITING,
    )
    [body] = cap.world.sqs.bodies()
    # The sent message is delivered twice (SQS at-least-once): one RunTask.
    assert cap.deliver(body) is RecordOutcome.LAUNCHED
    assert cap.deliver(body, receive_count=2) is RecordOutcome.DUPLICATE
    assert cap.world.launcher.tokens.count(client_token(queued.submission_id, "EXAMPLE", 1)) == 1
    assert cap.state(queued, EXAMPLE) is SubmissionState.LAUNCHED


def test_a_definite_dead_letter_frees_its_slot_for_the_next_waiting_run(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=1)
    doomed, queued = member_submission(1, 0), member_submission(2, 1)
    cap.world.launcher.script.append(no_capacity())
    with pytest.raises(RecordFailed):
        cap.deliver(doomed)  # LAUNCH_FAILED: it keeps its slot for the SQS retry
    assert cap.deliver(queued) is RecordOutcome.WAITING
    cap.world.launcher.script.append(no_capacity())

    with pytest.raises(RecordFailed):
        cap.deliver(doomed, receive_count=MAX_RECEIVE)

    record = cap.world.run(doomed, EXAMPLE)
    assert (record.state, record.launch_ambiguous) == (SubmissionState.DEAD_LETTERED, False)
    assert cap.capacity.pools().challenges[CHALLENGE_ID].holders.keys() == {run_id(queued.submission_id, EXAMPLE)}
    assert cap.sent_run_ids() == [run_id(queued.submission_id, EXAMPLE)]


def test_an_ambiguous_dead_letter_keeps_its_slot(cap: Capacity) -> None:
    from challenge_lambda.launcher import LaunchOutcomeUnknown

    cap.caps(maxRunningTasks=1)
    submission = member_submission(1, 0)
    cap.world.launcher.script.append(LaunchOutcomeUnknown("ServerException", "RunTask 500"))

    with pytest.raises(RecordFailed):
        cap.deliver(submission, receive_count=MAX_RECEIVE)

    assert cap.state(submission, EXAMPLE) is SubmissionState.DEAD_LETTERED
    assert run_id(submission.submission_id, EXAMPLE) in cap.capacity.pools().challenges[CHALLENGE_ID].holders
    assert cap.world.sqs.sent == []


def test_a_redriven_ambiguous_dead_letter_holding_its_slot_retries_its_token_at_once(cap: Capacity) -> None:
    """Never WAITING while its first task may run: a wait could outlive ECS's 24 h clientToken and start a second."""
    from challenge_lambda.launcher import LaunchOutcomeUnknown

    cap.caps(maxRunningTasks=1)
    submission = member_submission(1, 0)
    cap.world.launcher.script.append(LaunchOutcomeUnknown("ServerException", "RunTask 500"))
    with pytest.raises(RecordFailed):
        cap.deliver(submission, receive_count=MAX_RECEIVE)

    assert cap.deliver(submission) is RecordOutcome.LAUNCHED  # the operator's redrive

    token = client_token(submission.submission_id, EXAMPLE, 1)
    assert cap.world.launcher.tokens == [token, token]
    record = cap.world.run(submission, EXAMPLE)
    assert record.state is SubmissionState.LAUNCHED
    assert "WAITING" not in [entry.state for entry in record.history]  # launched without waiting, never requeued
    assert run_id(submission.submission_id, EXAMPLE) in cap.capacity.pools().env.holders


def test_an_ambiguous_retry_skips_the_pace_and_a_throttle_sends_it_back_to_sqs_holding_its_slot(cap: Capacity) -> None:
    from challenge_lambda.launcher import LaunchOutcomeUnknown

    cap.world.ssm.put(CAPACITY_PARAMETER_NAME, capacity_document(runTaskPerSecond=1))
    stalled = FakeSleep()
    cap.world.processor.admission.sleep = stalled
    submission = member_submission(1, 0)
    cap.world.launcher.script += [
        LaunchOutcomeUnknown("ServerException", "RunTask 500"),
        LaunchRejected("Throttling", "ThrottlingException: Rate exceeded", LaunchErrorKind.THROTTLED),
    ]
    with pytest.raises(RecordFailed):
        cap.deliver(submission)
    cap.world.clock.advance(180)
    assert cap.capacity.pace(1)  # this second's one RunTask token is spent

    with pytest.raises(RecordFailed):  # back to SQS, as before capacity: never WAITING with an ambiguous token
        cap.deliver(submission, receive_count=2, advance=0)

    record = cap.world.run(submission, EXAMPLE)
    assert (record.state, record.launch_attempt, record.launch_ambiguous) == (SubmissionState.LAUNCH_FAILED, 1, True)
    assert stalled.sleeps == []  # the known token skips the pace
    assert run_id(submission.submission_id, EXAMPLE) in cap.capacity.pools().env.holders
    cap.world.clock.advance(180)
    assert cap.deliver(submission, receive_count=3) is RecordOutcome.LAUNCHED
    token = client_token(submission.submission_id, EXAMPLE, 1)
    assert cap.world.launcher.tokens == [token, token, token]


def test_a_redriven_dead_letter_waits_in_its_place_when_the_cap_is_full(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=1)
    doomed, running = member_submission(1, 0), member_submission(2, 1)
    cap.world.launcher.script.append(no_capacity())
    with pytest.raises(RecordFailed):
        cap.deliver(doomed, receive_count=MAX_RECEIVE)
    original_order = cap.world.run(doomed, EXAMPLE).wait_order
    assert cap.deliver(running) is RecordOutcome.LAUNCHED

    assert cap.deliver(doomed) is RecordOutcome.WAITING  # the operator's redrive

    record = cap.world.run(doomed, EXAMPLE)
    assert (record.state, record.wait_order) == (SubmissionState.WAITING, original_order)


# ------------------------------------------------------------------ the environment's caps unusable
def test_unusable_environment_caps_leave_the_run_waiting_and_never_launch_or_dead_letter(cap: Capacity) -> None:
    cap.world.ssm.values.pop(CAPACITY_PARAMETER_NAME)
    submission = member_submission(1, 0)

    assert cap.deliver(submission, receive_count=MAX_RECEIVE) is RecordOutcome.WAITING

    assert cap.state(submission, EXAMPLE) is SubmissionState.WAITING
    assert cap.world.launcher.requests == []
    assert cap.world.metrics.total(Metric.CAPACITY_CONFIG_ERRORS) == 1
    assert cap.world.metrics.total(Metric.DEAD_LETTERED) == 0
    assert any(line["message"].startswith("capacity config unusable") for line in log_lines(cap.world.logs))

    cap.world.ssm.put(CAPACITY_PARAMETER_NAME, capacity_document())
    assert cap.deliver(submission) is RecordOutcome.LAUNCHED  # fixed: the next dispatch admits it


def test_an_invalid_environment_caps_document_is_a_config_error_too(cap: Capacity) -> None:
    cap.world.ssm.put(CAPACITY_PARAMETER_NAME, capacity_document(maxRunningTasks=-1))

    assert cap.deliver(member_submission(1, 0)) is RecordOutcome.WAITING

    assert cap.world.metrics.total(Metric.CAPACITY_CONFIG_ERRORS) == 1
    assert cap.world.launcher.requests == []


# ------------------------------------------------------------------ pacing
def test_a_spent_pace_waits_for_the_next_second_then_launches(cap: Capacity) -> None:
    cap.world.ssm.put(CAPACITY_PARAMETER_NAME, capacity_document(runTaskPerSecond=1))
    submission = member_submission(1, 0, phase=None)  # EXAMPLE and PROVISIONAL: two RunTasks

    assert cap.deliver(submission) is RecordOutcome.LAUNCHED

    assert len(cap.world.launcher.requests) == 2
    [slept] = cap.world.processor.admission.sleep.sleeps  # type: ignore[attr-defined]
    assert 0 < slept <= 1  # to the next second, once


def test_no_pace_token_within_the_wait_requeues_the_run_never_a_failure(cap: Capacity) -> None:
    cap.world.ssm.put(CAPACITY_PARAMETER_NAME, capacity_document(runTaskPerSecond=1))
    stalled = FakeSleep()  # time does not move: the second's one token stays spent
    cap.world.processor.admission.sleep = stalled
    second = member_submission(2, 1)
    cap.world.clock.advance(1)
    assert cap.capacity.pace(1)  # this second's one RunTask token is spent

    assert cap.deliver(second, receive_count=MAX_RECEIVE, advance=0) is RecordOutcome.WAITING

    record = cap.world.run(second, EXAMPLE)
    assert (record.state, record.slot_pools, record.launch_attempt) == (SubmissionState.WAITING, [], 1)
    assert len(stalled.sleeps) == PACE_MAX_WAITS
    assert cap.world.launcher.requests == []
    assert cap.world.metrics.reasons(Metric.LAUNCHES_THROTTLED) == {"Paced": 1}
    assert cap.world.metrics.total(Metric.DEAD_LETTERED) == 0
    assert cap.world.metrics.reasons(Metric.LAUNCH_FAILURES) == {}

    cap.world.clock.advance(1)
    assert cap.deliver(second) is RecordOutcome.LAUNCHED  # its next dispatch: attempt 2, never used before
    assert cap.world.launcher.tokens[-1] == client_token(second.submission_id, "EXAMPLE", 2)


def test_an_ecs_throttle_requeues_the_run_and_frees_its_slot_for_the_queue(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=1)
    throttled, queued = member_submission(1, 0), member_submission(2, 1)
    cap.world.launcher.script.append(
        LaunchRejected("Throttling", "ThrottlingException: Rate exceeded", LaunchErrorKind.THROTTLED)
    )

    assert cap.deliver(throttled, receive_count=MAX_RECEIVE) is RecordOutcome.WAITING

    assert cap.state(throttled, EXAMPLE) is SubmissionState.WAITING
    assert cap.capacity.pools().challenges[CHALLENGE_ID].used == 0
    assert cap.world.metrics.reasons(Metric.LAUNCHES_THROTTLED) == {"Throttled": 1}
    assert cap.deliver(queued) is RecordOutcome.WAITING  # the requeued run kept its place: it goes first
    assert cap.sent_run_ids() == [run_id(throttled.submission_id, EXAMPLE)]
