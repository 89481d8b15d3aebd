"""Capacity at the end of a run (decision 096): the slot is freed once and the room goes to a waiting run anywhere in
the environment; a superseded run's stopped task ends CANCELLED (decision 095).

Real handler, StatusStore and CapacityStore on moto DynamoDB, moto SQS for the challenge queues, moto SSM for the
environment's caps (`capacity_world`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from completion_lambda import wiring as completion_wiring
from mm_capacity.store import CapacityStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.outcome import OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform
from mm_contracts.models.report_due import report_due_event
from tests.conftest import Clock
from tests.integration.completion.capacity_world import (
    OTHER_CHALLENGE,
    SUPERSEDED_STOP,
    TRANSIENT_START_FAILURE,
    World,
    capacity_world,
    config_of,
)
from tests.integration.completion.conftest import DEFAULT_PHASE
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock, lambda_context: Any) -> Iterator[World]:
    yield from capacity_world(status_table, capacity_table, clock, lambda_context)


def test_an_outcome_frees_the_slot_and_another_challenges_waiting_run_is_admitted_and_sent(world: World) -> None:
    # Given the environment's only slot held by a run of the test challenge, and a run of another challenge waiting
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)
    theirs = world.submission(OTHER_CHALLENGE, member_id=7)
    theirs_id = world.waiting(theirs)
    assert world.holders() == {mine_id}

    # When the task stops
    result = world.invoke(world.stopped(mine, arn, exit_code=1))

    # Then the outcome is recorded and reported, the slot moved to the waiting run, and its message went to its
    # own challenge's queue (narrowed to its phase), none to the finished run's
    assert (result["disposition"], result["outcome"]) == ("reported", "FAILED")
    assert len(world.review_api.reviews_for(mine.submission_id)) == 1
    assert world.state(mine_id) is SubmissionState.FAILED
    assert world.state(theirs_id) is SubmissionState.ADMITTED
    assert world.holders() == {theirs_id}
    pools = world.capacity.pools()
    assert (pools.challenge(CHALLENGE_ID).used, pools.challenge(OTHER_CHALLENGE).used) == (0, 1)
    sent = world.messages(OTHER_CHALLENGE)
    assert [(m.submission_id, m.phase) for m in sent] == [(theirs.submission_id, DEFAULT_PHASE)]
    assert world.messages(CHALLENGE_ID) == []


def test_a_duplicate_stopped_event_frees_the_slot_once(world: World) -> None:
    # Given a run holding the only slot and two runs waiting behind it
    mine = world.submission(CHALLENGE_ID)
    _, arn = world.launched(mine)
    first = world.waiting(world.submission(OTHER_CHALLENGE, member_id=7))
    second = world.waiting(world.submission(OTHER_CHALLENGE, member_id=8))
    event = world.stopped(mine, arn, exit_code=1)

    # When the STOPPED event arrives twice
    world.invoke(event)
    duplicate = world.invoke(event)

    # Then the second delivery freed nothing: the first waiting run holds the slot, the second still waits
    assert duplicate["disposition"] == "duplicate"
    assert world.holders() == {first}
    assert world.capacity.pools().env.used == 1
    assert (world.state(first), world.state(second)) == (SubmissionState.ADMITTED, SubmissionState.WAITING)


def test_a_relaunch_after_a_transient_start_failure_keeps_its_slot(world: World) -> None:
    # Given a run holding the only slot and another waiting
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)
    theirs_id = world.waiting(world.submission(OTHER_CHALLENGE, member_id=7))

    # When its task fails to start for a transient reason
    result = world.invoke(
        world.stopped(mine, arn, stop_code="TaskFailedToStart", stopped_reason=TRANSIENT_START_FAILURE)
    )

    # Then it is relaunched through its own queue and keeps the slot; the waiting run keeps waiting
    assert result["disposition"] == "relaunched"
    assert world.state(mine_id) is SubmissionState.LAUNCH_FAILED
    assert world.holders() == {mine_id}
    assert world.state(theirs_id) is SubmissionState.WAITING
    record = world.status.get(mine_id)
    assert record is not None
    assert (record.start_relaunches, record.relaunch_pending) == (1, False)  # the (delayed) relaunch was sent


def test_a_superseded_v5_task_stopped_ends_cancelled_without_a_review_and_frees_its_slot(world: World) -> None:
    # Given a running v5 run whose cancel was requested (its member submitted again), and a run waiting
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)
    assert world.capacity.request_cancel_running(mine_id) is not None
    theirs_id = world.waiting(world.submission(OTHER_CHALLENGE, member_id=7))

    # When its task stops for the cancel
    result = world.invoke(world.stopped(mine, arn, stop_code="UserInitiated", stopped_reason=SUPERSEDED_STOP))

    # Then the run is CANCELLED with the supersede's reason, no v5 review is posted (none has a cancelled status),
    # and its slot went to the waiting run
    assert (result["disposition"], result["outcome"]) == ("not_required", "CANCELLED")
    record = world.status.get(mine_id)
    assert record is not None
    assert (record.state, record.test_status, record.report_status) == (
        SubmissionState.CANCELLED,
        TestStatus.CANCELLED.value,
        ReportStatus.NOT_REQUIRED,
    )
    assert record.reason == SUPERSEDED_STOP
    assert world.review_api.posts == 0
    assert world.metrics.reasons(Metric.RUNS_CANCELLED) == {"superseded_task_stopped": 1}
    assert world.holders() == {theirs_id}


def test_an_operator_stop_without_a_cancel_request_is_not_a_cancel(world: World) -> None:
    mine = world.submission(CHALLENGE_ID)
    _, arn = world.launched(mine)

    result = world.invoke(world.stopped(mine, arn, stop_code="UserInitiated", stopped_reason="operator: bad image"))

    assert (result["disposition"], result["outcome"]) == ("reported", "FAILED")
    assert world.metrics.reasons(Metric.RUNS_CANCELLED) == {}


def test_a_superseded_v6_task_stopped_is_reported_as_a_cancelled_summation(world: World) -> None:
    # Given a running v6 run whose cancel was requested
    world.configs.configs[CHALLENGE_ID] = config_of(CHALLENGE_ID, platform=Platform.V6)
    mine = world.submission(CHALLENGE_ID, platform=Platform.V6)
    mine_id, arn = world.launched(mine)
    assert world.capacity.request_cancel_running(mine_id) is not None

    # When its task stops for the cancel
    result = world.invoke(world.stopped(mine, arn, stop_code="UserInitiated", stopped_reason=SUPERSEDED_STOP))

    # Then the phase's summation says CANCELLED, with no score
    assert (result["disposition"], result["outcome"]) == ("reported", "CANCELLED")
    [summation] = world.summations.of(mine.submission_id)
    assert summation["aggregateScore"] == -1
    assert summation["metadata"]["testStatus"] == "CANCELLED"
    assert summation["metadata"]["outcome"] == OutcomeCode.CANCELLED.value
    assert summation["metadata"]["taskArn"] == arn
    assert world.holders() == set()


def test_a_cancelled_waiting_v6_run_is_reported_by_its_report_due_event(world: World) -> None:
    # Given a waiting v6 run cancelled because its member submitted again (it never had a task)
    world.configs.configs[CHALLENGE_ID] = config_of(CHALLENGE_ID, platform=Platform.V6)
    mine = world.submission(CHALLENGE_ID, platform=Platform.V6)
    mine_id = world.waiting(mine)
    cancelled = world.capacity.cancel_waiting(mine_id, reason="Superseded by a newer submission")
    assert cancelled is not None
    assert cancelled.state is SubmissionState.CANCELLED

    # When the challenge processor's report-due event arrives
    result = world.invoke(report_due_event(mine_id))

    # Then a CANCELLED summation is posted for the phase, naming no task
    assert (result["disposition"], result["outcome"]) == ("reported", "CANCELLED")
    [summation] = world.summations.of(mine.submission_id)
    assert summation["metadata"]["testStatus"] == "CANCELLED"
    assert summation["metadata"]["taskArn"] is None
    assert summation["metadata"]["reason"] == "Superseded by a newer submission"
    assert summation[DEFAULT_PHASE.summation_flag] is True
    record = world.status.get(mine_id)
    assert record is not None
    assert record.report_status is ReportStatus.REPORTED


class _BrokenRelease(CapacityStore):
    def release(self, run: Any) -> bool:
        raise ConnectionError("DynamoDB unreachable (injected)")


def test_a_failed_release_loses_neither_the_outcome_nor_the_report(
    world: World, status_table: str, capacity_table: str
) -> None:
    broken = _BrokenRelease(capacity_table, status_table, clock=world.clock)
    deps = completion_wiring.dependencies()
    deps._capacity_store = broken  # the dependencies build the dispatcher from it on first use
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)

    result = world.invoke(world.stopped(mine, arn, exit_code=1))

    assert result["disposition"] == "reported"
    assert world.state(mine_id) is SubmissionState.FAILED
    assert world.metrics.reasons(Metric.CAPACITY_ERRORS) == {"release": 1}
    assert world.holders() == {mine_id}  # left for the sweeper's reconciler (run_not_holding)
