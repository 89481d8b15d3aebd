"""challenge_lambda.processor under capacity: superseded runs (decision 095). A member's newer submission cancels
their older waiting run of the same phase (v6: with a CANCELLED summation), and with
`cancel_waiting_and_stop_running` stops its running task; a late redelivery of an older submission cancels itself.

The capacity world of `test_processor_capacity.py`."""

from __future__ import annotations

import pytest

from challenge_lambda.processor import RecordOutcome
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.models.report_due import report_due_event
from tests.conftest import Clock
from tests.unit.challenge.helpers import (
    CHALLENGE_ID,
    log_lines,
)
from tests.unit.challenge.test_processor_capacity import (
    EXAMPLE,
    PROVISIONAL,
    Capacity,
    capacity_world,
    member_submission,
    v5_member_submission,
)


@pytest.fixture
def cap(status_table: str, capacity_table: str, clock: Clock) -> Capacity:
    return capacity_world(status_table, clock)


# ------------------------------------------------------------------ superseded runs (decision 095)
def test_cancel_waiting_cancels_the_members_older_waiting_run_of_the_phase_and_reports_it_v6(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=0, supersede="cancel_waiting")  # everything waits
    older, other_member, newer = member_submission(7, 0), member_submission(8, 1), member_submission(7, 5)
    older_provisional = member_submission(7, 0, phase=PROVISIONAL)
    for submission in (older, older_provisional, other_member):
        assert cap.deliver(submission) is RecordOutcome.WAITING

    assert cap.deliver(newer) is RecordOutcome.WAITING

    cancelled = cap.world.run(older, EXAMPLE)
    assert (cancelled.state, cancelled.test_status, cancelled.report_status) == (
        SubmissionState.CANCELLED,
        "CANCELLED",
        ReportStatus.PENDING,
    )
    assert newer.submission_id in (cancelled.reason or "")
    assert cap.state(older_provisional, PROVISIONAL) is SubmissionState.WAITING  # another phase: kept
    assert cap.state(other_member, EXAMPLE) is SubmissionState.WAITING  # another member: kept
    assert cap.state(newer, EXAMPLE) is SubmissionState.WAITING
    assert cap.world.lambda_.payloads() == [report_due_event(cancelled.run_id)]
    assert cap.world.metrics.reasons(Metric.RUNS_CANCELLED) == {"superseded": 1}
    assert cap.capacity.queue_position(CHALLENGE_ID, cap.world.run(newer, EXAMPLE).wait_order or "") == 3


def test_a_superseded_v5_run_is_cancelled_without_a_report(cap: Capacity) -> None:
    cap.caps(v6=False, maxRunningTasks=0, supersede="cancel_waiting")
    older, newer = v5_member_submission(7, 0), v5_member_submission(7, 5)
    cap.deliver(older)

    cap.deliver(newer)

    record = cap.world.run(older, ScoringPhase.PROVISIONAL)
    assert (record.state, record.report_status) == (SubmissionState.CANCELLED, ReportStatus.NOT_REQUIRED)
    assert cap.world.lambda_.invocations == []


def test_without_a_supersede_policy_older_runs_keep_waiting(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=0)
    older, newer = member_submission(7, 0), member_submission(7, 5)
    cap.deliver(older)

    cap.deliver(newer)

    assert cap.state(older, EXAMPLE) is SubmissionState.WAITING
    assert cap.world.metrics.total(Metric.RUNS_CANCELLED) == 0


def test_a_late_redelivery_of_an_older_submission_is_cancelled_itself(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=0, supersede="cancel_waiting")
    older, newer = member_submission(7, 0), member_submission(7, 5)
    cap.deliver(newer)

    assert cap.deliver(older) is RecordOutcome.CANCELLED

    assert cap.state(older, EXAMPLE) is SubmissionState.CANCELLED
    assert cap.state(newer, EXAMPLE) is SubmissionState.WAITING
    assert cap.world.metrics.reasons(Metric.RUNS_CANCELLED) == {"superseded": 1}


def test_cancel_waiting_leaves_a_running_task_alone(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=5, supersede="cancel_waiting")
    older, newer = member_submission(7, 0), member_submission(7, 5)
    cap.deliver(older)

    assert cap.deliver(newer) is RecordOutcome.LAUNCHED

    assert cap.state(older, EXAMPLE) is SubmissionState.LAUNCHED
    assert cap.world.launcher.stops == []


def test_cancel_waiting_and_stop_running_stops_the_older_running_task(cap: Capacity) -> None:
    cap.caps(maxRunningTasks=5, supersede="cancel_waiting_and_stop_running")
    older, newer = member_submission(7, 0), member_submission(7, 5)
    cap.deliver(older)
    running = cap.world.run(older, EXAMPLE)

    assert cap.deliver(newer) is RecordOutcome.LAUNCHED

    assert cap.world.launcher.stops == [
        {
            "cluster": running.cluster_arn,
            "task_arn": running.task_arn,
            "reason": f"Superseded by a newer submission {newer.submission_id}",
        }
    ]
    stopped = cap.world.run(older, EXAMPLE)
    assert (stopped.state, stopped.cancel_requested) == (SubmissionState.LAUNCHED, True)  # CANCELLED on STOPPED
    assert cap.world.metrics.reasons(Metric.RUNS_CANCELLED) == {"superseded": 1}


def test_a_failed_stop_of_a_superseded_task_never_fails_the_new_run(cap: Capacity) -> None:
    from botocore.exceptions import ClientError

    cap.caps(maxRunningTasks=5, supersede="cancel_waiting_and_stop_running")
    older, newer = member_submission(7, 0), member_submission(7, 5)
    cap.deliver(older)
    cap.world.launcher.stop_error = ClientError({"Error": {"Code": "ServerException", "Message": "x"}}, "StopTask")

    assert cap.deliver(newer) is RecordOutcome.LAUNCHED

    assert cap.world.run(older, EXAMPLE).cancel_requested is True
    assert any(line["message"].startswith("StopTask of a superseded run failed") for line in log_lines(cap.world.logs))
