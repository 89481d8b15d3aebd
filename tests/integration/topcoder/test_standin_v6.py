"""The stand-in's review-api-v6 side: it rejects what the v6 spec and the API reject, checks each route's
M2M scope, hides metadata unless asked, and checks its own answers against the spec."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from fault_injection import FaultKind, FaultPlan, FaultRule
from tests.integration.topcoder.support import CHALLENGE_ID, V6_SUBMISSION_ID, failed_summation
from topcoder_standin import TopcoderStandIn

SUMMATIONS = "/v6/reviewSummations"
UNKNOWN_ID = "5d3b0bfb-5d6e-4b4e-9d0b-1c0f0e1f2a3b"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def post(standin: TopcoderStandIn, body: Any, token: str | None = None) -> requests.Response:
    return requests.post(
        f"{standin.v6_base_url}/reviewSummations",
        json=body,
        headers=bearer(token or standin.issue_token()),
        timeout=5,
    )


def body(**changes: Any) -> dict[str, Any]:
    wire = {**failed_summation().to_wire(), **changes}
    return {k: v for k, v in wire.items() if v is not None}


@pytest.mark.parametrize(
    ("wire", "expected_error"),
    [
        (body(scoreCardId="30001852"), "Additional properties are not allowed ('scoreCardId' was unexpected)"),
        ({k: v for k, v in body().items() if k != "aggregateScore"}, "'aggregateScore' is a required property"),
        (body(isPassing="no"), "'no' is not of type 'boolean'"),
        (body(scorecardId=""), "should be non-empty"),
    ],
)
def test_a_body_violating_the_v6_spec_is_rejected_with_400_and_recorded(
    standin: TopcoderStandIn, wire: dict[str, Any], expected_error: str
) -> None:
    answer = post(standin, wire)

    assert answer.status_code == 400
    [violation] = standin.violations()
    assert violation.path == SUMMATIONS
    assert any(expected_error in error for error in violation.errors), violation.errors
    assert standin.summations == []


def test_a_submission_id_longer_than_a_nanoid_is_the_apis_own_400(standin: TopcoderStandIn) -> None:
    answer = post(standin, body(submissionId="a12a4180-65aa-42ec-a945-5fd21dec0503"))

    assert answer.status_code == 400
    assert "Expected 14 characters" in answer.json()["message"]
    assert len(standin.violations()) == 1


@pytest.mark.parametrize(
    ("method", "suffix", "scope"),
    [
        ("POST", "", "create:review_summation"),
        ("GET", "", "read:review_summation"),
        ("PATCH", "/{id}", "update:review_summation"),
        ("PUT", "/{id}", "update:review_summation"),
    ],
)
def test_each_route_needs_its_scope_else_403(standin: TopcoderStandIn, method: str, suffix: str, scope: str) -> None:
    created = post(standin, body()).json()
    url = f"{standin.v6_base_url}/reviewSummations{suffix.format(id=created['id'])}"
    others = [s for s in ("create:review_summation", "read:review_summation", "update:review_summation") if s != scope]
    without = standin.issue_token(scopes=["read:review", *others])
    payload = None if method == "GET" else body()

    refused = requests.request(method, url, json=payload, headers=bearer(without), timeout=5)
    allowed = requests.request(
        method, url, json=payload, headers=bearer(standin.issue_token(scopes=[scope])), timeout=5
    )
    via_all = requests.request(
        method, url, json=payload, headers=bearer(standin.issue_token(scopes=["all:review_summation"])), timeout=5
    )

    assert refused.status_code == 403
    assert scope in refused.json()["message"]
    assert allowed.status_code in (200, 201)
    assert via_all.status_code in (200, 201)
    assert standin.violations() == []  # a grant too small is configuration, not a contract breach


def test_no_token_or_an_expired_one_is_401(standin: TopcoderStandIn) -> None:
    token = standin.issue_token()
    standin.expire_all_tokens()
    assert post(standin, body(), token).status_code == 401
    assert requests.get(f"{standin.v6_base_url}/reviewSummations", timeout=5).status_code == 401


def test_minted_tokens_carry_the_v5_and_v6_scopes_and_a_client_can_be_granted_less() -> None:
    proxy_body = {
        "grant_type": "client_credentials",
        "client_id": "narrow-client",
        "client_secret": "s",
        "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
        "audience": "https://m2m.topcoder-dev.com/",
    }
    with TopcoderStandIn(client_scopes={"narrow-client": ["read:review"]}) as standin:
        narrow = requests.post(standin.token_url, json=proxy_body, timeout=5).json()["access_token"]
        wide = requests.post(standin.token_url, json={**proxy_body, "client_id": "other"}, timeout=5).json()

        assert claims(narrow)["scope"] == "read:review"
        scopes = claims(wide["access_token"])["scope"].split(" ")
        assert {"create:review", "read:review"} <= set(scopes)
        assert {"create:review_summation", "read:review_summation", "update:review_summation"} <= set(scopes)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_an_unknown_summation_id_is_404_and_not_a_violation(standin: TopcoderStandIn, method: str) -> None:
    answer = requests.request(
        method,
        f"{standin.v6_base_url}/reviewSummations/{UNKNOWN_ID}",
        json=body(),
        headers=bearer(standin.issue_token()),
        timeout=5,
    )

    assert answer.status_code == 404
    assert UNKNOWN_ID in answer.json()["message"]
    assert standin.violations() == []


def test_create_answers_201_with_the_stored_item_and_put_replaces_the_fields_sent(standin: TopcoderStandIn) -> None:
    created = post(standin, body())
    assert created.status_code == 201
    item = created.json()
    assert set(item) >= {"id", "submissionId", "aggregateScore", "isPassing", "createdAt", "createdBy"}
    assert item["createdBy"].endswith("@clients")

    replaced = requests.put(
        f"{standin.v6_base_url}/reviewSummations/{item['id']}",
        json={"submissionId": V6_SUBMISSION_ID, "aggregateScore": 90.5, "isPassing": True},
        headers=bearer(standin.issue_token()),
        timeout=5,
    )

    assert replaced.status_code == 200
    [stored] = standin.summations
    assert (stored["aggregateScore"], stored["isPassing"], stored["isProvisional"]) == (90.5, True, True)
    assert standin.violations() == []


def test_metadata_is_hidden_unless_a_machine_asks_metadata_true(standin: TopcoderStandIn) -> None:
    post(standin, body())
    url = f"{standin.v6_base_url}/reviewSummations"
    headers = bearer(standin.issue_token())

    plain = requests.get(url, params={"submissionId": V6_SUBMISSION_ID}, headers=headers, timeout=5).json()
    false = requests.get(
        url, params={"submissionId": V6_SUBMISSION_ID, "metadata": "false"}, headers=headers, timeout=5
    )
    asked = requests.get(url, params={"submissionId": V6_SUBMISSION_ID, "metadata": "true"}, headers=headers, timeout=5)

    assert "metadata" not in plain["data"][0]
    assert "metadata" not in false.json()["data"][0]
    assert asked.json()["data"][0]["metadata"]["testStatus"] == "FAILED"
    assert standin.violations() == []


def test_the_list_filters_by_phase_and_pages_with_meta() -> None:
    with TopcoderStandIn(max_per_page=2) as standin:
        standin.add_submission(V6_SUBMISSION_ID, CHALLENGE_ID, "1")
        for flag in ("isExample", "isProvisional", "isProvisional", "isProvisional", "isFinal"):
            standin.add_summation(submissionId=V6_SUBMISSION_ID, aggregateScore=1, isPassing=True, **{flag: True})
        headers = bearer(standin.issue_token())
        url = f"{standin.v6_base_url}/reviewSummations"

        def page(**params: Any) -> dict[str, Any]:
            return requests.get(url, params=params, headers=headers, timeout=5).json()

        first = page(provisional="true", perPage=10)
        second = page(provisional="true", perPage=10, page=2)

        assert first["meta"] == {"page": 1, "perPage": 2, "totalCount": 3, "totalPages": 2}
        assert len(first["data"]) == 2
        assert len(second["data"]) == 1
        assert all(item["isProvisional"] for item in first["data"] + second["data"])
        assert page(system="true")["meta"]["totalCount"] == 1
        assert page(example="true", challengeId=CHALLENGE_ID)["meta"]["totalCount"] == 1
        assert page(example="true", challengeId="another")["meta"]["totalCount"] == 0
        assert page(submissionId="OtherSubmissn1")["data"] == []
        assert len(standin.summations_for(V6_SUBMISSION_ID, "PROVISIONAL")) == 3
        assert standin.violations() == []


def test_an_invalid_query_parameter_is_a_violation(standin: TopcoderStandIn) -> None:
    answer = requests.get(
        f"{standin.v6_base_url}/reviewSummations",
        params={"provisional": "yes"},
        headers=bearer(standin.issue_token()),
        timeout=5,
    )
    assert answer.status_code == 400
    assert len(standin.violations()) == 1


def test_a_route_outside_the_v6_spec_is_404_and_a_violation(standin: TopcoderStandIn) -> None:
    answer = requests.delete(
        f"{standin.v6_base_url}/reviewSummations/{UNKNOWN_ID}", headers=bearer(standin.issue_token()), timeout=5
    )
    assert answer.status_code == 404
    assert len(standin.violations()) == 1


def test_an_answer_breaking_the_v6_spec_is_recorded_as_a_violation(standin: TopcoderStandIn) -> None:
    # The stand-in checks its own answers: an injected 201 that is no summation must show up.
    standin.respond_with("POST", SUMMATIONS, status=201, body={"id": 7})

    post(standin, body())

    [violation] = standin.violations()
    assert violation.valid  # the request was fine
    assert any("'submissionId' is a required property" in e for e in violation.response_errors)
    assert any("7 is not of type 'string'" in e for e in violation.response_errors)


def test_the_fault_plan_plays_on_v6_paths(standin: TopcoderStandIn) -> None:
    standin.add_submission(V6_SUBMISSION_ID, CHALLENGE_ID, "1")
    standin.use_fault_plan(
        FaultPlan.of(
            FaultRule(
                kind=FaultKind.TOPCODER_5XX, target=V6_SUBMISSION_ID, first_n=1, params={"path": "/reviewSummations"}
            )
        )
    )

    assert post(standin, body()).status_code == 503
    assert post(standin, body()).status_code == 201
    assert len(standin.summations) == 1
