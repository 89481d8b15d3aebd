"""Completion handler end to end over a moto status table, with a fake Submission API.

(The same flows against the spec-validating Topcoder stand-in live in test_completion_standin.py.)
Longer than ~400 lines on purpose: one file per flow table keeps each outcome's arrange/act/assert beside the
others it must stay consistent with (success, failure, timeout, duplicate event, report retry).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from completion_lambda.events import InvalidEventError
from completion_lambda.outcome import FailureReason
from completion_lambda.results import ReportDeferredError, ReportInProgressError, ReportOutcomeUnsettledError
from mm_adapters import aws as aws_clients
from mm_adapters.challenge_config import ConfigErrorReason
from mm_adapters.metrics import EmfMetricsSink
from mm_adapters.topcoder.submission_api import ApiAuthError, ApiRejectedError, ApiTransientError
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.task import TaskEnv, TaskTag
from tests.builders import new_uuid
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    Completion,
    install_completion,
    moto_ecs_task,
    rid,
    stopped_event,
    task_arn,
    task_environment,
)
from tests.unit.completion.fakes import (
    CHALLENGE_ID,
    REVIEW_TYPE_ID,
    REVIEWER_ID,
    SCORE_CARD_ID,
    FakeConfigSource,
    FakeReviewApi,
    challenge_config,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def test_exit_0_records_succeeded_and_reports_nothing_by_default(completion: Completion) -> None:
    # Given a launched submission whose scorer exits 0
    submission_id, arn = completion.launched()

    # When its STOPPED event arrives
    result = completion.invoke(stopped_event(submission_id, arn, exit_code=0))

    # Then it is SUCCEEDED, no report is required and the API is never called
    record = completion.record(submission_id)
    assert record.state is SubmissionState.SUCCEEDED
    assert record.report_status is ReportStatus.NOT_REQUIRED
    assert record.exit_code == 0
    assert completion.api.posts == 0
    assert result["disposition"] == "not_required"
    assert completion.metrics.counted() == [(Metric.TASKS_SUCCEEDED, None)]


def test_exit_0_with_report_on_success_posts_one_queued_review(
    status_table: str, clock: Any, lambda_context: Any
) -> None:
    completion = install_completion(
        status_table,
        clock,
        lambda_context,
        api=FakeReviewApi(),
        config=FakeConfigSource(challenge_config(report_on_success=True)),
    )
    submission_id, arn = completion.launched()

    completion.invoke(stopped_event(submission_id, arn, exit_code=0))

    [review] = completion.api.reviews_for(submission_id)
    assert review["status"] == "queued"
    assert review["score"] == 0  # the spec's Review schema requires a score on every POST
    assert review["metadata"]["testStatus"] == "SUCCESS"
    assert review["metadata"]["outcome"] == "SUCCEEDED"
    assert completion.record(submission_id).report_status is ReportStatus.REPORTED


def test_exit_1_posts_exactly_one_failure_review_with_score_0_and_metadata(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)

    result = completion.invoke(event)

    [review] = completion.api.reviews_for(submission_id)
    assert review["score"] == 0
    assert review["status"] == "completed"
    assert review["typeId"] == REVIEW_TYPE_ID
    assert review["reviewerId"] == REVIEWER_ID
    assert review["scoreCardId"] == SCORE_CARD_ID
    assert review["metadata"] == {
        "testType": "provisional",
        "testStatus": "FAILED",
        "reason": "scorer exited with code 1",
        "exitCode": 1,
        "stopCode": "EssentialContainerExited",
        "taskArn": arn,
        "correlationId": task_environment(submission_id)[TaskEnv.CORRELATION_ID.value],
        "outcome": "FAILED",
        "reportedBy": "mm-processor",
    }
    record = completion.record(submission_id)
    assert (record.state, record.report_status, record.exit_code) == (
        SubmissionState.FAILED,
        ReportStatus.REPORTED,
        1,
    )
    assert result == {
        "disposition": "reported",
        "reason": "completed",
        "submissionId": submission_id,
        "phase": "PROVISIONAL",
        "runId": rid(submission_id),
        "outcome": "FAILED",
        "reviewId": review["id"],
    }
    assert (Metric.TASKS_FAILED, FailureReason.NON_ZERO_EXIT) in completion.metrics.counts
    assert (Metric.REPORTS_SENT, None) in completion.metrics.counts


def test_task_failed_to_start_with_empty_containers_posts_one_failure_review(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(
        submission_id,
        arn,
        containers=[],
        stop_code="TaskFailedToStart",
        stopped_reason="CannotPullContainerError: repository does not exist",
    )

    completion.invoke(event)

    [review] = completion.api.reviews_for(submission_id)
    assert review["score"] == 0
    assert review["metadata"]["testStatus"] == "FAILED"
    assert review["metadata"]["stopCode"] == "TaskFailedToStart"
    assert review["metadata"]["exitCode"] is None
    assert "CannotPullContainerError" in review["metadata"]["reason"]
    assert completion.record(submission_id).state is SubmissionState.FAILED
    assert (Metric.TASKS_FAILED, FailureReason.FAILED_TO_START) in completion.metrics.counts


def test_cancelled_run_is_reported_with_test_status_cancelled(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    completion.invoke(
        stopped_event(submission_id, arn, exit_code=143, stop_code="UserInitiated", stopped_reason="stopped by ops")
    )
    [review] = completion.api.reviews_for(submission_id)
    assert review["metadata"]["testStatus"] == "CANCELLED"
    assert completion.record(submission_id).state is SubmissionState.FAILED


def test_the_same_stopped_event_twice_reports_once(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=2)

    first = completion.invoke(event)
    second = completion.invoke(event)

    assert len(completion.api.reviews_for(submission_id)) == 1
    assert completion.api.posts == 1
    assert (first["disposition"], second["disposition"]) == ("reported", "duplicate")
    assert completion.metrics.counts[(Metric.DUPLICATE_EVENTS, None)] == 1
    assert completion.metrics.counts[(Metric.TASKS_FAILED, FailureReason.NON_ZERO_EXIT)] == 1


def test_api_500_fails_the_invocation_and_the_redelivery_reports_once(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    completion.api.fail_next(ApiTransientError("POST /reviews: server error (500) after 3 attempts", status_code=500))

    # When the API fails transiently, the invocation raises (EventBridge / async retry redelivers)
    with pytest.raises(ApiTransientError):
        completion.invoke(event)

    # Then the claim is released at once (no waiting for the lease) and nothing was posted
    record = completion.record(submission_id)
    assert record.state is SubmissionState.FAILED
    assert record.report_status is ReportStatus.PENDING
    assert completion.api.reviews_for(submission_id) == []
    assert (Metric.REPORT_FAILURES, "transient") in completion.metrics.counts

    # When the event is delivered again
    result = completion.invoke(event)

    # Then it reports exactly once
    assert result["disposition"] == "reported"
    assert len(completion.api.reviews_for(submission_id)) == 1
    assert completion.record(submission_id).report_status is ReportStatus.REPORTED


def test_a_retried_attempt_finds_the_review_already_posted_and_does_not_post_again(completion: Completion) -> None:
    # Given an API that stores the review but whose answer is lost (an ambiguous failure)
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    completion.api.fail_next(ApiTransientError("read timed out"), after_storing=True)
    with pytest.raises(ApiTransientError):
        completion.invoke(event)
    assert len(completion.api.reviews_for(submission_id)) == 1

    # When the event is redelivered (report attempt 2)
    result = completion.invoke(event)

    # Then the handler looks first, finds its review by task ARN and does not post again
    assert completion.api.lookups == 1
    assert completion.api.posts == 1
    assert len(completion.api.reviews_for(submission_id)) == 1
    assert result["disposition"] == "already_reported"
    assert result["reviewId"] == completion.api.reviews_for(submission_id)[0]["id"]
    record = completion.record(submission_id)
    assert record.report_status is ReportStatus.REPORTED
    assert "already posted" in (record.report_response or "")


def test_a_crash_after_posting_is_covered_once_the_lease_expires(completion: Completion) -> None:
    # Given an invocation that claimed and posted, then died before marking (no release: the process is gone)
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    completion.invoke(event)  # records and reports normally...
    record = completion.record(submission_id)
    assert record.report_status is ReportStatus.REPORTED
    # ...simulate the crash variant: put the item back to an expired REPORTING lease
    aws_clients.client("dynamodb").update_item(
        TableName=completion.store._table,
        Key={"runId": {"S": rid(submission_id)}},
        UpdateExpression="SET reportStatus = :r, reportLeaseUntil = :l",
        ExpressionAttributeValues={":r": {"S": "REPORTING"}, ":l": {"N": str(int(completion.clock.now) + 120)}},
    )

    # While the lease is live the redelivery may be the dead invocation's own retry: it must not be
    # acknowledged as a duplicate (that would drop the report), so it fails and is retried later
    with pytest.raises(ReportInProgressError):
        completion.invoke(event)
    # Once it has expired the dead holder may still have posted until the lease's end: the redelivery waits out
    # the slow-commit window after it (decision 074) without looking or posting...
    completion.clock.advance(121)
    with pytest.raises(ReportOutcomeUnsettledError):
        completion.invoke(event)
    assert (completion.api.lookups, completion.api.posts) == (0, 1)
    # ...then claims again, looks, and finds the review
    completion.clock.advance(60)
    assert completion.invoke(event)["disposition"] == "already_reported"
    assert completion.api.posts == 1


def test_api_auth_error_is_treated_as_transient(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    completion.api.fail_next(ApiAuthError("POST /reviews answered 401 again after a token refresh", status_code=401))
    with pytest.raises(ApiAuthError):
        completion.invoke(stopped_event(submission_id, arn, exit_code=1))
    assert completion.record(submission_id).report_status is ReportStatus.PENDING
    assert (Metric.REPORT_FAILURES, "auth") in completion.metrics.counts


def test_api_400_records_rejected_without_retry_and_counts_it(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    completion.api.fail_next(ApiRejectedError(400, '{"message":"\\"scoreCardId\\" must be a number"}'))

    # When the API rejects the review, the invocation still returns normally (no retry)
    result = completion.invoke(event)

    assert result["disposition"] == "rejected"
    record = completion.record(submission_id)
    assert record.report_status is ReportStatus.REJECTED
    assert "400" in (record.report_response or "")
    assert "scoreCardId" in (record.report_response or "")
    assert (Metric.REPORT_FAILURES, "rejected_400") in completion.metrics.counts
    # And a redelivery does not try again
    assert completion.invoke(event)["disposition"] == "duplicate"
    assert completion.api.posts == 1


def test_rejection_metric_is_emitted_as_emf_with_reason_and_environment(
    status_table: str, clock: Any, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    completion = install_completion(
        status_table, clock, lambda_context, api=FakeReviewApi(), metrics=EmfMetricsSink(environment_name="example")
    )
    submission_id, arn = completion.launched()
    completion.api.fail_next(ApiRejectedError(400, "bad"))
    capsys.readouterr()

    completion.invoke(stopped_event(submission_id, arn, exit_code=1))

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    rejected = [d for d in documents if "ReportFailures" in d]
    assert rejected, documents
    assert rejected[0]["Reason"] == "rejected_400"
    assert rejected[0]["Environment"] == "example"
    assert rejected[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MMProcessor"
    assert any("TasksFailed" in d and d.get("Reason") == FailureReason.NON_ZERO_EXIT for d in documents)


def test_event_for_a_foreign_task_is_ignored(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1, started_by="ecs-svc/1234567890")

    result = completion.invoke(event)

    assert result["disposition"] == "ignored"
    assert result["reason"] == "foreign_task"
    assert completion.record(submission_id).state is SubmissionState.LAUNCHED
    assert completion.api.posts == 0
    assert completion.metrics.counted() == [(Metric.EVENTS_IGNORED, "foreign_task")]


def test_event_of_another_environment_is_ignored(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1, started_by=f"mm-processor/prod/{CHALLENGE_ID}")
    assert completion.invoke(event)["reason"] == "foreign_task"
    assert completion.record(submission_id).state is SubmissionState.LAUNCHED


def test_event_that_is_not_stopped_is_ignored(completion: Completion) -> None:
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn)
    event["detail"]["lastStatus"] = "RUNNING"
    assert completion.invoke(event)["reason"] == "not_stopped"
    assert completion.record(submission_id).state is SubmissionState.LAUNCHED


def test_other_event_kind_is_ignored(completion: Completion) -> None:
    event = {**stopped_event(new_uuid(), task_arn()), "detail-type": "ECS Deployment State Change", "detail": {}}
    assert completion.invoke(event)["reason"] == "not_task_state_change"


def test_malformed_task_state_change_fails_the_invocation(completion: Completion) -> None:
    event = stopped_event(new_uuid(), task_arn())
    del event["detail"]["clusterArn"]
    with pytest.raises(InvalidEventError):
        completion.invoke(event)


def test_stale_event_for_an_earlier_task_is_ignored(completion: Completion) -> None:
    # Given the item tracks task B, a STOPPED event for an older task A of the same submission arrives
    submission_id, current_arn = completion.launched()
    result = completion.invoke(stopped_event(submission_id, task_arn(), exit_code=1))
    assert result["reason"] == "other_task"
    record = completion.record(submission_id)
    assert (record.state, record.task_arn) == (SubmissionState.LAUNCHED, current_arn)
    assert completion.api.posts == 0


def test_overrides_without_submission_id_fall_back_to_describe_tasks_tags(completion: Completion) -> None:
    # Given a task (in moto) whose overrides lack MM_SUBMISSION_ID but whose tags carry it
    submission_id = new_uuid()
    task = moto_ecs_task(
        environment={TaskEnv.SCORER_TYPE.value: "example-scorer"},
        tags={TaskTag.SUBMISSION_ID.value: submission_id, TaskTag.CHALLENGE_ID.value: CHALLENGE_ID},
    )
    completion.launched(submission_id, arn=task.task_arn)
    event = stopped_event(
        submission_id,
        task.task_arn,
        cluster_arn=task.cluster_arn,
        environment={TaskEnv.SCORER_TYPE.value: "example-scorer"},
        exit_code=1,
    )

    # When its STOPPED event arrives
    completion.invoke(event)

    # Then the submission is found through the tags and reported
    [review] = completion.api.reviews_for(submission_id)
    assert review["metadata"]["taskArn"] == task.task_arn
    # no correlation id in the overrides: the status item's (the router's) is used
    assert review["metadata"]["correlationId"] == "submission.notification.create-0-100"
    assert completion.record(submission_id).report_status is ReportStatus.REPORTED


def test_describe_tasks_is_asked_for_tags_and_not_at_all_when_overrides_suffice(
    status_table: str, clock: Any, lambda_context: Any
) -> None:
    ecs = aws_clients.client("ecs")
    completion = install_completion(status_table, clock, lambda_context, api=FakeReviewApi(), ecs=ecs)
    submission_id, arn = completion.launched()
    with Stubber(ecs) as stub:
        stub.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": arn, "tags": [{"key": "SubmissionId", "value": submission_id}]}], "failures": []},
            {"cluster": CLUSTER_ARN, "tasks": [arn], "include": ["TAGS"]},
        )
        completion.invoke(stopped_event(submission_id, arn, environment={}, exit_code=1))
        stub.assert_no_pending_responses()
        # Overrides that name the submission: no ECS call at all (the stubber would fail on one)
        other_id, other_arn = completion.launched()
        completion.invoke(stopped_event(other_id, other_arn, exit_code=1))
    assert len(completion.api.reviews) == 2


def test_task_without_overrides_or_tags_is_ignored_as_unidentified(
    status_table: str, clock: Any, lambda_context: Any
) -> None:
    ecs = aws_clients.client("ecs")
    completion = install_completion(status_table, clock, lambda_context, api=FakeReviewApi(), ecs=ecs)
    arn = task_arn()
    with Stubber(ecs) as stub:
        stub.add_response("describe_tasks", {"tasks": [], "failures": [{"arn": arn, "reason": "MISSING"}]})
        result = completion.invoke(stopped_event(new_uuid(), arn, environment={}, exit_code=1))
    assert result["reason"] == "submission_unidentified"
    assert (Metric.EVENTS_IGNORED, "submission_unidentified") in completion.metrics.counts


def test_missing_config_records_the_outcome_and_defers_the_report_until_fixed(
    status_table: str, clock: Any, lambda_context: Any
) -> None:
    config = FakeConfigSource(error=ConfigErrorReason.PARAMETER_MISSING)
    completion = install_completion(status_table, clock, lambda_context, api=FakeReviewApi(), config=config)
    submission_id, arn = completion.launched()
    event = stopped_event(submission_id, arn, exit_code=1)

    # When the config is missing: the outcome is recorded, the report left PENDING, the invocation fails
    with pytest.raises(ReportDeferredError):
        completion.invoke(event)
    record = completion.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.PENDING)
    assert (Metric.REPORT_FAILURES, "config_parameter_missing") in completion.metrics.counts

    # When the config is fixed and the event redriven from the DLQ: reported once
    config.error = None
    assert completion.invoke(event)["disposition"] == "reported"
    assert len(completion.api.reviews_for(submission_id)) == 1


def test_unreadable_config_fails_before_recording_anything(status_table: str, clock: Any, lambda_context: Any) -> None:
    config = FakeConfigSource(error=ConfigErrorReason.PARAMETER_UNREADABLE)
    completion = install_completion(status_table, clock, lambda_context, api=FakeReviewApi(), config=config)
    submission_id, arn = completion.launched()
    with pytest.raises(Exception, match="parameter_unreadable"):
        completion.invoke(stopped_event(submission_id, arn, exit_code=0))
    assert completion.record(submission_id).state is SubmissionState.LAUNCHED


def test_stopped_event_for_a_submission_never_launched_creates_nothing_and_posts_nothing(
    completion: Completion,
) -> None:
    # Defect 8: our startedBy and a well-formed id are not enough; only a submission the pipeline launched (an
    # item that tracks the task) is acted on. (Changed: before, an item was created and a review posted.)
    submission_id, arn = new_uuid(), task_arn()

    result = completion.invoke(stopped_event(submission_id, arn, exit_code=1))

    assert (result["disposition"], result["reason"]) == ("ignored", "unknown_submission")
    assert completion.store.get(rid(submission_id)) is None
    assert completion.api.posts == 0
    assert completion.metrics.counted() == [(Metric.EVENTS_IGNORED, "unknown_submission")]
