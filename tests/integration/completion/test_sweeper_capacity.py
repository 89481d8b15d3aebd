"""The sweeper as capacity's safety net (decision 096): a lost STOPPED event still frees its slot, leaked slots are
reconciled, an admitted run whose message was lost is sent again, a waiting run is admitted even when every trigger
was lost, a definite dead-letter frees its slot, and the capacity gauges are emitted every run.

moto DynamoDB/SQS/SSM and the real completion handler (`capacity_world`); ECS is the sweeper tests' `FakeEcs`
(stop times and exit codes moto cannot play); the sweeper's asynchronous invocations go to the completion handler.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import DEFAULT_LIVENESS_CHECK_SECONDS
from mm_capacity.store import ADMISSION_RESEND_SECONDS, AdmissionLimits, AdmitOutcome
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.outcome import SUPERSEDED_REASON, Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform
from sweeper_lambda import handler as timeout_sweeper
from sweeper_lambda import wiring as sweeper_wiring
from sweeper_lambda.capacity_passes import ADMISSION_DEAD_LETTER_REASON, ADMISSION_NEVER_CLAIMED, MAX_ADMISSION_RESENDS
from sweeper_lambda.wiring import SweeperDependencies
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.capacity_world import OTHER_CHALLENGE, World, capacity_world, config_of
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    FakeLambda,
    put_environment_capacity,
    sweeper_settings_for,
)
from tests.integration.completion.test_sweeper_describe_first import FakeEcs
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EVENT_GRACE = 600  # TimeoutSweeperSettings.event_grace_seconds (default)


class Sweeps:
    def __init__(self, world: World, status_table: str) -> None:
        self.world = world
        self.ecs = FakeEcs(world.clock)
        self.lam = FakeLambda(deliver=world.invoke)
        self.metrics = RecordingMetrics()
        sweeper_wiring.use_dependencies(
            SweeperDependencies(
                sweeper_settings_for(status_table, ecs_cluster_arns=(CLUSTER_ARN,)),
                store=world.status,
                ecs=self.ecs,
                lambda_client=self.lam,
                metrics_sink=self.metrics,
                capacity_store=world.capacity,
                config_source=world.configs,
                sqs=aws_clients.client("sqs"),
            )
        )

    def sweep(self) -> dict[str, Any]:
        result: dict[str, Any] = timeout_sweeper.handler({}, self.world.context)
        self.lam.run_pending()  # Lambda runs the asynchronous invocations the sweep made
        return result


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock, lambda_context: Any) -> Iterator[World]:
    yield from capacity_world(status_table, capacity_table, clock, lambda_context)


@pytest.fixture
def sweeps(world: World, status_table: str) -> Iterator[Sweeps]:
    yield Sweeps(world, status_table)
    sweeper_wiring.use_dependencies(None)


def test_a_lost_stopped_event_still_frees_its_slot_for_the_waiting_run(world: World, sweeps: Sweeps) -> None:
    # Given the only slot held by a run whose task exits while its STOPPED event is lost, and a run waiting
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)
    sweeps.ecs.run(submission_id=mine.submission_id, arn=arn)
    theirs = world.submission(OTHER_CHALLENGE, member_id=7)
    theirs_id = world.waiting(theirs)
    world.clock.advance(60)
    sweeps.ecs.exit(arn, 0)

    # When the sweeper looks at the run's next liveness check, after the event grace
    world.clock.advance(DEFAULT_LIVENESS_CHECK_SECONDS + EVENT_GRACE)
    result = sweeps.sweep()

    # Then its synthetic event recorded the outcome, freed the slot, and the waiting run was admitted and sent
    assert result["reconciled"] == 1
    assert world.state(mine_id) is SubmissionState.SUCCEEDED
    assert world.state(theirs_id) is SubmissionState.ADMITTED
    assert world.holders() == {theirs_id}
    assert [m.submission_id for m in world.messages(OTHER_CHALLENGE)] == [theirs.submission_id]


def test_a_slot_leaked_by_a_crash_after_the_outcome_is_reconciled_and_reused(world: World, sweeps: Sweeps) -> None:
    # Given a run whose outcome was recorded but whose release never happened (the function died in between)
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)
    outcome = Outcome(code=OutcomeCode.FAILED, test_status=TestStatus.FAILED, reason="scorer exited 1", task_arn=arn)
    recorded = world.status.record_outcome(mine_id, CHALLENGE_ID, outcome, report_required=False)
    assert recorded.record is not None
    assert recorded.record.state is SubmissionState.FAILED
    theirs_id = world.waiting(world.submission(OTHER_CHALLENGE, member_id=7))
    assert world.holders() == {mine_id}

    # When the sweeper runs
    result = sweeps.sweep()

    # Then the reconciler released the leaked slot (with a metric) and the same sweep admitted the waiting run
    assert result["slotsReconciled"] >= 1
    assert "run_not_holding" in sweeps.metrics.reasons(Metric.SLOTS_RECONCILED)
    assert result["runsAdmitted"] == 1
    assert world.holders() == {theirs_id}


def test_an_admitted_run_whose_message_was_lost_is_sent_again_once_per_deadline(world: World, sweeps: Sweeps) -> None:
    # Given a run admitted whose message never reached its queue
    theirs = world.submission(OTHER_CHALLENGE, member_id=7)
    theirs_id = world.waiting(theirs)
    [entry] = world.capacity.queue_entries(OTHER_CHALLENGE)
    limits = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=1, env_cpu_cap_units=None, cpu_units=1024)
    assert world.capacity.admit(entry, limits).outcome is AdmitOutcome.ADMITTED

    # When the sweeper runs before its admission deadline: nothing is sent
    assert sweeps.sweep()["admissionsResent"] == 0
    assert world.messages(OTHER_CHALLENGE) == []

    # When it runs after the deadline: the message is sent again and the deadline pushed
    world.clock.advance(ADMISSION_RESEND_SECONDS + 1)
    assert sweeps.sweep()["admissionsResent"] == 1
    assert [m.submission_id for m in world.messages(OTHER_CHALLENGE)] == [theirs.submission_id]
    record = world.status.get(theirs_id)
    assert record is not None
    assert record.deadline_at == int(world.clock.now) + ADMISSION_RESEND_SECONDS

    # and an immediate second sweep sends nothing more
    assert sweeps.sweep()["admissionsResent"] == 0


def test_a_waiting_run_with_room_is_admitted_by_the_sweep_when_every_trigger_was_lost(
    world: World, sweeps: Sweeps
) -> None:
    # Given a run waiting while the environment has room (the dispatch that should have admitted it never ran)
    theirs = world.submission(OTHER_CHALLENGE, member_id=7)
    theirs_id = world.waiting(theirs)

    # When the sweeper runs
    result = sweeps.sweep()

    # Then it admitted the run and sent its message to its challenge queue
    assert result["runsAdmitted"] == 1
    assert world.state(theirs_id) is SubmissionState.ADMITTED
    assert [m.submission_id for m in world.messages(OTHER_CHALLENGE)] == [theirs.submission_id]


def test_a_definite_dead_letter_by_the_sweeper_frees_the_slot_at_once(world: World, sweeps: Sweeps) -> None:
    # Given an admitted run whose launch definitely failed and whose message was never redelivered
    mine = world.submission(CHALLENGE_ID)
    mine_id = world.waiting(mine)
    [entry] = world.capacity.queue_entries(CHALLENGE_ID)
    limits = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=1, env_cpu_cap_units=None, cpu_units=1024)
    assert world.capacity.admit(entry, limits).outcome is AdmitOutcome.ADMITTED
    claim = world.status.claim_launch(mine, phase=entry.phase, scorer_type="example-scorer", lease_seconds=120)
    assert claim.granted
    assert world.status.mark_launch_failed(
        mine_id, attempt=claim.attempt, reason="InvalidParameter", dead_lettered=False
    )
    record = world.status.get(mine_id)
    assert record is not None
    assert record.deadline_at is not None
    world.clock.advance(record.deadline_at - world.clock.now + 1)

    # When the sweeper dead-letters it
    result = sweeps.sweep()

    # Then the slot is freed by the dead-letter itself (not left for the reconciler)
    assert world.state(mine_id) is SubmissionState.DEAD_LETTERED
    assert (result["launchesDeadLettered"], result["slotsReleased"], result["slotsReconciled"]) == (1, 1, 0)
    assert world.holders() == set()


def test_the_capacity_gauges_per_challenge_and_for_the_environment(world: World, sweeps: Sweeps) -> None:
    # Given the environment's only slot held by the test challenge, and two runs of another challenge waiting
    mine = world.submission(CHALLENGE_ID)
    _, arn = world.launched(mine)
    sweeps.ecs.run(submission_id=mine.submission_id, arn=arn)
    first = world.submission(OTHER_CHALLENGE, member_id=7)
    world.waiting(first)
    first_enqueued = world.clock.now - 1  # `waiting` advances the clock by 1 s after enqueueing
    world.waiting(world.submission(OTHER_CHALLENGE, member_id=8))
    world.clock.advance(100)

    # When the sweeper runs (its dispatch finds the environment full)
    result = sweeps.sweep()
    assert result["runsAdmitted"] == 0

    # Then each challenge's line, and the environment's (totals, the longest wait, full with runs waiting)
    gauge = sweeps.metrics.last_gauge
    assert [gauge(m, CHALLENGE_ID) for m in GAUGES] == [1, 0, 0, 0]
    oldest = world.clock.now - first_enqueued
    assert [gauge(m, OTHER_CHALLENGE) for m in GAUGES] == [0, 2, oldest, 0]
    assert [gauge(m) for m in GAUGES] == [1, 2, oldest, 1]


GAUGES = (Metric.RUNNING_TASKS, Metric.WAITING_RUNS, Metric.OLDEST_WAIT_SECONDS, Metric.CAPACITY_FULL)


def test_caps_a_full_pool_item_could_not_take_at_their_pace_are_applied_and_said_every_sweep(
    world: World, sweeps: Sweeps, caplog: pytest.LogCaptureFixture
) -> None:
    # Given caps written past `caps set` and the deploy, which refuse them (decision 125)
    put_environment_capacity(maxRunningTasks=500, runTaskPerSecond=20)
    world.clock.advance(120)  # past the caps cache
    world.waiting(world.submission(OTHER_CHALLENGE, member_id=7))

    # When the sweeper runs
    with caplog.at_level(logging.WARNING):
        result = sweeps.sweep()

    # Then it says why, with the numbers, and still applies them: the waiting run is admitted under the cap of 500
    [warning] = [
        r for r in caplog.records if r.getMessage() == "environment caps outrun the capacity pool item at their pace"
    ]
    assert warning.levelno == logging.WARNING
    assert "2,240 DynamoDB write units a second" in warning.why  # type: ignore[attr-defined]
    assert "maxRunningTasks can be at most 218" in warning.why  # type: ignore[attr-defined]
    assert result["runsAdmitted"] == 1


def test_the_task_of_a_requeued_ambiguous_attempt_is_kept_while_it_waits_and_adopted_once_admitted(
    world: World, sweeps: Sweeps
) -> None:
    # Given a run whose RunTask outcome was unknown (a task did start) and that was requeued to wait again
    mine = world.submission(CHALLENGE_ID)
    mine_id = world.waiting(mine)
    [entry] = world.capacity.queue_entries(CHALLENGE_ID)
    limits = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=1, env_cpu_cap_units=None, cpu_units=1024)
    assert world.capacity.admit(entry, limits).outcome is AdmitOutcome.ADMITTED
    claim = world.status.claim_launch(mine, phase=entry.phase, scorer_type="example-scorer", lease_seconds=120)
    assert world.status.mark_launch_outcome_unknown(mine_id, attempt=claim.attempt, reason="5xx", dead_lettered=False)
    ambiguous = world.status.get(mine_id)
    assert ambiguous is not None
    assert world.capacity.requeue(ambiguous, reason="RunTask throttled")
    task = sweeps.ecs.run(submission_id=mine.submission_id, attempt=claim.attempt, age=SETTLE + 60)

    # When the sweeper scans while the run waits (and its dispatch admits it again)
    first = sweeps.sweep()

    # Then the task is not stopped as an orphan
    assert first["orphansStopped"] == 0
    assert sweeps.ecs.stops() == []
    assert world.state(mine_id) is SubmissionState.ADMITTED

    # When the next sweep finds the admitted run's task: it adopts it
    second = sweeps.sweep()
    assert second["adopted"] == 1
    record = world.status.get(mine_id)
    assert record is not None
    assert (record.state, record.task_arn) == (SubmissionState.LAUNCHED, task.task_arn)
    assert sweeps.ecs.stops() == []
    assert world.holders() == {mine_id}


SETTLE = 180  # TimeoutSweeperSettings.orphan_settle_seconds (default)


def test_a_superseded_task_whose_stop_failed_is_stopped_by_its_next_liveness_check(
    world: World, sweeps: Sweeps
) -> None:
    # Given a running run superseded by its member's newer submission, whose StopTask by the challenge processor
    # failed (only cancelRequested is on the item), and a run waiting for the environment's only slot
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)
    sweeps.ecs.run(submission_id=mine.submission_id, arn=arn)
    assert world.capacity.request_cancel_running(mine_id) is not None
    theirs_id = world.waiting(world.submission(OTHER_CHALLENGE, member_id=7))

    # When the sweeper looks at it at its next liveness check, long before its one-hour timeout
    world.clock.advance(DEFAULT_LIVENESS_CHECK_SECONDS + 1)
    result = sweeps.sweep()

    # Then its task is stopped with the superseded reason (not as a timeout)
    assert (result["supersededStopped"], result["stopped"]) == (1, 0)
    assert [stop["reason"] for stop in sweeps.ecs.stops()] == [SUPERSEDED_REASON]
    assert sweeps.metrics.reasons(Metric.TASKS_STOPPED_FOR_TIMEOUT) == {}

    # and when its STOPPED event arrives, the run is CANCELLED and its slot goes to the waiting run
    task = sweeps.ecs.tasks[arn]
    assert (task.stop_code, task.stopped_reason) == ("UserInitiated", SUPERSEDED_REASON)
    outcome = world.invoke(world.stopped(mine, arn, stop_code="UserInitiated", stopped_reason=SUPERSEDED_REASON))
    assert outcome["outcome"] == OutcomeCode.CANCELLED.value
    assert world.state(mine_id) is SubmissionState.CANCELLED
    assert world.state(theirs_id) is SubmissionState.ADMITTED
    assert world.holders() == {theirs_id}


def test_a_superseded_task_still_running_after_the_stop_is_stopped_again_as_superseded(
    world: World, sweeps: Sweeps
) -> None:
    # Given a superseded run's task that the sweeper stopped, and that ECS still shows running a grace later
    mine = world.submission(CHALLENGE_ID)
    mine_id, arn = world.launched(mine)
    sweeps.ecs.run(submission_id=mine.submission_id, arn=arn)
    assert world.capacity.request_cancel_running(mine_id) is not None
    world.clock.advance(DEFAULT_LIVENESS_CHECK_SECONDS + 1)
    assert sweeps.sweep()["supersededStopped"] == 1
    sweeps.ecs.tasks[arn].last_status = "DEACTIVATING"
    record = world.status.get(mine_id)
    assert record is not None
    assert record.deadline_at is not None
    world.clock.advance(record.deadline_at - world.clock.now + 1)

    # When the sweeper looks again
    result = sweeps.sweep()

    # Then it stops it again, still as superseded (its outcome is a cancel, never a timeout)
    assert result["stoppedAgain"] == 1
    assert [stop["reason"] for stop in sweeps.ecs.stops()] == [SUPERSEDED_REASON, SUPERSEDED_REASON]


def admitted_never_claimed(world: World, submission: Any) -> str:
    """A run admitted (the environment's only slot) whose message no challenge processor will ever process."""
    rid = world.waiting(submission)
    entry = next(e for e in world.capacity.queue_entries(submission.challenge_id) if e.run_id == rid)
    limits = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=1, env_cpu_cap_units=None, cpu_units=1024)
    assert world.capacity.admit(entry, limits).outcome is AdmitOutcome.ADMITTED
    return rid


def test_an_admitted_run_never_claimed_after_its_last_resend_is_dead_lettered_and_frees_its_slot(
    world: World, sweeps: Sweeps
) -> None:
    # Given a run admitted into the environment's only slot whose message is never processed (its queue is
    # not consumed), and a run waiting behind it
    mine = world.submission(OTHER_CHALLENGE, member_id=7)
    mine_id = admitted_never_claimed(world, mine)
    theirs_id = world.waiting(world.submission(CHALLENGE_ID))

    # When the sweeper finds it past its deadline MAX_ADMISSION_RESENDS times: each time its message is re-sent
    for resend in range(1, MAX_ADMISSION_RESENDS + 1):
        world.clock.advance(ADMISSION_RESEND_SECONDS + 1)
        result = sweeps.sweep()
        assert (result["admissionsResent"], result["launchesDeadLettered"]) == (1, 0)
        record = world.status.get(mine_id)
        assert record is not None
        assert (record.state, record.admission_resends) == (SubmissionState.ADMITTED, resend)
        assert world.state(theirs_id) is SubmissionState.WAITING  # the slot is still held
    assert len(world.messages(OTHER_CHALLENGE)) == MAX_ADMISSION_RESENDS

    # When it is past its deadline once more
    world.clock.advance(ADMISSION_RESEND_SECONDS + 1)
    result = sweeps.sweep()

    # Then it is not re-sent but DEAD_LETTERED for an operator, its slot freed, and the waiting run admitted
    assert (result["admissionsResent"], result["launchesDeadLettered"], result["runsAdmitted"]) == (0, 1, 1)
    record = world.status.get(mine_id)
    assert record is not None
    assert (record.state, record.reason) == (SubmissionState.DEAD_LETTERED, ADMISSION_DEAD_LETTER_REASON)
    assert world.state(theirs_id) is SubmissionState.ADMITTED
    assert world.holders() == {theirs_id}
    assert sweeps.metrics.reasons(Metric.STUCK_LAUNCHES_DEAD_LETTERED) == {ADMISSION_NEVER_CLAIMED: 1}
    assert world.review_api.posts == 0  # v5: nothing to report for a run that never ran

    # and later sweeps leave it alone (no more sends, no second dead-letter)
    world.clock.advance(ADMISSION_RESEND_SECONDS + 1)
    assert sweeps.sweep()["launchesDeadLettered"] == 0
    assert world.messages(OTHER_CHALLENGE) == []
    later = world.status.get(mine_id)
    assert later is not None
    assert (later.state, later.admission_resends) == (SubmissionState.DEAD_LETTERED, MAX_ADMISSION_RESENDS)


def test_a_v6_admitted_run_dead_lettered_after_its_resends_gets_its_failed_summation(
    world: World, sweeps: Sweeps
) -> None:
    # Given a v6 run admitted whose message is never processed
    world.configs.configs[OTHER_CHALLENGE] = config_of(OTHER_CHALLENGE, platform=Platform.V6)
    mine = world.submission(OTHER_CHALLENGE, member_id=7, platform=Platform.V6)
    mine_id = admitted_never_claimed(world, mine)
    for _ in range(MAX_ADMISSION_RESENDS):
        world.clock.advance(ADMISSION_RESEND_SECONDS + 1)
        assert sweeps.sweep()["admissionsResent"] == 1

    # When the sweeper dead-letters it
    world.clock.advance(ADMISSION_RESEND_SECONDS + 1)
    assert sweeps.sweep()["launchesDeadLettered"] == 1

    # Then its terminal report was handed to the completion function at once: one FAILED summation
    [summation] = world.summations.of(mine.submission_id)
    assert summation["aggregateScore"] == -1
    assert (summation["metadata"]["testStatus"], summation["metadata"]["outcome"]) == ("FAILED", "FAILED")
    record = world.status.get(mine_id)
    assert record is not None
    assert (record.state, record.report_status) == (SubmissionState.DEAD_LETTERED, ReportStatus.REPORTED)
    assert world.holders() == set()
