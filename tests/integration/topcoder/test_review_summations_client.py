"""ReviewSummationsClient against the real stand-in on loopback: every request it sends, and every answer the
stand-in gives, is validated against the review-api-v6 summations spec."""

from __future__ import annotations

import logging

import pytest

from fault_injection import FaultKind, FaultPlan, FaultRule, SimulatedCrash, with_http_faults
from mm_adapters.topcoder import (
    ApiOutcomeUnknownError,
    ApiRejectedError,
    ApiTransientError,
    Auth0ProxyTokenProvider,
    ReviewSummationsClient,
    ReviewSummationUpdate,
    review_summations,
)
from mm_adapters.topcoder.transport import HttpRequest, HttpResponse, Urllib3Transport
from mm_contracts.models.phase import ScoringPhase
from tests.integration.topcoder.support import (
    CHALLENGE_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    V6_SUBMISSION_ID,
    SleepRecorder,
    StubSecrets,
    failed_summation,
)
from topcoder_standin import TopcoderStandIn

SUMMATIONS = "/v6/reviewSummations"


def test_a_failed_run_summation_is_created_valid_by_the_v6_spec(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient
) -> None:
    # When the terminal summation of a failed PROVISIONAL run is created
    created = v6_client.create_summation(failed_summation())

    # Then the request and the answer were valid by the spec, and exactly that body was sent
    assert standin.violations() == []
    [posted] = standin.requests_to("POST", SUMMATIONS)
    assert posted.status == 201
    assert posted.json == failed_summation().to_wire()
    assert posted.json["isProvisional"] is True
    assert "isFinal" not in posted.json
    # And it is stored once, with the server's id; the create answer carries no metadata (as the API's)
    [stored] = standin.summations_for(V6_SUBMISSION_ID, ScoringPhase.PROVISIONAL)
    assert created["id"] == stored["id"]
    assert "metadata" not in created
    assert stored["metadata"]["testStatus"] == "FAILED"


def test_list_returns_only_the_phase_asked_for_with_metadata(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient
) -> None:
    v6_client.create_summation(failed_summation(phase=ScoringPhase.EXAMPLE))
    provisional = v6_client.create_summation(failed_summation(phase=ScoringPhase.PROVISIONAL))

    found = v6_client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL)

    assert [item["id"] for item in found] == [provisional["id"]]
    assert found[0]["metadata"]["phase"] == "PROVISIONAL"  # asked with metadata=true, as a machine
    [listed] = standin.requests_to("GET", SUMMATIONS)
    assert listed.query["provisional"] == ["true"]
    assert listed.query["metadata"] == ["true"]
    assert listed.query["submissionId"] == [V6_SUBMISSION_ID]
    assert v6_client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.SYSTEM) == []
    assert standin.violations() == []


def test_patch_updates_the_existing_summation_instead_of_adding_one(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient
) -> None:
    created = v6_client.create_summation(failed_summation())

    patched = v6_client.patch_summation(
        created["id"], ReviewSummationUpdate(metadata={"testStatus": "CANCELLED", "reason": "superseded"})
    )

    assert patched["id"] == created["id"]
    [stored] = standin.summations
    assert stored["metadata"] == {"testStatus": "CANCELLED", "reason": "superseded"}
    assert stored["aggregateScore"] == -1  # fields not sent are kept
    assert standin.requests_to("PATCH", f"{SUMMATIONS}/{created['id']}")[0].json == {
        "metadata": {"testStatus": "CANCELLED", "reason": "superseded"}
    }
    assert standin.violations() == []


def test_list_follows_every_page(tokens: Auth0ProxyTokenProvider) -> None:
    with TopcoderStandIn(max_per_page=2) as standin:
        standin.add_submission(V6_SUBMISSION_ID, CHALLENGE_ID, "1")
        standin.add_submission("OtherSubmissn1", CHALLENGE_ID, "2")
        for score in (10, 20, 30, 40, 50):
            standin.add_summation(
                submissionId=V6_SUBMISSION_ID, aggregateScore=score, isPassing=True, isProvisional=True
            )
        standin.add_summation(submissionId=V6_SUBMISSION_ID, aggregateScore=60, isPassing=True, isExample=True)
        standin.add_summation(submissionId="OtherSubmissn1", aggregateScore=70, isPassing=True, isProvisional=True)
        provider = Auth0ProxyTokenProvider(standin.token_url, "arn", secrets_client=tokens._secrets)
        client = ReviewSummationsClient(standin.v6_base_url, provider, sleep=lambda _: None)

        found = client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL)

        assert sorted(item["aggregateScore"] for item in found) == [10, 20, 30, 40, 50]
        assert [r.query["page"] for r in standin.requests_to("GET", SUMMATIONS)] == [["1"], ["2"], ["3"]]
        assert standin.violations() == []


def test_more_pages_than_the_bound_is_transient_not_a_partial_list(
    standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A partial list would make the upsert create a second summation: it must fail instead.
    monkeypatch.setattr(review_summations, "MAX_PAGES", 1)
    monkeypatch.setattr(review_summations, "PER_PAGE", 1)
    for _ in range(2):
        standin.add_summation(submissionId=V6_SUBMISSION_ID, aggregateScore=1, isPassing=True, isProvisional=True)
    client = ReviewSummationsClient(standin.v6_base_url, tokens, sleep=lambda _: None)

    with pytest.raises(ApiTransientError, match="more than 1 pages"):
        client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL)


def test_an_ambiguous_post_is_outcome_unknown_and_never_repeated(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient, sleeps: SleepRecorder
) -> None:
    # Given a server that stores the summation and then fails
    standin.fail_next("POST", SUMMATIONS, status=500, after_store=True, times=3)

    with pytest.raises(ApiOutcomeUnknownError) as caught:
        v6_client.create_summation(failed_summation())

    assert caught.value.status_code == 500
    assert len(standin.requests_to("POST", SUMMATIONS)) == 1  # not repeated: that would make a second one
    assert standin.requests_to("GET", SUMMATIONS) == []
    assert len(standin.summations) == 1
    assert sleeps.delays == []


def test_a_read_timeout_on_post_is_outcome_unknown(standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider) -> None:
    standin.respond_with("POST", SUMMATIONS, status=504, delay=3.0, times=5)
    client = ReviewSummationsClient(standin.v6_base_url, tokens, timeout_seconds=0.5, sleep=lambda _: None)

    with pytest.raises(ApiOutcomeUnknownError, match="timed out"):
        client.create_summation(failed_summation())

    assert len(standin.requests_to("POST", SUMMATIONS)) == 1


def test_a_patch_is_idempotent_so_a_5xx_is_retried(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient, sleeps: SleepRecorder
) -> None:
    created = v6_client.create_summation(failed_summation())
    path = f"{SUMMATIONS}/{created['id']}"
    standin.fail_next("PATCH", path, status=503, after_store=True)

    v6_client.patch_summation(created["id"], ReviewSummationUpdate(aggregate_score=-1, is_passing=False))

    assert [r.status for r in standin.requests_to("PATCH", path)] == [503, 200]
    assert len(sleeps.delays) == 1
    assert len(standin.summations) == 1


def test_persistent_5xx_on_list_ends_in_a_transient_error_after_bounded_retries(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient
) -> None:
    standin.fail_next("GET", SUMMATIONS, status=503, times=10)

    with pytest.raises(ApiTransientError) as caught:
        v6_client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL)

    assert not isinstance(caught.value, ApiOutcomeUnknownError)
    assert len(standin.requests_to("GET", SUMMATIONS)) == 3  # 1 + max_retries


def test_a_token_without_the_summation_scopes_is_rejected_403_not_retried(sleeps: SleepRecorder) -> None:
    credentials = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
        "audience": "https://m2m.topcoder-dev.com/",
    }
    with TopcoderStandIn(client_scopes={CLIENT_ID: ["read:review_summation"]}) as standin:
        standin.add_submission(V6_SUBMISSION_ID, CHALLENGE_ID, "1")
        provider = Auth0ProxyTokenProvider(standin.token_url, "arn", secrets_client=StubSecrets(credentials))
        client = ReviewSummationsClient(standin.v6_base_url, provider, sleep=sleeps)

        assert client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.EXAMPLE) == []
        with pytest.raises(ApiRejectedError) as caught:
            client.create_summation(failed_summation())

        assert caught.value.status_code == 403
        assert "create:review_summation" in caught.value.body
        assert len(standin.requests_to("POST", SUMMATIONS)) == 1
        assert sleeps.delays == []
        assert standin.summations == []


def test_patching_an_unknown_summation_is_a_404_rejection(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient
) -> None:
    with pytest.raises(ApiRejectedError) as caught:
        v6_client.patch_summation("5d3b0bfb-5d6e-4b4e-9d0b-1c0f0e1f2a3b", ReviewSummationUpdate(is_passing=False))

    assert caught.value.status_code == 404
    assert standin.violations() == []  # a valid request for a missing resource


def test_an_unknown_submission_is_a_404_rejection(standin: TopcoderStandIn, v6_client: ReviewSummationsClient) -> None:
    with pytest.raises(ApiRejectedError) as caught:
        v6_client.create_summation(failed_summation(submission_id="NotRegistered1"))
    assert caught.value.status_code == 404
    assert "NotRegistered1" in caught.value.body


def test_a_2xx_that_is_not_a_summation_is_transient(
    standin: TopcoderStandIn, v6_client: ReviewSummationsClient
) -> None:
    standin.respond_with("GET", SUMMATIONS, status=200, body=[{"id": "x"}])
    with pytest.raises(ApiTransientError, match="without a data list"):
        v6_client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL)


def test_token_and_bodies_are_never_logged(
    standin: TopcoderStandIn,
    v6_client: ReviewSummationsClient,
    tokens: Auth0ProxyTokenProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mm_adapters")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    standin.fail_next("POST", SUMMATIONS, status=500)
    with pytest.raises(ApiOutcomeUnknownError):
        v6_client.create_summation(failed_summation())
    created = v6_client.create_summation(failed_summation())
    v6_client.patch_summation(created["id"], ReviewSummationUpdate(is_passing=False))
    token = tokens.get_token()

    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert token not in logged
    assert "Bearer" not in logged
    assert CLIENT_SECRET not in logged
    assert "OutOfMemory" not in logged  # the body's reason
    api_records = [r for r in caplog.records if r.name == "mm_adapters.topcoder.review_summations"]
    logged_calls = {(r.__dict__["method"], r.__dict__["path"], r.__dict__["status"]) for r in api_records}
    assert logged_calls >= {
        ("POST", "/reviewSummations", 500),
        ("POST", "/reviewSummations", 201),
    }


def test_the_client_sends_through_the_transport_it_is_given(
    standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider, sleeps: SleepRecorder
) -> None:
    # Given the real transport behind one that answers the first call 503 itself (the fault layer, decision 077)
    plan = FaultPlan.of(FaultRule(kind=FaultKind.TOPCODER_5XX, first_n=1))
    transport = with_http_faults(Urllib3Transport(), plan)
    client = ReviewSummationsClient(standin.v6_base_url, tokens, max_retries=2, sleep=sleeps, transport=transport)

    # When the client lists, it goes through that transport: the injected 503 is retried once
    assert client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL) == []
    assert len(sleeps.delays) == 1
    assert len(standin.requests_to("GET", SUMMATIONS)) == 1  # the 503 never reached the server


class _CrashAfterPost(Urllib3Transport):
    """The function dies right after the server committed a summation POST (what `crash-after-review-post`
    plays in the local pipeline, local_pipeline/hooks.py)."""

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        response = super().send(request, timeout=timeout)
        if request.method == "POST" and response.status_code == 201:
            raise SimulatedCrash("injected: died after the summation POST returned")
        return response


def test_a_crash_after_a_committed_post_leaves_one_summation_that_the_next_look_finds(
    standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider, v6_client: ReviewSummationsClient
) -> None:
    dying = ReviewSummationsClient(standin.v6_base_url, tokens, transport=_CrashAfterPost())

    with pytest.raises(SimulatedCrash):
        dying.create_summation(failed_summation())

    # The retried report looks before it posts (the upsert), and finds the one the dead attempt committed
    [found] = v6_client.list_summations(submission_id=V6_SUBMISSION_ID, phase=ScoringPhase.PROVISIONAL)
    assert found["metadata"]["runId"] == f"{V6_SUBMISSION_ID}#PROVISIONAL"
    assert len(standin.requests_to("POST", SUMMATIONS)) == 1
    assert len(standin.summations) == 1
