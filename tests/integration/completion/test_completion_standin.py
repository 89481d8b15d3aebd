"""Completion handler against the spec-validating Topcoder stand-in, wired as in production.

Everything is built from `CompletionSettings` the way the deployed function builds it: the Auth0 proxy
token provider reading its credentials from (moto) Secrets Manager, the Submission API client, and the
challenge config from (moto) SSM. Only the status store's clock and the metrics sink are injected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from completion_lambda import handler as completion_handler
from completion_lambda import wiring as completion_wiring
from completion_lambda.results import ReportOutcomeUnsettledError
from completion_lambda.wiring import CompletionDependencies
from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_adapters.topcoder.submission_api import ApiOutcomeUnknownError
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.names import challenge_config_parameter_name
from mm_contracts.settings import CompletionSettings, TokenSource
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CAPACITY_PARAMETER,
    CAPACITY_TABLE,
    CLUSTER_ARN,
    ENVIRONMENT,
    create_auth0_secret,
    launch_task,
    rid,
    stopped_event,
    task_arn,
)
from tests.unit.completion.fakes import CHALLENGE_ID, challenge_config
from topcoder_standin import TopcoderStandIn

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

REVIEWS = "/v5/reviews"


class Harness:
    def __init__(
        self, standin: TopcoderStandIn, store: StatusStore, metrics: RecordingMetrics, context: Any, clock: Clock
    ):
        self.standin = standin
        self.clock = clock
        self.store = store
        self.metrics = metrics
        self.context = context

    def launched(self) -> tuple[str, str]:
        submission_id, arn = new_uuid(), task_arn()
        self.standin.add_submission(submission_id, CHALLENGE_ID, 40_158_994)
        launch_task(self.store, submission_id, arn, CLUSTER_ARN)
        return submission_id, arn

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return completion_handler.handler(event, self.context)

    def state(self, submission_id: str) -> tuple[SubmissionState, ReportStatus | None]:
        record = self.store.get(rid(submission_id))
        assert record is not None
        return record.state, record.report_status


@pytest.fixture
def harness(status_table: str, clock: Clock, lambda_context: Any) -> Iterator[Harness]:
    secret_arn = create_auth0_secret()
    aws_clients.client("ssm").put_parameter(
        Name=challenge_config_parameter_name(CHALLENGE_ID),
        Type="String",
        Value=challenge_config().to_json(),
    )
    with TopcoderStandIn() as standin:
        settings = CompletionSettings(
            environment_name=ENVIRONMENT,
            status_table_name=status_table,
            challenge_config_parameter_prefix="/mm-processor/challenges",
            submission_api_url=standin.base_url,
            api_timeout_seconds=5,
            api_max_retries=0,  # the client's own backoff would sleep; redelivery is what is tested here
            token_source=TokenSource.AUTH0_PROXY,
            auth0_proxy_url=standin.token_url,
            auth0_credentials_secret_arn=secret_arn,
            capacity_table_name=CAPACITY_TABLE,
            capacity_parameter_name=CAPACITY_PARAMETER,
        )
        store = StatusStore(status_table, clock=clock)
        metrics = RecordingMetrics()
        completion_wiring.use_dependencies(CompletionDependencies(settings, store=store, metrics_sink=metrics))
        yield Harness(standin, store, metrics, lambda_context, clock)
        completion_wiring.use_dependencies(None)
        assert standin.violations() == [], [(r.method, r.path, r.errors) for r in standin.violations()]


def test_failure_is_posted_once_as_a_spec_valid_review(harness: Harness) -> None:
    submission_id, arn = harness.launched()
    event = stopped_event(submission_id, arn, exit_code=1)

    harness.invoke(event)
    harness.invoke(event)  # at-least-once delivery

    [review] = harness.standin.reviews_for(submission_id)
    assert review["score"] == 0
    assert review["status"] == "completed"
    assert review["metadata"]["testStatus"] == "FAILED"
    assert review["metadata"]["taskArn"] == arn
    assert len(harness.standin.requests_to("POST", REVIEWS)) == 1
    assert harness.state(submission_id) == (SubmissionState.FAILED, ReportStatus.REPORTED)


def test_task_failed_to_start_posts_one_review_with_null_exit_code(harness: Harness) -> None:
    submission_id, arn = harness.launched()
    harness.invoke(
        stopped_event(submission_id, arn, containers=[], stop_code="TaskFailedToStart", stopped_reason="no capacity")
    )
    [review] = harness.standin.reviews_for(submission_id)
    assert review["metadata"]["exitCode"] is None
    assert review["metadata"]["stopCode"] == "TaskFailedToStart"


def test_success_posts_nothing_by_default(harness: Harness) -> None:
    submission_id, arn = harness.launched()
    harness.invoke(stopped_event(submission_id, arn, exit_code=0))
    assert harness.standin.requests_to("POST", REVIEWS) == []
    assert harness.standin.requests_to("POST", "/token") == []  # no token needed either
    assert harness.state(submission_id) == (SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED)


def test_success_with_report_on_success_posts_a_spec_valid_queued_review(harness: Harness) -> None:
    aws_clients.client("ssm").put_parameter(
        Name=challenge_config_parameter_name(CHALLENGE_ID),
        Type="String",
        Value=challenge_config(report_on_success=True).to_json(),
        Overwrite=True,
    )
    submission_id, arn = harness.launched()
    harness.invoke(stopped_event(submission_id, arn, exit_code=0))
    [review] = harness.standin.reviews_for(submission_id)
    assert (review["status"], review["score"], review["metadata"]["testStatus"]) == ("queued", 0, "SUCCESS")


def test_api_500_raises_leaves_pending_and_the_second_delivery_reports_once(harness: Harness) -> None:
    submission_id, arn = harness.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    harness.standin.fail_next("POST", REVIEWS, status=500)

    with pytest.raises(ApiOutcomeUnknownError):
        harness.invoke(event)
    assert harness.state(submission_id) == (SubmissionState.FAILED, ReportStatus.PENDING)
    assert harness.standin.reviews_for(submission_id) == []

    # A retry inside the slow-commit window neither looks nor posts (decision 074)...
    with pytest.raises(ReportOutcomeUnsettledError):
        harness.invoke(event)
    assert len(harness.standin.requests_to("POST", REVIEWS)) == 1
    # ...Lambda's retry a minute later looks, finds nothing, and posts once
    harness.clock.advance(60)
    harness.invoke(event)
    assert len(harness.standin.reviews_for(submission_id)) == 1
    assert harness.state(submission_id) == (SubmissionState.FAILED, ReportStatus.REPORTED)


def test_500_after_the_review_was_stored_is_not_posted_twice(harness: Harness) -> None:
    # Given a server that commits the review and then answers 500
    submission_id, arn = harness.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    harness.standin.fail_next("POST", REVIEWS, status=500, after_store=True)
    with pytest.raises(ApiOutcomeUnknownError):
        harness.invoke(event)

    # When the event is redelivered by Lambda's async retry, a minute later
    harness.clock.advance(60)
    result = harness.invoke(event)

    # Then the retried attempt looks first (GET /reviews) and does not post again
    assert result["disposition"] == "already_reported"
    assert len(harness.standin.reviews_for(submission_id)) == 1
    assert len(harness.standin.requests_to("POST", REVIEWS)) == 1
    assert harness.standin.requests_to("GET", REVIEWS)
    assert harness.state(submission_id) == (SubmissionState.FAILED, ReportStatus.REPORTED)


def test_401_refreshes_the_token_once_and_reports(harness: Harness) -> None:
    # Given a token already cached by an earlier invocation, which then expires at Topcoder
    first_id, first_arn = harness.launched()
    harness.invoke(stopped_event(first_id, first_arn, exit_code=1))
    assert len(harness.standin.requests_to("POST", "/token")) == 1
    harness.standin.expire_all_tokens()

    # When the next report is sent
    submission_id, arn = harness.launched()
    harness.invoke(stopped_event(submission_id, arn, exit_code=1))

    # Then the API answered 401 once, the token was refreshed once (fresh_token), and the review posted
    posts = harness.standin.requests_to("POST", REVIEWS)
    assert [p.status for p in posts] == [200, 401, 200]
    token_requests = harness.standin.requests_to("POST", "/token")
    assert len(token_requests) == 2
    assert token_requests[1].json["fresh_token"] is True
    assert len(harness.standin.reviews_for(submission_id)) == 1


def test_api_400_is_recorded_as_rejected_and_not_retried(harness: Harness) -> None:
    submission_id, arn = harness.launched()
    event = stopped_event(submission_id, arn, exit_code=1)
    harness.standin.fail_next("POST", REVIEWS, status=400, body={"message": '"score" must be a number'})

    result = harness.invoke(event)
    again = harness.invoke(event)

    assert (result["disposition"], again["disposition"]) == ("rejected", "duplicate")
    record = harness.store.get(rid(submission_id))
    assert record is not None
    assert record.report_status is ReportStatus.REJECTED
    assert "must be a number" in (record.report_response or "")
    assert (Metric.REPORT_FAILURES, "rejected_400") in harness.metrics.counts
    assert len(harness.standin.requests_to("POST", REVIEWS)) == 1


def test_review_for_a_submission_unknown_to_topcoder_is_rejected_404(harness: Harness) -> None:
    submission_id, arn = new_uuid(), task_arn()
    launch_task(harness.store, submission_id, arn, CLUSTER_ARN)  # not added to the stand-in
    result = harness.invoke(stopped_event(submission_id, arn, exit_code=1))
    assert result["disposition"] == "rejected"
    assert (Metric.REPORT_FAILURES, "rejected_404") in harness.metrics.counts
