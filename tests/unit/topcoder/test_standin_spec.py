"""The stand-in's reading of Topcoder's spec (socket-free): the readOnly normalisation is needed, and
does not loosen anything a client may send."""

from __future__ import annotations

import json

import yaml
from openapi_core import OpenAPI

from tests.integration.topcoder.support import failure_review
from topcoder_standin.spec import default_spec_path, load_openapi, normalise_read_only, validate_api_request

HEADERS = {"Authorization": "Bearer t", "Content-Type": "application/json"}


def raw_spec() -> dict:
    with open(default_spec_path(), encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    spec["servers"] = [{"url": "/v5"}]
    return spec


def test_the_literal_spec_rejects_every_correct_review_body_which_is_why_we_normalise() -> None:
    literal = OpenAPI.from_dict(raw_spec())
    body = json.dumps(failure_review().to_wire()).encode()

    result = validate_api_request(literal, "POST", "/v5/reviews", "", HEADERS, body)

    assert not result.valid
    assert any("'id' is a required property" in e for e in result.errors)


def test_normalised_spec_accepts_a_correct_body_and_still_requires_the_writable_fields() -> None:
    api = load_openapi(str(default_spec_path()))
    body = failure_review().to_wire()

    assert validate_api_request(api, "POST", "/v5/reviews", "", HEADERS, json.dumps(body).encode()).valid
    for field in ("score", "typeId", "reviewerId", "scoreCardId", "submissionId", "status"):
        without = {k: v for k, v in body.items() if k != field}
        result = validate_api_request(api, "POST", "/v5/reviews", "", HEADERS, json.dumps(without).encode())
        assert any(f"'{field}' is a required property" in e for e in result.errors), field


def test_normalisation_only_removes_read_only_names_from_required() -> None:
    spec = normalise_read_only(raw_spec())
    schemas = spec["components"]["schemas"]
    assert schemas["Review"]["required"] == ["score", "typeId", "reviewerId", "scoreCardId", "submissionId", "status"]
    assert "readOnly" not in schemas["Auditable"]
    assert schemas["Auditable"]["properties"]["created"]["readOnly"] is True
    assert schemas["UpdatableReview"]["required"] == raw_spec()["components"]["schemas"]["UpdatableReview"]["required"]


def test_review_create_model_serialises_every_status_the_spec_allows() -> None:
    api = load_openapi(str(default_spec_path()))
    for status in ("queued", "completed"):
        body = failure_review(status=status, score_card_id="scorecard-7").to_wire()
        assert validate_api_request(api, "POST", "/v5/reviews", "", HEADERS, json.dumps(body).encode()).valid


def test_review_create_refuses_what_the_api_would_refuse() -> None:
    import pytest
    from pydantic import ValidationError

    from mm_adapters.topcoder import ReviewCreate

    with pytest.raises(ValidationError):
        failure_review(type_id="not-a-uuid")  # the API checks typeId as a GUID
    with pytest.raises(ValidationError):
        failure_review(status="done")
    with pytest.raises(ValidationError):
        failure_review(score=float("nan"))
    with pytest.raises(ValidationError):
        ReviewCreate.model_validate({**failure_review().to_wire(), "scorecardId": 1})  # typo: extra field
    assert ReviewCreate.model_validate(failure_review().to_wire()) == failure_review()  # camelCase round trip
