"""Defect 6 and the report of the recorded outcome: never "no report needed" without the challenge's policy;
a duplicate or re-driven event reports what was recorded; a required report carries a deadline for the sweeper.
Real handler and CompletionService on a moto status table."""

from __future__ import annotations

from typing import Any

import pytest

from completion_lambda.results import ReportDeferredError
from mm_adapters.challenge_config import ConfigErrorReason
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.task import TaskEnv
from tests.integration.completion.conftest import install_completion, stopped_event, task_environment
from tests.unit.completion.fakes import FakeConfigSource, FakeReviewApi, challenge_config

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

REPORT_CHECK_DELAY = 600  # CompletionSettings.report_check_delay_seconds default


def container(name: str, exit_code: int | None) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name, "lastStatus": "STOPPED"}
    if exit_code is not None:
        data["exitCode"] = exit_code
    return data


@pytest.fixture
def no_config(status_table: str, clock: Any, lambda_context: Any) -> Any:
    config = FakeConfigSource(error=ConfigErrorReason.PARAMETER_MISSING)
    return install_completion(status_table, clock, lambda_context, api=FakeReviewApi(), config=config)


def test_sidecar_exiting_0_without_config_is_not_a_success_without_report(no_config: Any) -> None:
    # Given a task whose log router exited 0 and whose scorer exited 1, the overrides naming no container,
    # and no usable config (the old fallback took the first exit code: SUCCEEDED, no report, permanently)
    submission_id, arn = no_config.launched()
    event = stopped_event(
        submission_id,
        arn,
        container_name="",
        containers=[container("log-router", 0), container("scorer", 1)],
    )

    with pytest.raises(ReportDeferredError):
        no_config.invoke(event)

    record = no_config.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.PENDING)
    assert "scorer container not identified" in (record.reason or "")


def test_the_scorer_named_by_its_overrides_decides_even_without_config(no_config: Any) -> None:
    submission_id, arn = no_config.launched()
    event = stopped_event(
        submission_id,
        arn,
        container_name="app",
        environment=task_environment(submission_id),
        containers=[container("log-router", 0), container("app", 1)],
    )
    with pytest.raises(ReportDeferredError):
        no_config.invoke(event)
    record = no_config.record(submission_id)
    assert (record.state, record.exit_code) == (SubmissionState.FAILED, 1)


def test_success_without_config_waits_for_the_policy_then_settles_not_required(no_config: Any) -> None:
    # Given a scorer that exited 0 and no readable config: the report policy is unknown
    submission_id, arn = no_config.launched()
    event = stopped_event(submission_id, arn, exit_code=0)

    # Then the outcome is recorded, but "no report needed" is not settled: PENDING, deferred, with a deadline
    with pytest.raises(ReportDeferredError):
        no_config.invoke(event)
    record = no_config.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.SUCCEEDED, ReportStatus.PENDING)
    assert record.deadline_at == int(no_config.clock.now) + REPORT_CHECK_DELAY

    # When the config is readable on a retry (or DLQ redrive, or the sweeper's re-drive) and needs no report
    no_config.config.error = None
    result = no_config.invoke(event)

    # Then PENDING -> NOT_REQUIRED, nothing posted, nothing left for the sweeper
    assert result["disposition"] == "not_required"
    record = no_config.record(submission_id)
    assert record.report_status is ReportStatus.NOT_REQUIRED
    assert record.deadline_at is None
    assert no_config.api.posts == 0


def test_success_without_config_is_reported_when_the_policy_asks_for_it(no_config: Any) -> None:
    submission_id, arn = no_config.launched()
    event = stopped_event(submission_id, arn, exit_code=0)
    with pytest.raises(ReportDeferredError):
        no_config.invoke(event)

    no_config.config.error = None
    no_config.config.config = challenge_config(report_on_success=True)
    assert no_config.invoke(event)["disposition"] == "reported"
    [review] = no_config.api.reviews_for(submission_id)
    assert review["status"] == "queued"


def test_a_re_driven_event_reports_the_recorded_outcome_not_its_own(no_config: Any) -> None:
    # Given an outcome recorded from the real event (exit 1, config missing: report PENDING)
    submission_id, arn = no_config.launched()
    with pytest.raises(ReportDeferredError):
        no_config.invoke(stopped_event(submission_id, arn, exit_code=1))
    record = no_config.record(submission_id)
    assert (record.test_status, record.exit_code) == ("FAILED", 1)

    # When the sweeper re-drives the stuck report with a synthetic event that says something else
    no_config.config.error = None
    synthetic = stopped_event(
        submission_id,
        arn,
        containers=[],
        stop_code="UserInitiated",
        stopped_reason="operator stop",
        environment={TaskEnv.SUBMISSION_ID.value: submission_id, TaskEnv.CHALLENGE_ID.value: record.challenge_id},
    )
    assert no_config.invoke(synthetic)["disposition"] == "reported"

    # Then the review carries the recorded outcome
    [review] = no_config.api.reviews_for(submission_id)
    metadata = review["metadata"]
    assert (metadata["testStatus"], metadata["exitCode"], metadata["stopCode"]) == (
        "FAILED",
        1,
        "EssentialContainerExited",
    )
    assert metadata["reason"] == "scorer exited with code 1"
    assert metadata["taskArn"] == arn


def test_a_cancelled_run_keeps_its_recorded_test_status_when_reported_later(no_config: Any) -> None:
    submission_id, arn = no_config.launched()
    with pytest.raises(ReportDeferredError):
        no_config.invoke(stopped_event(submission_id, arn, exit_code=143, stop_code="UserInitiated"))
    assert no_config.record(submission_id).test_status == "CANCELLED"

    no_config.config.error = None
    no_config.invoke(stopped_event(submission_id, arn, exit_code=0))  # a mangled duplicate
    [review] = no_config.api.reviews_for(submission_id)
    assert review["metadata"]["testStatus"] == "CANCELLED"
    assert review["metadata"]["outcome"] == "FAILED"


def test_a_required_report_has_a_deadline_until_it_is_reported(completion: Any) -> None:
    submission_id, arn = completion.launched()
    completion.api.fail_next(RuntimeError("crash-like failure"))
    with pytest.raises(RuntimeError):
        completion.invoke(stopped_event(submission_id, arn, exit_code=1))
    record = completion.record(submission_id)
    assert record.report_status is ReportStatus.PENDING
    assert record.deadline_at == int(completion.clock.now) + REPORT_CHECK_DELAY

    completion.invoke(stopped_event(submission_id, arn, exit_code=1))
    record = completion.record(submission_id)
    assert record.report_status is ReportStatus.REPORTED
    assert record.deadline_at is None


def test_a_rejected_report_leaves_no_deadline(completion: Any) -> None:
    from mm_adapters.topcoder.submission_api import ApiRejectedError

    submission_id, arn = completion.launched()
    completion.api.fail_next(ApiRejectedError(400, "bad"))
    completion.invoke(stopped_event(submission_id, arn, exit_code=1))
    record = completion.record(submission_id)
    assert (record.report_status, record.deadline_at) == (ReportStatus.REJECTED, None)


def test_a_success_needing_no_report_has_no_deadline(completion: Any) -> None:
    submission_id, arn = completion.launched()
    completion.invoke(stopped_event(submission_id, arn, exit_code=0))
    record = completion.record(submission_id)
    assert (record.report_status, record.deadline_at, record.test_status) == (
        ReportStatus.NOT_REQUIRED,
        None,
        "SUCCESS",
    )
