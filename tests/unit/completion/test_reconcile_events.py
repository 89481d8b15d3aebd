"""Synthetic STOPPED events (decision 008): what the sweeper sends is what the completion handler parses."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from completion_lambda.events import parse_event
from completion_lambda.outcome import decide_outcome
from mm_contracts.models.ecs_event import EcsTaskStateChangeEvent
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.outcome import OutcomeCode
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import OUTCOME_UNKNOWN_STOP_REASON_PREFIX, TIMEOUT_STOP_REASON_PREFIX, started_by
from sweeper_lambda.synthetic_events import (
    MISSING_TASK_NOTE,
    RECORDED_OUTCOME_CONTAINER,
    REPORT_REDRIVE_NOTE,
    json_ready,
    stopped_event_for_missing_task,
    stopped_event_for_pending_relaunch,
    stopped_event_for_recorded_outcome,
    stopped_event_for_unknown_outcome,
    stopped_event_from_task,
)
from tests.builders import ACCOUNT, REGION, ecs_task_stopped_event, new_uuid
from tests.unit.completion.fakes import CHALLENGE_ID

NOW = datetime(2027, 1, 15, 8, 30, tzinfo=UTC)
TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/mm-scorers/0123456789abcdef0123456789abcdef"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mm-scorers"


def as_described(detail: dict[str, Any]) -> dict[str, Any]:
    """An event detail as DescribeTasks returns it through botocore: the timestamps are datetimes."""
    described = copy.deepcopy(detail)
    for name in ("createdAt", "stoppedAt", "stoppingAt", "updatedAt"):
        if name in described:
            described[name] = datetime.fromisoformat(described[name].replace("Z", "+00:00"))
    described.pop("updatedAt", None)  # DescribeTasks has no updatedAt
    return described


def record(**overrides: Any) -> LifecycleRecord:
    submission_id = overrides.pop("submission_id", new_uuid())
    phase = overrides.pop("phase", ScoringPhase.PROVISIONAL)
    values: dict[str, Any] = {
        "run_id": run_id(submission_id, phase),
        "submission_id": submission_id,
        "phase": phase,
        "challenge_id": CHALLENGE_ID,
        "state": "LAUNCHED",
        "correlation_id": "submission.notification.create-0-100",
        "task_arn": TASK_ARN,
        "cluster_arn": CLUSTER_ARN,
        "stop_requested_at": NOW - timedelta(minutes=20),
        "created_at": NOW - timedelta(hours=2),
        "updated_at": NOW - timedelta(minutes=20),
    }
    values.update(overrides)
    return LifecycleRecord(**values)


def test_json_ready_turns_every_datetime_into_an_iso_string_and_keeps_the_rest() -> None:
    value = {
        "a": datetime(2027, 1, 15, 8, 0, tzinfo=timezone(timedelta(hours=2))),
        "b": [{"c": datetime(2027, 1, 15, 8, 0)}, 3, "x", None],  # naive: taken as UTC
        "d": {"e": True},
    }
    assert json_ready(value) == {
        "a": "2027-01-15T06:00:00.000Z",
        "b": [{"c": "2027-01-15T08:00:00.000Z"}, 3, "x", None],
        "d": {"e": True},
    }


def test_an_event_rebuilt_from_the_described_task_parses_like_the_event_ecs_sends() -> None:
    # Given the STOPPED event ECS would send, and the same task as DescribeTasks returns it
    submission_id = new_uuid()
    original = ecs_task_stopped_event(
        task_arn=TASK_ARN,
        started_by=started_by("example", CHALLENGE_ID),
        environment={TaskEnv.SUBMISSION_ID.value: submission_id, TaskEnv.CHALLENGE_ID.value: CHALLENGE_ID},
        exit_code=1,
    )
    # When the sweeper rebuilds the event from the described task
    synthetic = stopped_event_from_task(as_described(original["detail"]), now=NOW)
    # Then the envelope is the real one's (source, type, resources, account and region from the ARN) ...
    assert {k: synthetic[k] for k in ("source", "detail-type", "resources", "account", "region", "version")} == {
        k: original[k] for k in ("source", "detail-type", "resources", "account", "region", "version")
    }
    assert synthetic["time"] == "2027-01-15T08:30:00.000Z"
    # ... and the completion handler parses both to the same detail
    parsed_original, parsed_synthetic = parse_event(original), parse_event(synthetic)
    assert isinstance(parsed_synthetic, EcsTaskStateChangeEvent)
    assert isinstance(parsed_original, EcsTaskStateChangeEvent)
    assert parsed_synthetic.detail == parsed_original.detail
    assert decide_outcome(parsed_synthetic.detail, scorer_container_name="scorer").exit_code == 1


def test_each_synthetic_event_has_its_own_id() -> None:
    detail = as_described(ecs_task_stopped_event(task_arn=TASK_ARN)["detail"])
    assert stopped_event_from_task(detail, now=NOW)["id"] != stopped_event_from_task(detail, now=NOW)["id"]


def test_a_task_ecs_forgot_becomes_a_timed_out_stop_of_our_own_task() -> None:
    # Given a LAUNCHED item whose task we stopped and ECS no longer describes
    item = record()
    # When the sweeper synthesizes its STOPPED event
    event = stopped_event_for_missing_task(item, environment_name="example", now=NOW)
    parsed = parse_event(event)
    # Then it is one of our tasks (startedBy, overrides name the submission), stopped by us for its timeout
    assert isinstance(parsed, EcsTaskStateChangeEvent)
    detail = parsed.detail
    assert (detail.task_arn, detail.cluster_arn, detail.last_status) == (TASK_ARN, CLUSTER_ARN, "STOPPED")
    assert detail.started_by == started_by("example", CHALLENGE_ID)
    assert detail.environment() == {
        TaskEnv.SUBMISSION_ID.value: item.submission_id,
        TaskEnv.PHASE.value: "PROVISIONAL",
        TaskEnv.PLATFORM.value: "v5",
        TaskEnv.CHALLENGE_ID.value: CHALLENGE_ID,
        TaskEnv.CORRELATION_ID.value: item.correlation_id,
    }
    assert detail.containers == []
    assert detail.stop_code == "UserInitiated"
    assert detail.stopped_reason is not None
    assert detail.stopped_reason.startswith(TIMEOUT_STOP_REASON_PREFIX)
    assert detail.stopped_reason.endswith(MISSING_TASK_NOTE)
    assert detail.stopped_at == item.stop_requested_at  # when we stopped it
    assert (event["account"], event["region"], event["resources"]) == (ACCOUNT, REGION, [TASK_ARN])
    outcome = decide_outcome(detail, scorer_container_name="scorer")
    assert (outcome.code, outcome.exit_code) == (OutcomeCode.TIMED_OUT, None)


def test_a_forgotten_task_without_a_correlation_id_still_names_its_submission() -> None:
    item = record(correlation_id=None, stop_requested_at=None)
    event = stopped_event_for_missing_task(item, environment_name="example", now=NOW)
    parsed = parse_event(event)
    assert isinstance(parsed, EcsTaskStateChangeEvent)
    assert TaskEnv.CORRELATION_ID.value not in parsed.detail.environment()
    assert parsed.detail.environment()[TaskEnv.SUBMISSION_ID.value] == item.submission_id
    assert parsed.detail.stopped_at == NOW


def test_a_forgotten_task_we_never_stopped_is_an_unknown_outcome_never_a_timeout() -> None:
    item = record(stop_requested_at=None, launch_attempt=2)
    event = stopped_event_for_unknown_outcome(item, environment_name="example", now=NOW)
    parsed = parse_event(event)
    assert isinstance(parsed, EcsTaskStateChangeEvent)
    detail = parsed.detail
    assert detail.stopped_reason is not None
    assert detail.stopped_reason.startswith(OUTCOME_UNKNOWN_STOP_REASON_PREFIX)
    assert TIMEOUT_STOP_REASON_PREFIX not in detail.stopped_reason
    assert detail.stop_code is None  # not UserInitiated: nobody stopped it
    assert detail.containers == []
    assert detail.environment()[TaskEnv.LAUNCH_ATTEMPT.value] == "2"
    assert detail.started_by == started_by("example", CHALLENGE_ID)


def test_a_re_driven_report_event_carries_the_recorded_stop_and_exit_codes() -> None:
    item = record(
        state="FAILED",
        launch_attempt=1,
        exit_code=3,
        stop_code="EssentialContainerExited",
        reason="scorer exited 3",
        stopped_at=NOW - timedelta(minutes=15),
    )
    event = stopped_event_for_recorded_outcome(item, environment_name="example", now=NOW)
    parsed = parse_event(event)
    assert isinstance(parsed, EcsTaskStateChangeEvent)
    detail = parsed.detail
    assert (detail.task_arn, detail.stop_code, detail.stopped_at) == (
        TASK_ARN,
        "EssentialContainerExited",
        item.stopped_at,
    )
    assert detail.stopped_reason == f"scorer exited 3 {REPORT_REDRIVE_NOTE}"
    # the one container is the one the overrides name: the scorer by the overrides, with the recorded exit code
    assert [o.name for o in detail.overrides.container_overrides] == [RECORDED_OUTCOME_CONTAINER]
    container = detail.container(RECORDED_OUTCOME_CONTAINER)
    assert container is not None
    assert container.exit_code == 3
    assert decide_outcome(detail, scorer_container_name=RECORDED_OUTCOME_CONTAINER).exit_code == 3


def test_a_re_driven_report_of_an_item_without_a_cluster_uses_the_configured_one() -> None:
    item = record(state="FAILED", cluster_arn=None, exit_code=None)
    event = stopped_event_for_recorded_outcome(item, environment_name="example", now=NOW, cluster_arn=CLUSTER_ARN)
    assert event["detail"]["clusterArn"] == CLUSTER_ARN
    assert event["detail"]["containers"] == []


def test_every_synthetic_event_names_the_run_by_submission_and_phase() -> None:
    """The completion function finds the run by (MM_SUBMISSION_ID, MM_PHASE): a multi-phase challenge has no
    other way to tell which of a submission's runs the task was (decision 084)."""
    item = record(
        submission_id="aB3_-xYz09QwEr",
        phase=ScoringPhase.EXAMPLE,
        platform=Platform.V6,
        state="FAILED",
        launch_attempt=2,
        stop_requested_at=None,
    )
    events = {
        "missing": stopped_event_for_missing_task(item, environment_name="example", now=NOW),
        "unknown": stopped_event_for_unknown_outcome(item, environment_name="example", now=NOW),
        "recorded": stopped_event_for_recorded_outcome(item, environment_name="example", now=NOW),
        "relaunch": stopped_event_for_pending_relaunch(item, environment_name="example", now=NOW),
    }
    for kind, event in events.items():
        parsed = parse_event(event)
        assert isinstance(parsed, EcsTaskStateChangeEvent)
        environment = parsed.detail.environment()
        named = {name: environment.get(name) for name in (TaskEnv.SUBMISSION_ID, TaskEnv.PHASE, TaskEnv.PLATFORM)}
        assert named == {TaskEnv.SUBMISSION_ID: "aB3_-xYz09QwEr", TaskEnv.PHASE: "EXAMPLE", TaskEnv.PLATFORM: "v6"}
        assert environment[TaskEnv.LAUNCH_ATTEMPT.value] == "2", kind
    # the reasons an operator reads name the run, not only the submission
    assert "(run aB3_-xYz09QwEr#EXAMPLE)" in events["missing"]["detail"]["stoppedReason"]
    assert "(run aB3_-xYz09QwEr#EXAMPLE)" in events["unknown"]["detail"]["stoppedReason"]
