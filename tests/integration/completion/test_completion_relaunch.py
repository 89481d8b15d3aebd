"""Defect 10: a transient TaskFailedToStart is relaunched through its challenge queue, bounded, with backoff.

Real handler and CompletionService on moto DynamoDB and SQS; the launch side is the real StatusStore protocol
(claim_launch / mark_launched), as the challenge processor drives it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from completion_lambda import handler as completion_handler
from completion_lambda import wiring as completion_wiring
from completion_lambda.wiring import CompletionDependencies
from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from mm_contracts.models.task import TaskEnv
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    DEFAULT_PHASE,
    ENVIRONMENT,
    completion_settings,
    rid,
    stopped_event,
    task_arn,
    task_environment,
)
from tests.unit.completion.fakes import CHALLENGE_ID, FakeConfigSource, FakeReviewApi

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

QUEUE_NAME_TEMPLATE = f"mm-{ENVIRONMENT}-ch-{{challenge_id}}"
PULL_TIMEOUT = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/mm-scorer:latest: dial tcp 10.0.1.5:443: i/o timeout"
)
IMAGE_MISSING = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/mm-scorer:v9: not found"
)


class RecordingSqs:
    """moto's SQS client, with every SendMessage recorded (DelaySeconds is what the test checks)."""

    def __init__(self) -> None:
        self.client = aws_clients.client("sqs")
        self.sent: list[dict[str, Any]] = []
        self.fail_sends = 0

    def get_queue_url(self, **kwargs: Any) -> Any:
        return self.client.get_queue_url(**kwargs)

    def send_message(self, **kwargs: Any) -> Any:
        if self.fail_sends:
            self.fail_sends -= 1
            raise ConnectionError("SQS endpoint unreachable (injected)")
        self.sent.append(kwargs)
        return self.client.send_message(**kwargs)


class Harness:
    def __init__(self, status_table: str, clock: Clock, context: Any) -> None:
        self.clock = clock
        self.context = context
        self.store = StatusStore(status_table, clock=clock)
        self.api = FakeReviewApi()
        self.metrics = RecordingMetrics()
        self.queue_url = aws_clients.client("sqs").create_queue(QueueName=f"mm-{ENVIRONMENT}-ch-{CHALLENGE_ID}")[
            "QueueUrl"
        ]
        self.sqs = RecordingSqs()
        settings = completion_settings(status_table).model_copy(
            update={"challenge_queue_name_template": QUEUE_NAME_TEMPLATE}
        )
        completion_wiring.use_dependencies(
            CompletionDependencies(
                settings,
                store=self.store,
                config_source=FakeConfigSource(),
                review_api=self.api,
                sqs=self.sqs,
                metrics_sink=self.metrics,
            )
        )

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return completion_handler.handler(event, self.context)

    def launch(self, submission: RoutedSubmission) -> tuple[str, int]:
        """What the challenge processor does with a delivery: claim, RunTask, mark launched."""
        claim = self.store.claim_launch(submission, phase=DEFAULT_PHASE, scorer_type="example-scorer", lease_seconds=60)
        assert claim.granted, claim
        arn = task_arn()
        assert self.store.mark_launched(
            rid(submission.submission_id),
            attempt=claim.attempt,
            task_arn=arn,
            cluster_arn=CLUSTER_ARN,
            timeout_seconds=600,
        )
        return arn, claim.attempt

    def start_failure(self, submission_id: str, arn: str, attempt: int, reason: str = PULL_TIMEOUT) -> dict[str, Any]:
        env = task_environment(submission_id, overrides={TaskEnv.LAUNCH_ATTEMPT.value: str(attempt)})
        return stopped_event(
            submission_id, arn, environment=env, containers=[], stop_code="TaskFailedToStart", stopped_reason=reason
        )


@pytest.fixture
def harness(status_table: str, clock: Clock, lambda_context: Any) -> Iterator[Harness]:
    yield Harness(status_table, clock, lambda_context)
    completion_wiring.use_dependencies(None)


def routed() -> RoutedSubmission:
    return RoutedSubmission(
        submission_id=new_uuid(),
        challenge_id=CHALLENGE_ID,
        member_id=40_158_994,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        correlation_id="submission.notification.create-0-9",
        source=KafkaCoordinates(topic="submission.notification.create", partition=0, offset=9),
        routed_at=datetime.now(tz=UTC),
    )


def test_a_transient_start_failure_is_relaunched_through_the_challenge_queue(harness: Harness) -> None:
    # Given a launched submission whose task failed to start because the image pull timed out
    submission = routed()
    arn, attempt = harness.launch(submission)

    # When its STOPPED event arrives
    result = harness.invoke(harness.start_failure(submission.submission_id, arn, attempt))

    # Then no review: the item is LAUNCH_FAILED (next claim advances the token) and the routed message is back
    # on the challenge queue, delayed 60 s
    assert result["disposition"] == "relaunched"
    assert harness.api.posts == 0
    record = harness.store.get(rid(submission.submission_id))
    assert record is not None
    assert (record.state, record.start_relaunches, record.launch_ambiguous) == (SubmissionState.LAUNCH_FAILED, 1, False)
    [sent] = harness.sqs.sent
    assert sent["QueueUrl"] == harness.queue_url
    assert sent["DelaySeconds"] == 60
    # the routed message as claimed, narrowed to the one phase being relaunched
    assert RoutedSubmission.model_validate_json(sent["MessageBody"]) == submission.model_copy(
        update={"phase": DEFAULT_PHASE}
    )
    assert sent["MessageAttributes"]["challengeId"]["StringValue"] == CHALLENGE_ID
    attributes = harness.sqs.client.get_queue_attributes(QueueUrl=harness.queue_url, AttributeNames=["All"])
    assert int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"]) == 1
    assert harness.metrics.counted() == [(Metric.START_FAILURES_RELAUNCHED, None)]


def test_relaunches_are_bounded_with_backoff_then_reported_as_a_failure(harness: Harness) -> None:
    submission = routed()
    delays = []
    attempts = []
    for _ in range(3):  # the first launch and two relaunches all fail to start
        arn, attempt = harness.launch(submission)
        attempts.append(attempt)
        result = harness.invoke(harness.start_failure(submission.submission_id, arn, attempt))
        if result["disposition"] == "relaunched":
            delays.append(harness.sqs.sent[-1]["DelaySeconds"])

    # Each relaunch used a new clientToken (attempt), waited longer, and the third failure was reported once
    assert attempts == [1, 2, 3]
    assert delays == [60, 120]
    assert result["disposition"] == "reported"
    [review] = harness.api.reviews_for(submission.submission_id)
    assert review["metadata"]["stopCode"] == "TaskFailedToStart"
    assert "after 2 relaunches" in review["metadata"]["reason"]
    record = harness.store.get(rid(submission.submission_id))
    assert record is not None
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.REPORTED)


def test_a_duplicate_event_after_the_relaunch_sends_nothing_more(harness: Harness) -> None:
    submission = routed()
    arn, attempt = harness.launch(submission)
    event = harness.start_failure(submission.submission_id, arn, attempt)
    harness.invoke(event)

    again = harness.invoke(event)

    assert again["disposition"] == "duplicate"
    assert len(harness.sqs.sent) == 1


def test_a_crash_between_the_state_change_and_the_send_does_not_lose_the_run(harness: Harness) -> None:
    # Given the send fails after the item went LAUNCH_FAILED (the invocation fails)
    submission = routed()
    arn, attempt = harness.launch(submission)
    event = harness.start_failure(submission.submission_id, arn, attempt)
    harness.sqs.fail_sends = 1
    with pytest.raises(ConnectionError):
        harness.invoke(event)
    record = harness.store.get(rid(submission.submission_id))
    assert record is not None
    assert record.state is SubmissionState.LAUNCH_FAILED

    # When Lambda retries the event
    result = harness.invoke(event)

    # Then the relaunch is sent (once), and counted once
    assert result["disposition"] == "relaunched"
    assert len(harness.sqs.sent) == 1
    record = harness.store.get(rid(submission.submission_id))
    assert record is not None
    assert record.start_relaunches == 1
    # And the relaunched message launches normally on a new attempt
    body = json.loads(harness.sqs.sent[0]["MessageBody"])
    assert harness.launch(RoutedSubmission.model_validate(body))[1] == 2


def test_a_missing_image_is_reported_at_once(harness: Harness) -> None:
    submission = routed()
    arn, attempt = harness.launch(submission)

    result = harness.invoke(harness.start_failure(submission.submission_id, arn, attempt, reason=IMAGE_MISSING))

    assert result["disposition"] == "reported"
    assert harness.sqs.sent == []
    [review] = harness.api.reviews_for(submission.submission_id)
    assert "not found" in review["metadata"]["reason"]


def test_a_start_failure_of_an_unknown_submission_is_not_relaunched(harness: Harness) -> None:
    result = harness.invoke(harness.start_failure(new_uuid(), task_arn(), 1))
    assert (result["disposition"], result["reason"]) == ("ignored", "unknown_submission")
    assert harness.sqs.sent == []
