"""The one forced token refresh after a 401 (decision 031), which both Topcoder clients get from their shared
transport (`mm_adapters.topcoder.http`): proven once per API against the real stand-in, with each API's own
first call (a read), post, path and answer status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mm_adapters.topcoder import ApiAuthError, ReviewSummationsClient, SubmissionApiClient
from mm_contracts.models.phase import ScoringPhase
from tests.integration.topcoder.support import SUBMISSION_ID, V6_SUBMISSION_ID, failed_summation, failure_review
from topcoder_standin import TopcoderStandIn


@dataclass(frozen=True)
class Api:
    """One Topcoder API as this test drives it."""

    path: str  # of the POST
    created_status: int
    read: Callable[[], object]
    post: Callable[[], object]
    stored: Callable[[], int]  # how many reports the stand-in holds for the submission


@pytest.fixture(params=["v5", "v6"])
def api(
    request: pytest.FixtureRequest,
    standin: TopcoderStandIn,
    client: SubmissionApiClient,
    v6_client: ReviewSummationsClient,
) -> Api:
    if request.param == "v5":
        return Api(
            "/v5/reviews",
            200,
            read=lambda: client.find_reviews(submission_id=SUBMISSION_ID),
            post=lambda: client.create_review(failure_review()),
            stored=lambda: len(standin.reviews_for(SUBMISSION_ID)),
        )
    return Api(
        "/v6/reviewSummations",
        201,
        read=lambda: v6_client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL),
        post=lambda: v6_client.create_summation(failed_summation()),
        stored=lambda: len(standin.summations),
    )


def test_expired_token_401_refreshes_the_token_exactly_once_then_succeeds(standin: TopcoderStandIn, api: Api) -> None:
    # Given a token cached by the provider that the API no longer accepts
    api.read()
    standin.expire_all_tokens()

    api.post()

    assert [r.status for r in standin.requests_to("POST", api.path)] == [401, api.created_status]
    assert [r.json["fresh_token"] for r in standin.requests_to("POST", "/token")] == [False, True]
    assert api.stored() == 1
    assert standin.violations() == []


def test_401_twice_is_an_api_auth_error_after_one_refresh(standin: TopcoderStandIn, api: Api) -> None:
    standin.fail_next("POST", api.path, status=401, times=5, body={"message": "Invalid Token."})

    with pytest.raises(ApiAuthError):
        api.post()

    assert len(standin.requests_to("POST", api.path)) == 2
    assert [r.json["fresh_token"] for r in standin.requests_to("POST", "/token")] == [False, True]
