"""SubmissionApiClient against the real stand-in on loopback: every request it sends is validated against
Topcoder's v5 OpenAPI spec (and the token request against the Auth0 proxy contract)."""

from __future__ import annotations

import logging
import socket

import pytest

from mm_adapters.topcoder import (
    ApiRejectedError,
    ApiTransientError,
    Auth0ProxyTokenProvider,
    SubmissionApiClient,
)
from mm_adapters.topcoder.submission_api import ApiOutcomeUnknownError
from tests.integration.topcoder.support import (
    CLIENT_SECRET,
    OTHER_REVIEW_TYPE_ID,
    REVIEW_TYPE_ID,
    SUBMISSION_ID,
    SleepRecorder,
    failure_review,
)
from topcoder_standin import TopcoderStandIn

REVIEWS = "/v5/reviews"


def test_review_body_is_accepted_by_the_v5_spec_validator(
    standin: TopcoderStandIn, client: SubmissionApiClient
) -> None:
    # Given a failure review as the completion Lambda builds it
    review = failure_review()

    # When it is posted
    created = client.create_review(review)

    # Then the stand-in validated the body against the spec and found nothing wrong
    assert standin.violations() == []
    posted = standin.requests_to("POST", REVIEWS)
    assert len(posted) == 1
    assert posted[0].valid
    assert posted[0].errors == []
    assert posted[0].json == {
        "score": 0.0,
        "typeId": REVIEW_TYPE_ID,
        "reviewerId": "0b27a6a7-5f5e-4d4c-8f5e-2a43f5f0b7c1",
        "scoreCardId": 30001852,
        "submissionId": SUBMISSION_ID,
        "status": "completed",
        "metadata": {
            "testType": "provisional",
            "testStatus": "FAILED",
            "reason": "scorer exited with code 137 (OutOfMemory)",
        },
    }
    # And the review is stored and returned with its server-assigned id
    assert standin.reviews_for(SUBMISSION_ID) == [created]
    assert created["id"]
    # And the token request was valid under the proxy contract
    assert [r.valid for r in standin.requests_to("POST", "/token")] == [True]


def test_a_500_on_post_is_never_repeated_in_the_call_the_outcome_is_unknown(
    standin: TopcoderStandIn, client: SubmissionApiClient, sleeps: SleepRecorder
) -> None:
    # (Changed by decision 074: a 5xx used to be looked up and re-posted within the call.)
    standin.fail_next("POST", REVIEWS, status=500, times=2)

    with pytest.raises(ApiOutcomeUnknownError) as caught:
        client.create_review(failure_review())

    assert caught.value.status_code == 500
    assert isinstance(caught.value, ApiTransientError)  # callers that retry later keep working
    assert [r.status for r in standin.requests_to("POST", REVIEWS)] == [500]
    assert standin.requests_to("GET", REVIEWS) == []  # no look right away either: a slow commit may still land
    assert sleeps.delays == []
    assert standin.violations() == []


def test_persistent_500_on_get_ends_in_api_transient_error_after_bounded_retries(
    standin: TopcoderStandIn, client: SubmissionApiClient
) -> None:
    standin.fail_next("GET", REVIEWS, status=503, times=10)

    with pytest.raises(ApiTransientError) as caught:
        client.find_reviews(submission_id=SUBMISSION_ID)

    assert caught.value.status_code == 503
    assert not isinstance(caught.value, ApiOutcomeUnknownError)
    assert len(standin.requests_to("GET", REVIEWS)) == 3  # 1 + max_retries: a GET is safe to repeat


def test_500_after_the_server_stored_the_review_does_not_create_a_duplicate(
    standin: TopcoderStandIn, client: SubmissionApiClient
) -> None:
    # Given a server that commits the review and then fails (e.g. its bus publish fails)
    standin.fail_next("POST", REVIEWS, status=500, after_store=True)

    with pytest.raises(ApiOutcomeUnknownError):
        client.create_review(failure_review())

    # Then the client did not post again: the one stored review is the only one
    assert len(standin.requests_to("POST", REVIEWS)) == 1
    assert len(standin.reviews_for(SUBMISSION_ID)) == 1


def test_429_is_retried_honouring_retry_after(
    standin: TopcoderStandIn, client: SubmissionApiClient, sleeps: SleepRecorder
) -> None:
    standin.respond_with("POST", REVIEWS, status=429, body={"message": "slow down"}, headers={"Retry-After": "1"})

    client.create_review(failure_review())

    assert sleeps.delays == [1.0]
    assert len(standin.reviews_for(SUBMISSION_ID)) == 1
    assert standin.requests_to("GET", REVIEWS) == []  # a 429 was not processed: no lookup needed


@pytest.mark.parametrize("status", [400, 403, 409])
def test_4xx_is_rejected_with_status_and_body_and_not_retried(
    standin: TopcoderStandIn, client: SubmissionApiClient, sleeps: SleepRecorder, status: int
) -> None:
    standin.fail_next("POST", REVIEWS, status=status, body={"message": "Invalid input: scoreCardId"})

    with pytest.raises(ApiRejectedError) as caught:
        client.create_review(failure_review())

    assert caught.value.status_code == status
    assert "Invalid input: scoreCardId" in caught.value.body
    assert len(standin.requests_to("POST", REVIEWS)) == 1
    assert sleeps.delays == []


def test_unknown_submission_is_a_404_rejection(standin: TopcoderStandIn, client: SubmissionApiClient) -> None:
    with pytest.raises(ApiRejectedError) as caught:
        client.create_review(failure_review(submission_id="unknown-submission"))

    assert caught.value.status_code == 404
    assert "unknown-submission" in caught.value.body
    assert len(standin.requests_to("POST", REVIEWS)) == 1
    assert standin.violations() == []  # a valid request for a missing resource


def test_rejected_body_is_truncated(standin: TopcoderStandIn, client: SubmissionApiClient) -> None:
    standin.fail_next("POST", REVIEWS, status=400, body={"message": "x" * 5000})
    with pytest.raises(ApiRejectedError) as caught:
        client.create_review(failure_review())
    assert len(caught.value.body) < 1100
    assert caught.value.body.endswith("(truncated)")


def test_read_timeout_on_post_is_a_transient_error(standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider) -> None:
    # Given a server slower than the client's read timeout (it never stores anything)
    # (the read timeout also bounds the lookup GET, so it must leave a loaded CI machine enough time for that)
    standin.respond_with("POST", REVIEWS, status=504, delay=5.0, times=10)
    client = SubmissionApiClient(standin.base_url, tokens, timeout_seconds=1.0, max_retries=1, sleep=lambda _: None)

    with pytest.raises(ApiOutcomeUnknownError, match="timed out"):
        client.create_review(failure_review())

    # The timed-out POST may have been processed (or may still be): never repeated, no look right away
    assert len(standin.requests_to("POST", REVIEWS)) == 1
    assert standin.requests_to("GET", REVIEWS) == []
    assert standin.reviews_for(SUBMISSION_ID) == []


def test_read_timeout_on_get_is_retried_then_transient(
    standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider
) -> None:
    standin.delay_next("GET", REVIEWS, 2.0, times=10)
    client = SubmissionApiClient(standin.base_url, tokens, timeout_seconds=0.05, max_retries=2, sleep=lambda _: None)

    with pytest.raises(ApiTransientError, match="timed out"):
        client.find_reviews(submission_id=SUBMISSION_ID)


def test_connection_refused_is_retried_then_transient(tokens: Auth0ProxyTokenProvider, sleeps: SleepRecorder) -> None:
    # A loopback port nobody listens on: the request provably never reached a server.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tokens.get_token()  # token first, while the stand-in is up
    client = SubmissionApiClient(f"http://127.0.0.1:{port}/v5", tokens, max_retries=2, sleep=sleeps)

    with pytest.raises(ApiTransientError, match="connection failed"):
        client.create_review(failure_review())
    assert len(sleeps.delays) == 2  # POST repeated without a lookup: it never reached a server


def test_find_reviews_filters_by_submission_and_type_and_follows_pages(tokens: Auth0ProxyTokenProvider) -> None:
    with TopcoderStandIn(clients=None, max_per_page=2) as standin:
        standin.add_submission(SUBMISSION_ID, "c", 1)
        standin.add_submission("other-submission", "c", 2)
        for score in (10, 20, 30):
            standin.add_review(**failure_review(score=score).to_wire())
        for score in (40, 50):
            standin.add_review(**failure_review(score=score, type_id=OTHER_REVIEW_TYPE_ID).to_wire())
        standin.add_review(**failure_review(submission_id="other-submission").to_wire())
        provider = Auth0ProxyTokenProvider(standin.token_url, "arn", secrets_client=tokens._secrets)
        client = SubmissionApiClient(standin.base_url, provider, sleep=lambda _: None)

        everything = client.find_reviews(submission_id=SUBMISSION_ID)
        pages = [r.query["page"] for r in standin.requests_to("GET", REVIEWS)]
        only_type = client.find_reviews(submission_id=SUBMISSION_ID, type_id=REVIEW_TYPE_ID)

        assert sorted(r["score"] for r in everything) == [10, 20, 30, 40, 50]
        assert pages == [["1"], ["2"], ["3"]]
        assert sorted(r["score"] for r in only_type) == [10, 20, 30]
        assert all(r["submissionId"] == SUBMISSION_ID for r in everything)
        assert standin.violations() == []


def test_token_and_authorization_header_are_never_logged(
    standin: TopcoderStandIn,
    client: SubmissionApiClient,
    tokens: Auth0ProxyTokenProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mm_adapters")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    standin.fail_next("POST", REVIEWS, status=500)
    with pytest.raises(ApiOutcomeUnknownError):
        client.create_review(failure_review())
    client.create_review(failure_review())
    standin.fail_next("POST", REVIEWS, status=400)
    with pytest.raises(ApiRejectedError) as caught:
        client.create_review(failure_review())
    token = tokens.get_token()

    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert token not in logged
    assert "Bearer" not in logged
    assert CLIENT_SECRET not in logged
    assert token not in str(caught.value)
    # What is logged: method, path, status and latency
    api_records = [r for r in caplog.records if r.name == "mm_adapters.topcoder.submission_api"]
    fields = [vars(r) for r in api_records]  # the `extra` of each log call
    assert {(f["method"], f["path"], f["status"]) for f in fields} >= {
        ("POST", "/reviews", 500),
        ("POST", "/reviews", 200),
    }
    assert all(isinstance(f["latency_ms"], float) for f in fields)
