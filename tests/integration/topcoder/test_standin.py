"""The stand-in itself: it rejects what Topcoder would reject, records it as a violation, and only
accepts bearer tokens its own Auth0 proxy issued and that have not expired."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from tests.conftest import Clock
from tests.integration.topcoder.support import (
    CHALLENGE_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    REVIEW_TYPE_ID,
    SUBMISSION_ID,
    failure_review,
)
from topcoder_standin import TopcoderStandIn


def proxy_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
        "audience": "https://m2m.topcoder-dev.com/",
        "fresh_token": False,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def bearer(standin: TopcoderStandIn) -> dict[str, str]:
    answer = requests.post(standin.token_url, json=proxy_body(), timeout=5)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize(
    ("change", "expected_error"),
    [
        ({"status": "done"}, "'done' is not one of ['queued', 'completed']"),
        ({"submissionId": None}, "'submissionId' is a required property"),
        ({"score": "high"}, "'high' is not of type 'number'"),
        ({"id": "c56a4180-65aa-42ec-a945-5fd21dec9999"}, "Tried to write read-only property"),
    ],
)
def test_body_violating_the_spec_is_rejected_with_400_and_recorded(
    standin: TopcoderStandIn, change: dict[str, Any], expected_error: str
) -> None:
    body = {**failure_review().to_wire(), **change}
    body = {k: v for k, v in body.items() if v is not None}

    answer = requests.post(f"{standin.base_url}/reviews", json=body, headers=bearer(standin), timeout=5)

    assert answer.status_code == 400
    assert expected_error in answer.json()["message"]
    [violation] = standin.violations()
    assert (violation.method, violation.path, violation.status) == ("POST", "/v5/reviews", 400)
    assert any(expected_error in error for error in violation.errors)
    assert standin.reviews == []


def test_key_outside_the_api_schema_is_rejected_like_the_api_does(standin: TopcoderStandIn) -> None:
    body = {**failure_review().to_wire(), "scorecardId": 1}
    answer = requests.post(f"{standin.base_url}/reviews", json=body, headers=bearer(standin), timeout=5)
    assert answer.status_code == 400
    assert '"scorecardId" is not allowed' in answer.json()["message"]
    assert len(standin.violations()) == 1


def test_invalid_query_parameter_is_a_violation(standin: TopcoderStandIn) -> None:
    answer = requests.get(f"{standin.base_url}/reviews", params={"perPage": 500}, headers=bearer(standin), timeout=5)
    assert answer.status_code == 400
    assert "500 is greater than the maximum of 100" in standin.violations()[0].errors[0]


def test_endpoint_not_in_the_spec_is_404_and_a_violation(standin: TopcoderStandIn) -> None:
    answer = requests.post(f"{standin.base_url}/submissions/{SUBMISSION_ID}/status", json={}, timeout=5)
    assert answer.status_code == 404
    assert standin.violations()[0].path == f"/v5/submissions/{SUBMISSION_ID}/status"


@pytest.mark.parametrize("authorization", ["Bearer not-a-token-we-issued", "Basic dXNlcjpwYXNz"])
def test_unknown_token_is_401(standin: TopcoderStandIn, authorization: str) -> None:
    answer = requests.get(f"{standin.base_url}/reviewTypes", headers={"Authorization": authorization}, timeout=5)
    assert answer.status_code == 401
    assert standin.requests[-1].authorized is False


def test_missing_authorization_is_401_and_a_spec_violation(standin: TopcoderStandIn) -> None:
    answer = requests.get(f"{standin.base_url}/reviewTypes", timeout=5)
    assert answer.status_code == 401
    assert "Security" in standin.violations()[0].errors[0]


def test_expired_token_is_401() -> None:
    clock = Clock()
    with TopcoderStandIn(clock=clock, token_lifetime_seconds=3600) as standin:
        headers = bearer(standin)
        assert requests.get(f"{standin.base_url}/reviewTypes", headers=headers, timeout=5).status_code == 200

        clock.advance(3600)

        assert requests.get(f"{standin.base_url}/reviewTypes", headers=headers, timeout=5).status_code == 401
        assert standin.violations() == []  # a valid request with a stale token


def test_expire_all_tokens_makes_issued_tokens_401(standin: TopcoderStandIn) -> None:
    headers = bearer(standin)
    standin.expire_all_tokens()
    assert requests.get(f"{standin.base_url}/reviewTypes", headers=headers, timeout=5).status_code == 401


def test_proxy_issues_jwt_shaped_tokens_with_expires_in_per_contract() -> None:
    clock = Clock(1_800_000_000.0)
    with TopcoderStandIn(clock=clock, token_lifetime_seconds=86_400) as standin:
        answer = requests.post(standin.token_url, json=proxy_body(), timeout=5)
        token = answer.json()["access_token"]

        assert answer.status_code == 200
        assert len(token.split(".")) == 3
        assert claims(token)["exp"] == 1_800_000_000 + 86_400
        assert answer.json()["expires_in"] == 86_400 - 60  # exp - 60 s - now


def test_proxy_caches_per_client_unless_fresh_token(standin: TopcoderStandIn) -> None:
    first = requests.post(standin.token_url, json=proxy_body(), timeout=5).json()["access_token"]
    cached = requests.post(standin.token_url, json=proxy_body(), timeout=5).json()["access_token"]
    fresh = requests.post(standin.token_url, json=proxy_body(fresh_token=True), timeout=5).json()["access_token"]
    assert cached == first
    assert fresh != first


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (proxy_body(scope="read:submissions"), 'exactly one of "audience" or "scope"'),
        (proxy_body(audience=None), 'exactly one of "audience" or "scope"'),
        (proxy_body(client_secret=None), '"client_secret" is required'),
        (proxy_body(fresh_token="yes"), '"fresh_token" must be a boolean'),
        (proxy_body(grant_type="password"), '"grant_type" must be "client_credentials"'),
        (proxy_body(expires_in=0), '"expires_in" must be a number >= 1'),
        (proxy_body(unexpected=1), '"unexpected" is not allowed'),
    ],
)
def test_proxy_rejects_bodies_outside_the_contract(standin: TopcoderStandIn, body: dict[str, Any], error: str) -> None:
    answer = requests.post(standin.token_url, json=body, timeout=5)

    assert answer.status_code == 400
    assert answer.text.startswith("Payload validation error:")
    assert error in answer.text
    [violation] = standin.violations()
    assert any(error in e for e in violation.errors)
    assert CLIENT_SECRET not in json.dumps(violation.json)  # recorded with the secret redacted


def test_proxy_empty_body_is_500_and_wrong_secret_is_401(standin: TopcoderStandIn) -> None:
    assert requests.post(standin.token_url, data=b"", timeout=5).status_code == 500
    assert requests.post(standin.token_url, json=proxy_body(client_secret="wrong"), timeout=5).status_code == 401


def test_review_types_are_seeded_and_submissions_registered(standin: TopcoderStandIn) -> None:
    headers = bearer(standin)
    types = requests.get(f"{standin.base_url}/reviewTypes", headers=headers, timeout=5)
    found = requests.get(f"{standin.base_url}/submissions/{SUBMISSION_ID}", headers=headers, timeout=5)
    missing = requests.get(f"{standin.base_url}/submissions/nope", headers=headers, timeout=5)

    assert REVIEW_TYPE_ID in {t["id"] for t in types.json()}
    assert len(types.json()) == 6
    assert found.status_code == 200
    assert found.json()["challengeId"] == CHALLENGE_ID
    assert missing.status_code == 404
    assert standin.violations() == []


def test_unknown_review_type_is_400(standin: TopcoderStandIn) -> None:
    body = failure_review(type_id="0b27a6a7-5f5e-4d4c-8f5e-2a43f5f0b7c1").to_wire()
    answer = requests.post(f"{standin.base_url}/reviews", json=body, headers=bearer(standin), timeout=5)
    assert answer.status_code == 400
    assert "does not exist" in answer.json()["message"]


def test_review_summation_is_accepted(standin: TopcoderStandIn) -> None:
    body = {"submissionId": SUBMISSION_ID, "aggregateScore": 97.8, "scoreCardId": 30001852, "isPassing": True}
    answer = requests.post(f"{standin.base_url}/reviewSummations", json=body, headers=bearer(standin), timeout=5)
    assert answer.status_code == 200
    assert standin.review_summations[0]["aggregateScore"] == 97.8
    assert standin.violations() == []


def test_get_reviews_paginates_with_headers() -> None:
    with TopcoderStandIn(max_per_page=2) as standin:
        standin.add_submission(SUBMISSION_ID, CHALLENGE_ID, 1)
        for score in (1, 2, 3):
            standin.add_review(**failure_review(score=score).to_wire())
        answer = requests.get(
            f"{standin.base_url}/reviews",
            params={"submissionId": SUBMISSION_ID, "perPage": "100"},
            headers=bearer(standin),
            timeout=5,
        )
        assert [r["score"] for r in answer.json()] == [1, 2]
        assert answer.headers["X-Total"] == "3"
        assert answer.headers["X-Total-Pages"] == "2"
        assert answer.headers["X-Next-Page"] == "2"


def test_fault_injection_is_consumed_in_order(standin: TopcoderStandIn) -> None:
    headers = bearer(standin)
    standin.fail_next("GET", "/v5/reviewTypes", status=503, times=2)
    statuses = [
        requests.get(f"{standin.base_url}/reviewTypes", headers=headers, timeout=5).status_code for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
