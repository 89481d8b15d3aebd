"""The orphan sweep (decision 071): every run lists the pipeline's own running tasks, adopts the task of an
ambiguous launch, and stops any task of ours that no item tracks or that outlived its own timeout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm_adapters.status_store import LaunchDecision, StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import (
    ORPHAN_STOP_REASON_PREFIX,
    STATUS_TABLE_PARTITION_KEY,
    TIMEOUT_STOP_REASON_PREFIX,
    started_by,
)
from sweeper_lambda import handler as timeout_sweeper
from sweeper_lambda.handler import SweepIncompleteError
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import CLUSTER_ARN, Completion, FakeLambda, launch_task, rid, task_arn
from tests.integration.completion.conftest import routed as routed_submission
from tests.integration.completion.test_sweeper_describe_first import PHASE, FakeEcs, Harness, summary
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

SETTLE = 180  # TimeoutSweeperSettings.orphan_settle_seconds (default)
OTHER_CLUSTER = CLUSTER_ARN.replace("mm-scorers", "other-scorers")


@pytest.fixture
def harness(completion: Completion, install_sweeper: Any, clock: Clock, lambda_context: Any) -> Harness:
    ecs = FakeEcs(clock)
    lam = FakeLambda(deliver=completion.invoke)
    metrics = RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam, ecs_cluster_arns=(CLUSTER_ARN,))
    return Harness(completion, clock, ecs, lam, metrics, lambda_context)


def routed(submission_id: str) -> RoutedSubmission:
    return routed_submission(submission_id, offset=7)


def claimed(
    store: StatusStore, *, lease: int = 60, submission_id: str | None = None, phase: ScoringPhase = PHASE
) -> str:
    """A run (submission, phase) claimed for launch (LAUNCHING, attempt 1), as the challenge processor leaves it;
    the submission id."""
    submission_id = submission_id or new_uuid()
    claim = store.claim_launch(
        routed(submission_id), phase=phase, scorer_type="example-scorer", lease_seconds=lease, timeout_seconds=3600
    )
    assert claim.granted
    assert claim.attempt == 1
    return submission_id


def test_a_running_task_of_ours_with_no_item_is_stopped_as_an_orphan(harness: Harness) -> None:
    h = harness
    orphan = h.ecs.run(submission_id=new_uuid(), age=SETTLE + 10)
    young = h.ecs.run(submission_id=new_uuid(), age=10)  # its launch may still be recording it
    foreign = h.ecs.run(submission_id=new_uuid(), age=9999, started_by_value="someone-else/batch")
    other_env = h.ecs.run(submission_id=new_uuid(), age=9999, started_by_value=started_by("prod", CHALLENGE_ID))

    assert h.sweep() == summary(tasksSeen=2, orphansStopped=1)

    [stop] = h.ecs.stops()
    assert stop["task"] == orphan.task_arn
    assert stop["reason"].startswith(ORPHAN_STOP_REASON_PREFIX)
    assert "no status item" in stop["reason"]
    assert len(stop["reason"]) <= 255
    assert h.metrics.reasons(Metric.ORPHAN_TASKS_STOPPED) == {None: 1}
    assert {t.last_status for t in (young, foreign, other_env)} == {"RUNNING"}


def test_the_task_of_an_ambiguous_attempt_with_a_dead_lettered_item_is_adopted_not_stopped(harness: Harness) -> None:
    # Given a RunTask whose answer was lost on the last receive: the item is DEAD_LETTERED, attempt 1 ambiguous,
    # and the task it did start runs in ECS
    h = harness
    store = h.completion.store
    submission_id = claimed(store)
    assert store.mark_launch_outcome_unknown(
        rid(submission_id), attempt=1, reason="RunTask read timeout", dead_lettered=True
    )
    task = h.ecs.run(submission_id=submission_id, attempt=1, timeout=3600, age=SETTLE + 500)

    # When the sweeper scans the cluster
    assert h.sweep() == summary(slotsReconciled=1, tasksSeen=1, adopted=1)

    # Then the item tracks the task (its timeout counted from the task's own start), and nothing was stopped
    record = h.completion.record(submission_id)
    assert (record.state, record.task_arn, record.cluster_arn) == (SubmissionState.LAUNCHED, task.task_arn, CLUSTER_ARN)
    started = int(task.created_at + 5)  # the described startedAt
    assert record.timeout_at == started + 3600
    assert record.deadline_at == min(started + 3600, int(h.clock.now) + 900)
    assert record.launch_ambiguous is False
    assert h.ecs.stops() == []
    assert h.metrics.reasons(Metric.ORPHAN_TASKS_ADOPTED) == {None: 1}
    # (the slot reconciler then gives the adopted task the slot it runs in: the item's last entry)
    assert any("adopted running task" in entry.detail for entry in record.history)
    # and a redrive of its message finds it launched: no second task
    again = store.claim_launch(routed(submission_id), phase=PHASE, scorer_type="example-scorer", lease_seconds=60)
    assert again.decision is LaunchDecision.DUPLICATE_LAUNCHED
    # and the next run leaves the tracked task alone
    assert h.sweep() == summary(tasksSeen=1)


def test_a_launching_item_is_adopted_only_once_its_lease_expired(harness: Harness) -> None:
    h = harness
    store = h.completion.store
    submission_id = claimed(store, lease=600)
    task = h.ecs.run(submission_id=submission_id, attempt=1, age=SETTLE + 10)
    # a live lease on the same attempt: its delivery is recording this task right now
    assert h.sweep() == summary(tasksSeen=1)
    assert h.completion.record(submission_id).state is SubmissionState.LAUNCHING
    # the delivery crashed: once the lease expired, the task is adopted
    h.clock.advance(601)
    assert h.sweep() == summary(slotsReconciled=1, tasksSeen=1, adopted=1)
    record = h.completion.record(submission_id)
    assert (record.state, record.task_arn, record.lease_until) == (SubmissionState.LAUNCHED, task.task_arn, None)
    assert h.ecs.stops() == []


def test_a_task_of_a_definitely_failed_attempt_is_stopped_and_the_item_says_so(harness: Harness) -> None:
    h = harness
    store = h.completion.store
    submission_id = claimed(store)
    assert store.mark_launch_failed(
        rid(submission_id), attempt=1, reason="failures[]: RESOURCE:MEMORY", dead_lettered=False
    )
    task = h.ecs.run(submission_id=submission_id, attempt=1, age=SETTLE + 10)

    assert h.sweep() == summary(tasksSeen=1, orphansStopped=1)

    [stop] = h.ecs.stops()
    assert stop["task"] == task.task_arn
    assert "not ambiguous" in stop["reason"]
    record = h.completion.record(submission_id)
    assert record.state is SubmissionState.LAUNCH_FAILED  # untouched: its message is retried
    assert record.history[-1].state == "ORPHAN_STOPPED"
    assert task.task_arn in record.history[-1].detail


def test_a_second_task_beside_the_tracked_one_is_stopped_and_the_tracked_one_kept(harness: Harness) -> None:
    h = harness
    submission_id, tracked_arn = new_uuid(), task_arn()
    launch_task(h.completion.store, submission_id, tracked_arn, CLUSTER_ARN)
    tracked = h.ecs.run(submission_id=submission_id, arn=tracked_arn, attempt=1, age=SETTLE + 10)
    twin = h.ecs.run(submission_id=submission_id, attempt=1, age=SETTLE + 10)

    assert h.sweep() == summary(slotsReconciled=1, tasksSeen=2, orphansStopped=1)

    assert [s["task"] for s in h.ecs.stops()] == [twin.task_arn]
    assert "tracks another task" in h.ecs.stops()[0]["reason"]
    assert tracked.last_status == "RUNNING"


def test_a_task_still_running_for_a_finished_submission_is_stopped(harness: Harness) -> None:
    h = harness
    submission_id, arn = new_uuid(), task_arn()
    launch_task(h.completion.store, submission_id, arn, CLUSTER_ARN)
    h.completion.store.client.update_item(
        TableName=h.completion.store._table,
        Key={STATUS_TABLE_PARTITION_KEY: {"S": rid(submission_id)}},
        UpdateExpression="SET #state = :failed REMOVE deadlineAt",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":failed": {"S": "FAILED"}},
    )
    h.ecs.run(submission_id=submission_id, arn=arn, age=SETTLE + 10)
    assert h.sweep() == summary(tasksSeen=1, orphansStopped=1)
    assert "already FAILED" in h.ecs.stops()[0]["reason"]


def test_a_tracked_task_far_past_its_own_timeout_is_stopped_for_its_timeout(harness: Harness) -> None:
    # Given a tracked task whose item the reconciliation gave up on (off the index): only the scan still sees it
    h = harness
    submission_id, arn = new_uuid(), task_arn()
    launch_task(h.completion.store, submission_id, arn, CLUSTER_ARN, timeout=600)
    h.completion.store.client.update_item(
        TableName=h.completion.store._table,
        Key={STATUS_TABLE_PARTITION_KEY: {"S": rid(submission_id)}},
        UpdateExpression="REMOVE deadlineAt",
    )
    h.ecs.run(submission_id=submission_id, arn=arn, timeout=600, age=600 + 900 + 10)

    assert h.sweep() == summary(slotsReconciled=1, tasksSeen=1, stopped=1)

    [stop] = h.ecs.stops()
    assert stop["reason"].startswith(TIMEOUT_STOP_REASON_PREFIX)
    assert h.completion.record(submission_id).stop_requested_at is not None


def test_listing_is_paged_and_bounded_per_run(harness: Harness, install_sweeper: Any) -> None:
    h = harness
    install_sweeper(
        h.completion.store, h.ecs, h.metrics, h.lam, ecs_cluster_arns=(CLUSTER_ARN,), max_tasks_listed_per_run=250
    )
    for _ in range(320):
        h.ecs.run(submission_id=new_uuid(), age=10)
    result = h.sweep()
    assert result["tasksSeen"] == 250
    lists = [args for name, args in h.ecs.calls if name == "list_tasks"]
    assert [a["nextToken"] for a in lists] == [None, "100", "200"]
    describes = [len(args["tasks"]) for name, args in h.ecs.calls if name == "describe_tasks"]
    assert describes == [100, 100, 50]


def test_one_failing_cluster_does_not_stop_the_others_and_fails_the_run(
    harness: Harness, install_sweeper: Any, captured_logs: Any
) -> None:
    h = harness
    install_sweeper(h.completion.store, h.ecs, h.metrics, h.lam, ecs_cluster_arns=(OTHER_CLUSTER, CLUSTER_ARN))
    h.ecs.failing_clusters.add(OTHER_CLUSTER)
    orphan = h.ecs.run(submission_id=new_uuid(), age=SETTLE + 10)
    with pytest.raises(SweepIncompleteError, match="cluster"):
        timeout_sweeper.handler({}, h.context)
    assert [s["task"] for s in h.ecs.stops()] == [orphan.task_arn]
    errors = [json.loads(line) for line in captured_logs.getvalue().splitlines() if '"level":"ERROR"' in line]
    assert [e["message"] for e in errors] == ["ListTasks failed"]


# ------------------------------------------------------------------ the run of a task: (MM_SUBMISSION_ID, MM_PHASE)
def test_the_task_of_one_phase_is_adopted_by_that_phases_run_only(harness: Harness) -> None:
    # Given a submission with two ambiguous launches (EXAMPLE, PROVISIONAL) and only the EXAMPLE task running
    h = harness
    store = h.completion.store
    submission_id = claimed(store, phase=ScoringPhase.EXAMPLE)
    claimed(store, submission_id=submission_id, phase=ScoringPhase.PROVISIONAL)
    for phase in (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL):
        assert store.mark_launch_outcome_unknown(
            rid(submission_id, phase), attempt=1, reason="RunTask read timeout", dead_lettered=True
        )
    task = h.ecs.run(submission_id=submission_id, phase=ScoringPhase.EXAMPLE, age=SETTLE + 10)

    assert h.sweep() == summary(slotsReconciled=1, tasksSeen=1, adopted=1)

    example = h.completion.record(submission_id, ScoringPhase.EXAMPLE)
    provisional = h.completion.record(submission_id, ScoringPhase.PROVISIONAL)
    assert (example.state, example.task_arn) == (SubmissionState.LAUNCHED, task.task_arn)
    assert (provisional.state, provisional.task_arn) == (SubmissionState.DEAD_LETTERED, None)


def test_the_phase_tag_names_the_run_when_the_overrides_do_not(harness: Harness) -> None:
    h = harness
    store = h.completion.store
    submission_id = claimed(store, phase=ScoringPhase.SYSTEM)
    store.mark_launch_outcome_unknown(
        rid(submission_id, ScoringPhase.SYSTEM), attempt=1, reason="RunTask read timeout", dead_lettered=True
    )
    task = h.ecs.run(submission_id=submission_id, phase=None, phase_tag=ScoringPhase.SYSTEM, age=SETTLE + 10)

    assert h.sweep() == summary(slotsReconciled=1, tasksSeen=1, adopted=1)

    # FakeEcs describes tags only when asked (include=["TAGS"]): the adoption shows the scan asked
    assert h.completion.record(submission_id, ScoringPhase.SYSTEM).task_arn == task.task_arn


def test_a_task_that_names_no_phase_is_never_adopted(harness: Harness) -> None:
    # Given an ambiguous launch of the submission's run and a task of that submission that names no phase
    h = harness
    store = h.completion.store
    submission_id = claimed(store)
    store.mark_launch_outcome_unknown(rid(submission_id), attempt=1, reason="RunTask read timeout", dead_lettered=True)
    task = h.ecs.run(submission_id=submission_id, phase=None, age=SETTLE + 10)

    # When the sweeper scans: it names no run of ours, so it is untracked and stopped, and the item is untouched
    assert h.sweep() == summary(tasksSeen=1, orphansStopped=1)

    [stop] = h.ecs.stops()
    assert stop["task"] == task.task_arn
    assert "names no phase" in stop["reason"]
    record = h.completion.record(submission_id)
    assert (record.state, record.task_arn) == (SubmissionState.DEAD_LETTERED, None)
