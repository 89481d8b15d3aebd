"""Defect 4 end to end: a POST that times out and commits later yields exactly one review.

The real handler and CompletionService on a moto status table, the real SubmissionApiClient on a fake API
whose POST times out and commits 0.5 s or 30 s later (or never). One virtual clock drives the status store,
the client's sleeps and the API's commits; Lambda's async retries are replayed at their deployed offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from completion_lambda import handler as completion_handler
from completion_lambda import wiring as completion_wiring
from completion_lambda.results import ReportOutcomeUnsettledError
from completion_lambda.wiring import CompletionDependencies
from mm_adapters.status_store import StatusStore
from mm_adapters.topcoder.submission_api import ApiOutcomeUnknownError, SubmissionApiClient
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import ReportStatus
from tests.builders import new_uuid
from tests.fakes.clock import VirtualClock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    completion_settings,
    launch_task,
    rid,
    stopped_event,
    task_arn,
)
from tests.integration.topcoder.slow_commit import SlowCommitApi, StaticTokens
from tests.unit.completion.fakes import FakeConfigSource

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

FIRST_ASYNC_RETRY = 60  # Lambda retries a failed async invocation about 1 minute later...
SECOND_ASYNC_RETRY = 120  # ...and 2 minutes after that


class Flow:
    def __init__(self, status_table: str, context: Any, commit_delay: float | None, **api: Any) -> None:
        self.clock = VirtualClock()
        self.api = SlowCommitApi(self.clock, commit_delay=commit_delay, **api)
        self.store = StatusStore(status_table, clock=self.clock)
        self.metrics = RecordingMetrics()
        self.context = context
        client = SubmissionApiClient(
            "https://api.topcoder-dev.com/v5",
            StaticTokens(),
            max_retries=2,
            transport=self.api,
            sleep=self.clock.sleep,
        )
        settings = completion_settings(status_table).model_copy(update={"report_lease_seconds": 90})
        completion_wiring.use_dependencies(
            CompletionDependencies(
                settings,
                store=self.store,
                config_source=FakeConfigSource(),
                review_api=client,
                metrics_sink=self.metrics,
            )
        )

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return completion_handler.handler(event, self.context)


@pytest.fixture
def flow_factory(status_table: str, lambda_context: Any) -> Iterator[Any]:
    yield lambda commit_delay, **api: Flow(status_table, lambda_context, commit_delay, **api)
    completion_wiring.use_dependencies(None)


@pytest.mark.parametrize("commit_delay", [0.5, 30.0], ids=["commits-0.5s-later", "commits-30s-later"])
def test_a_slow_commit_ends_in_exactly_one_review(flow_factory: Any, commit_delay: float) -> None:
    # Given a launched submission whose scorer failed, and an API whose first POST times out and commits later
    flow = flow_factory(commit_delay)
    submission_id, arn = new_uuid(), task_arn()
    launch_task(flow.store, submission_id, arn, CLUSTER_ARN)
    event = stopped_event(submission_id, arn, exit_code=1)

    # When the first invocation posts: the outcome is unknown, the invocation fails
    with pytest.raises(ApiOutcomeUnknownError):
        flow.invoke(event)
    assert flow.api.posts == 1

    # And Lambda retries it a minute later, then two minutes after that
    flow.clock.advance(FIRST_ASYNC_RETRY)
    first_retry = flow.invoke(event)

    # Then the retry looked (the slow commit had landed) and did not post: exactly one review
    assert first_retry["disposition"] == "already_reported"
    assert flow.api.posts == 1
    assert len(flow.api.reviews_for(submission_id)) == 1
    record = flow.store.get(rid(submission_id))
    assert record is not None
    assert record.report_status is ReportStatus.REPORTED
    assert record.deadline_at is None  # nothing left for the sweeper
    assert (Metric.REPORT_FAILURES, "outcome_unknown") in flow.metrics.counts


def test_a_retry_inside_the_slow_commit_window_defers_without_looking_or_posting(flow_factory: Any) -> None:
    # Given a POST that timed out and commits 30 s later
    flow = flow_factory(30.0)
    submission_id, arn = new_uuid(), task_arn()
    launch_task(flow.store, submission_id, arn, CLUSTER_ARN)
    event = stopped_event(submission_id, arn, exit_code=1)
    with pytest.raises(ApiOutcomeUnknownError):
        flow.invoke(event)

    # When a redelivery arrives 10 s later (before the commit landed)
    flow.clock.advance(10)
    with pytest.raises(ReportOutcomeUnsettledError):
        flow.invoke(event)

    # Then it neither looked nor posted (a look now would miss the slow commit), and left the report PENDING
    assert (flow.api.posts, flow.api.gets) == (1, 0)
    record = flow.store.get(rid(submission_id))
    assert record is not None
    assert record.report_status is ReportStatus.PENDING

    # And the next retry, past the window, finds the committed review
    flow.clock.advance(FIRST_ASYNC_RETRY)
    assert flow.invoke(event)["disposition"] == "already_reported"
    assert len(flow.api.reviews_for(submission_id)) == 1
    assert flow.api.posts == 1


def test_a_post_that_never_committed_is_posted_once_more_after_the_window(flow_factory: Any) -> None:
    flow = flow_factory(None)  # the timed-out POST was never processed
    submission_id, arn = new_uuid(), task_arn()
    launch_task(flow.store, submission_id, arn, CLUSTER_ARN)
    event = stopped_event(submission_id, arn, exit_code=1)
    with pytest.raises(ApiOutcomeUnknownError):
        flow.invoke(event)

    flow.clock.advance(FIRST_ASYNC_RETRY)
    assert flow.invoke(event)["disposition"] == "reported"

    assert flow.api.posts == 2
    assert len(flow.api.reviews_for(submission_id)) == 1


def test_the_look_reads_every_page_and_matches_the_task_arn(flow_factory: Any) -> None:
    # Given many reviews of the same submission already (another reviewer's, an older task's), on several pages
    flow = flow_factory(5.0, per_page=2)
    submission_id, arn = new_uuid(), task_arn()
    launch_task(flow.store, submission_id, arn, CLUSTER_ARN)
    for n in range(5):
        flow.api.add(
            {"submissionId": submission_id, "typeId": "x", "score": n, "metadata": {"taskArn": f"{arn}-older-{n}"}}
        )
    event = stopped_event(submission_id, arn, exit_code=1)
    with pytest.raises(ApiOutcomeUnknownError):
        flow.invoke(event)

    flow.clock.advance(FIRST_ASYNC_RETRY)
    result = flow.invoke(event)

    # Then ours (committed last, on the last page) was found by its task ARN
    assert result["disposition"] == "already_reported"
    assert flow.api.posts == 1
    assert flow.api.gets == 3  # 6 reviews, 2 per page
    [ours] = [r for r in flow.api.reviews_for(submission_id) if r["metadata"]["taskArn"] == arn]
    assert result["reviewId"] == ours["id"]
