"""Defect 4 at the client: a POST that times out and commits later is never posted again in the same call."""

from __future__ import annotations

import pytest

from mm_adapters.topcoder.submission_api import (
    ApiOutcomeUnknownError,
    ApiTransientError,
    SubmissionApiClient,
)
from tests.fakes.clock import VirtualClock
from tests.integration.topcoder.slow_commit import SlowCommitApi, StaticTokens
from tests.integration.topcoder.support import REVIEW_TYPE_ID, SUBMISSION_ID, failure_review

BASE = "https://api.topcoder-dev.com/v5"


def client_for(api: SlowCommitApi, clock: VirtualClock, max_retries: int = 2) -> SubmissionApiClient:
    return SubmissionApiClient(BASE, StaticTokens(), max_retries=max_retries, transport=api, sleep=clock.sleep)


@pytest.mark.parametrize("commit_delay", [0.5, 30.0, None], ids=["commits-0.5s-later", "commits-30s-later", "never"])
def test_a_timed_out_post_is_not_repeated_within_the_call(commit_delay: float | None) -> None:
    # Given an API whose POST times out and commits the review `commit_delay` seconds later
    clock = VirtualClock()
    api = SlowCommitApi(clock, commit_delay=commit_delay)

    # When the client posts the review
    with pytest.raises(ApiOutcomeUnknownError, match="outcome unknown"):
        client_for(api, clock).create_review(failure_review())

    # Then it posted exactly once and did not even look (a look now proves nothing)
    clock.advance(120)
    assert api.posts == 1
    assert api.gets == 0
    assert len(api.reviews_for(SUBMISSION_ID)) == (0 if commit_delay is None else 1)


def test_outcome_unknown_is_a_transient_error_for_callers_that_only_know_that() -> None:
    clock = VirtualClock()
    with pytest.raises(ApiTransientError):
        client_for(SlowCommitApi(clock), clock).create_review(failure_review())


def test_find_reviews_reads_every_page() -> None:
    clock = VirtualClock()
    api = SlowCommitApi(clock, per_page=2)
    for score in range(5):
        api.add(failure_review(score=score).to_wire())

    found = client_for(api, clock).find_reviews(submission_id=SUBMISSION_ID, type_id=REVIEW_TYPE_ID)

    assert sorted(r["score"] for r in found) == [0, 1, 2, 3, 4]
    assert api.gets == 3


def test_find_reviews_past_the_page_cap_is_an_error_not_a_partial_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # A look that decides whether to post must never miss the page holding our review
    from mm_adapters.topcoder import submission_api

    monkeypatch.setattr(submission_api, "MAX_PAGES", 2)
    clock = VirtualClock()
    api = SlowCommitApi(clock, per_page=1)
    for score in range(3):
        api.add(failure_review(score=score).to_wire())

    with pytest.raises(ApiTransientError, match="more than 2 pages"):
        client_for(api, clock).find_reviews(submission_id=SUBMISSION_ID)
