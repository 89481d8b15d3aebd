"""The v6 summation bodies (socket-free): what the models build is what review-api-v6's spec accepts, and
what the spec refuses the models refuse too."""

from __future__ import annotations

import json

import pytest
import yaml
from openapi_core import OpenAPI
from pydantic import ValidationError

from mm_adapters.topcoder import ReviewSummationRequest, ReviewSummationUpdate
from mm_contracts.models.phase import ScoringPhase
from tests.integration.topcoder.support import failed_summation
from topcoder_standin.spec import V6_API_PREFIX, default_v6_spec_path, load_openapi, validate_api_request

HEADERS = {"Authorization": "Bearer t", "Content-Type": "application/json"}
PATCH_PATH = "/v6/reviewSummations/5d3b0bfb-5d6e-4b4e-9d0b-1c0f0e1f2a3b"


def v6_api() -> OpenAPI:
    return load_openapi(str(default_v6_spec_path()), V6_API_PREFIX)


def errors(method: str, path: str, body: dict) -> list[str]:
    return validate_api_request(v6_api(), method, path, "", HEADERS, json.dumps(body).encode()).errors


@pytest.mark.parametrize("phase", list(ScoringPhase))
def test_the_terminal_summation_of_every_phase_is_valid_by_the_spec(phase: ScoringPhase) -> None:
    wire = failed_summation(phase=phase).to_wire()

    assert errors("POST", "/v6/reviewSummations", wire) == []
    assert errors("PUT", PATCH_PATH, wire) == []
    assert wire[phase.summation_flag] is True
    assert wire["aggregateScore"] == -1
    assert wire["isPassing"] is False
    assert wire["reviewedDate"] == "2026-07-03T10:00:00Z"


def test_an_update_sends_only_what_it_sets_and_is_valid_by_the_spec() -> None:
    update = ReviewSummationUpdate(is_passing=False, metadata={"testStatus": "CANCELLED"})

    assert update.to_wire() == {"isPassing": False, "metadata": {"testStatus": "CANCELLED"}}
    assert errors("PATCH", PATCH_PATH, update.to_wire()) == []
    assert errors("PATCH", PATCH_PATH, ReviewSummationUpdate().to_wire()) == []


def test_the_models_refuse_what_the_spec_refuses() -> None:
    wire = failed_summation().to_wire()
    for broken in (
        {**wire, "scoreCardId": "x"},  # the v5 spelling: an extra key
        {k: v for k, v in wire.items() if k != "aggregateScore"},
        {k: v for k, v in wire.items() if k != "isPassing"},
        {**wire, "scorecardId": ""},
    ):
        assert errors("POST", "/v6/reviewSummations", broken) != []
        with pytest.raises(ValidationError):
            ReviewSummationRequest.model_validate(broken)
    with pytest.raises(ValidationError):
        ReviewSummationRequest.model_validate({**wire, "aggregateScore": float("nan")})
    with pytest.raises(ValidationError):
        ReviewSummationUpdate.model_validate({"scoreCardId": "x"})
    assert ReviewSummationRequest.model_validate(wire) == failed_summation()  # camelCase round trip


def test_the_v6_spec_is_used_as_written() -> None:
    # The v5 readOnly normalisation must not change the v6 spec: the literal spec gives the same verdicts.
    with open(default_v6_spec_path(), encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    raw["servers"] = [{"url": V6_API_PREFIX}]
    literal = OpenAPI.from_dict(raw)
    good = json.dumps(failed_summation().to_wire()).encode()
    bad = json.dumps({**failed_summation().to_wire(), "extra": 1}).encode()

    assert validate_api_request(literal, "POST", "/v6/reviewSummations", "", HEADERS, good).valid
    assert not validate_api_request(literal, "POST", "/v6/reviewSummations", "", HEADERS, bad).valid
    assert validate_api_request(v6_api(), "POST", "/v6/reviewSummations", "", HEADERS, good).valid
    assert not validate_api_request(v6_api(), "POST", "/v6/reviewSummations", "", HEADERS, bad).valid
