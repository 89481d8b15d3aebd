"""Defects 1 and 8 (completion side): the function acts only on submissions the pipeline launched, and only on
the task the status item tracks. Real handler and CompletionService on a moto status table."""

from __future__ import annotations

from typing import Any

import pytest

from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.models.task import TaskEnv
from tests.builders import new_uuid
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    DEFAULT_PHASE,
    Completion,
    rid,
    stopped_event,
    task_arn,
    task_environment,
)
from tests.integration.completion.conftest import routed as routed_submission

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def routed(submission_id: str) -> RoutedSubmission:
    return routed_submission(submission_id, offset=7)


def event_of(submission_id: str, arn: str, *, attempt: int | None, **kwargs: Any) -> dict[str, Any]:
    extra = {} if attempt is None else {TaskEnv.LAUNCH_ATTEMPT.value: str(attempt)}
    kwargs.setdefault("exit_code", 1)
    return stopped_event(submission_id, arn, environment=task_environment(submission_id, overrides=extra), **kwargs)


@pytest.mark.parametrize(
    "submission_id",
    [
        pytest.param(" 5f0a4ac9-3c0f-4fd4-9bd1-34c7bd9cf0a2 ", id="whitespace"),
        pytest.param("5" * 3000, id="3000-characters"),
        pytest.param("5f0a4ac9-3c0f-4fd4-9bd1-34c7bd9c\ud800a2", id="lone-surrogate"),
        pytest.param("not-a-uuid", id="not-a-uuid"),
        pytest.param("{5f0a4ac9-3c0f-4fd4-9bd1-34c7bd9cf0a2}", id="braced-uuid"),
    ],
)
def test_malformed_submission_id_is_ignored_with_a_reason_and_never_reaches_the_store(
    completion: Completion, submission_id: str
) -> None:
    result = completion.invoke(stopped_event(submission_id, task_arn(), exit_code=1))

    assert (result["disposition"], result["reason"]) == ("ignored", "submission_id_invalid")
    assert completion.metrics.counted() == [(Metric.EVENTS_IGNORED, "submission_id_invalid")]
    assert completion.api.posts == 0


@pytest.mark.parametrize("attempt", ["0", "-1", "1.0", "one", " 2", "9" * 40])
def test_malformed_launch_attempt_is_ignored(completion: Completion, attempt: str) -> None:
    submission_id, arn = completion.launched()
    env = task_environment(submission_id, overrides={TaskEnv.LAUNCH_ATTEMPT.value: attempt})

    result = completion.invoke(stopped_event(submission_id, arn, environment=env, exit_code=1))

    assert result["reason"] == "launch_attempt_invalid"
    assert completion.record(submission_id).state is SubmissionState.LAUNCHED


def test_malformed_challenge_id_is_ignored(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    env = task_environment(submission_id, challenge_id="x" * 300)
    result = completion.invoke(stopped_event(submission_id, arn, environment=env, exit_code=1))
    assert result["reason"] == "challenge_id_invalid"
    assert completion.record(submission_id).state is SubmissionState.LAUNCHED


def test_a_malformed_task_arn_is_ignored(completion: Completion) -> None:
    submission_id, _ = completion.launched()
    result = completion.invoke(stopped_event(submission_id, "arn:aws:ecs:us-east-1:1:task/\ud800", exit_code=1))
    assert result["reason"] == "task_arn_invalid"


def test_an_event_that_names_another_challenge_does_not_record(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    env = task_environment(submission_id, challenge_id=new_uuid())
    result = completion.invoke(stopped_event(submission_id, arn, environment=env, exit_code=1))
    assert result["disposition"] == "ignored"
    assert completion.record(submission_id).state is SubmissionState.LAUNCHED
    assert completion.api.posts == 0


def test_recorded_from_launching_only_for_the_items_own_attempt(completion: Completion) -> None:
    # Given the item is LAUNCHING on attempt 1 (the STOPPED event overtook mark_launched)
    submission_id = new_uuid()
    assert completion.store.claim_launch(
        routed(submission_id), phase=DEFAULT_PHASE, scorer_type="s", lease_seconds=60
    ).granted
    arn = task_arn()

    # When the event of attempt 1's task arrives
    result = completion.invoke(event_of(submission_id, arn, attempt=1))

    # Then it is recorded and reported
    assert result["disposition"] == "reported"
    record = completion.record(submission_id)
    assert (record.state, record.task_arn) == (SubmissionState.FAILED, arn)


def test_an_old_attempts_task_stopping_while_a_newer_attempt_launches_is_ignored_as_stale(
    completion: Completion,
) -> None:
    # Given attempt 1 failed definitely and attempt 2 is now LAUNCHING
    submission_id = new_uuid()
    store = completion.store
    assert store.claim_launch(routed(submission_id), phase=DEFAULT_PHASE, scorer_type="s", lease_seconds=60).granted
    assert store.mark_launch_failed(rid(submission_id), attempt=1, reason="failures[]: capacity", dead_lettered=False)
    assert (
        store.claim_launch(routed(submission_id), phase=DEFAULT_PHASE, scorer_type="s", lease_seconds=60).attempt == 2
    )

    # When a task of attempt 1 reports STOPPED (defect 1: it must not settle attempt 2's submission)
    result = completion.invoke(event_of(submission_id, task_arn(), attempt=1))

    # Then it is ignored as stale, with a trace in the history, and the item keeps launching attempt 2
    assert (result["disposition"], result["reason"]) == ("ignored", "stale_task")
    record = completion.record(submission_id)
    assert (record.state, record.launch_attempt) == (SubmissionState.LAUNCHING, 2)
    assert any(entry.state == "STALE_STOPPED_EVENT" for entry in record.history)
    assert (Metric.EVENTS_IGNORED, "stale_task") in completion.metrics.counts
    assert completion.api.posts == 0

    # And attempt 2's own task is recorded by its own event
    newer = task_arn()
    assert store.mark_launched(
        rid(submission_id), attempt=2, task_arn=newer, cluster_arn=CLUSTER_ARN, timeout_seconds=60
    )
    assert completion.invoke(event_of(submission_id, newer, attempt=2))["disposition"] == "reported"
    assert completion.record(submission_id).task_arn == newer


def test_an_event_without_launch_attempt_is_recorded_from_launched_by_task_arn(completion: Completion) -> None:
    # Tasks launched before MM_LAUNCH_ATTEMPT existed
    submission_id, arn = completion.launched()
    assert completion.invoke(event_of(submission_id, arn, attempt=None))["disposition"] == "reported"


def test_an_event_without_launch_attempt_never_records_a_launching_item(completion: Completion) -> None:
    submission_id = new_uuid()
    assert completion.store.claim_launch(
        routed(submission_id), phase=DEFAULT_PHASE, scorer_type="s", lease_seconds=60
    ).granted
    result = completion.invoke(event_of(submission_id, task_arn(), attempt=None))
    assert result["disposition"] == "ignored"
    assert completion.record(submission_id).state is SubmissionState.LAUNCHING


def test_the_task_of_an_ambiguous_last_launch_is_recorded_on_its_dead_lettered_item(completion: Completion) -> None:
    # Given RunTask of attempt 1 answered 5xx on the last receive (the task did start): DEAD_LETTERED, ambiguous
    submission_id = new_uuid()
    store = completion.store
    assert store.claim_launch(routed(submission_id), phase=DEFAULT_PHASE, scorer_type="s", lease_seconds=60).granted
    assert store.mark_launch_outcome_unknown(rid(submission_id), attempt=1, reason="RunTask 500", dead_lettered=True)

    # When that task's STOPPED event (attempt 1) arrives
    arn = task_arn()
    result = completion.invoke(event_of(submission_id, arn, attempt=1))

    # Then its outcome is recorded and reported: the run is not left untracked
    assert result["disposition"] == "reported"
    record = completion.record(submission_id)
    assert (record.state, record.task_arn, record.report_status) == (SubmissionState.FAILED, arn, ReportStatus.REPORTED)
