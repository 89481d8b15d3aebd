"""v6 records (`marathonmatch.submission.received`, decision 088): the platform from the topic, then the fields."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm_contracts.models.audit import AuditDisposition
from mm_contracts.models.bus import SubmissionFields, V6SubmissionPayload
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.models.routed import MAX_MEMBER_ID
from router_lambda.reasons import Reason
from router_lambda.records import MskRecord, Verdict, classify_record
from tests.builders import bus_envelope, flat_submission, new_uuid, submission_payload
from tests.unit.router.support import ALLOWED_HOST, new_nanoid, router_settings, v6_envelope, v6_payload

V5_TOPIC = "submission.notification.create"
BOTH = router_settings(platforms="v5,v6")
V6_ONLY = router_settings(platforms="v6")
V5_ONLY = router_settings()  # the default profile


def record(value: Any, *, topic: str = V6_SUBMISSION_TOPIC) -> MskRecord:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return MskRecord(topic=topic, partition=0, offset=7, timestamp=1, value=base64.b64encode(raw).decode())


def classify(value: Any, *, topic: str = V6_SUBMISSION_TOPIC, settings: Any = BOTH) -> Any:
    return classify_record(record(value, topic=topic), settings)


def verdict_of(value: Any, **kwargs: Any) -> Verdict:
    outcome = classify(value, **kwargs)
    assert isinstance(outcome, Verdict), outcome
    return outcome


# ---------------------------------------------------------------- accepted
def test_a_v6_envelope_is_read_as_v6_with_every_field() -> None:
    # Given the envelope review-api-v6 publishes (ids in the case and spacing a producer might use)
    sid, cid = new_nanoid(), new_uuid()
    payload = v6_payload(submission_id=f" {sid} ", challenge_id=cid.upper(), submittedDate="2026-07-03T10:00:00.000Z")
    # When it is classified in an environment that reads v6
    result = classify(v6_envelope(payload))
    # Then it is a v6 submission with the platform's id untouched and the challenge UUID canonical
    assert isinstance(result, V6SubmissionPayload)
    assert result.platform is Platform.V6
    assert (result.id, result.challenge_uuid, result.member_id, result.member_handle) == (
        sid,
        cid,
        88_770_025,
        "tourist",
    )
    assert result.url == f"https://{ALLOWED_HOST}/mm/solution.zip"
    assert result.submitted_date is not None
    assert result.submitted_date.isoformat() == "2026-07-03T10:00:00+00:00"


def test_a_bare_v6_payload_is_read_as_v6() -> None:
    result = classify(v6_payload())
    assert isinstance(result, V6SubmissionPayload)


def test_unknown_fields_are_ignored_and_handle_and_date_are_optional() -> None:
    payload = v6_payload(legacySubmissionId="123", reviewTypeId=new_uuid())
    del payload["memberHandle"], payload["submittedDate"]
    result = classify(payload)
    assert isinstance(result, V6SubmissionPayload)
    assert (result.member_handle, result.submitted_date) == (None, None)


def test_the_platform_examples_of_submission_ids_are_accepted() -> None:
    # Real ids (marathon-match-api-v6 scripts/fixtures): upper, lower, digits, `-` and `_`.
    for sid in ("3G9RNcDiRX4ioW", "B-7z0m074qy7du", "J_I8ujYTQaMBV1", "12345678901234"):
        result = classify(v6_payload(submission_id=sid))
        assert isinstance(result, V6SubmissionPayload)
        assert result.id == sid


def test_an_envelope_topic_decides_the_platform_on_either_kafka_topic() -> None:
    # A v6 envelope on the v5 Kafka topic is still a v6 message (the bus keys on the envelope's topic) ...
    assert isinstance(classify(v6_envelope(v6_payload()), topic=V5_TOPIC), V6SubmissionPayload)
    # ... and a v5 envelope is v5 wherever it arrives.
    v5 = classify(bus_envelope(submission_payload()), topic=V6_SUBMISSION_TOPIC)
    assert isinstance(v5, SubmissionFields)


# ---------------------------------------------------------------- the platform profile
def test_the_v6_topic_is_skipped_when_the_profile_has_no_v6() -> None:
    verdict = verdict_of(v6_envelope(v6_payload()), settings=V5_ONLY)
    assert verdict.reason is Reason.KAFKA_TOPIC_NOT_ACCEPTED
    assert verdict.reason.disposition is AuditDisposition.SKIPPED
    assert "PLATFORMS does not include v6" in verdict.detail


def test_a_v6_envelope_on_the_v5_topic_is_skipped_when_the_profile_has_no_v6() -> None:
    verdict = verdict_of(v6_envelope(v6_payload()), topic=V5_TOPIC, settings=V5_ONLY)
    assert verdict.reason is Reason.TOPIC_NOT_ACCEPTED
    assert "PLATFORMS does not include v6" in verdict.detail


def test_the_v5_topic_is_skipped_in_a_v6_only_environment() -> None:
    verdict = verdict_of(bus_envelope(submission_payload()), topic=V5_TOPIC, settings=V6_ONLY)
    assert verdict.reason is Reason.KAFKA_TOPIC_NOT_ACCEPTED
    assert "PLATFORMS does not include v5" in verdict.detail


def test_v5_reading_is_unchanged_when_v6_is_enabled() -> None:
    # The seed's shapes: the envelope, the flat message (000) and a v6 id on a v5 record (still rejected).
    assert isinstance(classify(bus_envelope(submission_payload()), topic=V5_TOPIC), SubmissionFields)
    assert isinstance(classify(flat_submission(), topic=V5_TOPIC), SubmissionFields)
    verdict = verdict_of(bus_envelope(submission_payload(submission_id=new_nanoid())), topic=V5_TOPIC)
    assert verdict.reason is Reason.SUBMISSION_ID_V6
    assert verdict.platform is Platform.V5


# ---------------------------------------------------------------- rejected
REJECTIONS: list[tuple[str, dict[str, Any], Reason, str]] = [
    # (case, payload overrides, reason, text the detail must contain)
    ("id is a v5 uuid", {"submissionId": new_uuid()}, Reason.SUBMISSION_ID_V5, "v5 UUID"),
    ("id is a number", {"submissionId": 30_054_321}, Reason.SUBMISSION_ID_NOT_NANOID, "number"),
    ("id of 13 characters", {"submissionId": "3G9RNcDiRX4io"}, Reason.SUBMISSION_ID_NOT_NANOID, "13 characters"),
    ("id of 15 characters", {"submissionId": "3G9RNcDiRX4ioWx"}, Reason.SUBMISSION_ID_NOT_NANOID, "15 characters"),
    ("id with a dot", {"submissionId": "3G9RNcDi.X4ioW"}, Reason.SUBMISSION_ID_NOT_NANOID, "outside A-Za-z0-9_-"),
    ("id non-ascii", {"submissionId": "3G9RNcDiRX4ioé"}, Reason.SUBMISSION_ID_NOT_NANOID, "outside"),
    ("id empty", {"submissionId": ""}, Reason.SUBMISSION_ID_NOT_NANOID, "0 characters"),
    ("id not a string", {"submissionId": ["3G9RNcDiRX4ioW"]}, Reason.WRONG_FIELD_TYPE, "submissionId"),
    ("challenge legacy number", {"challengeId": "30054321"}, Reason.CHALLENGE_ID_INVALID, "not a UUID"),
    ("challenge garbage", {"challengeId": "not-a-uuid"}, Reason.CHALLENGE_ID_INVALID, "challengeId"),
    ("challenge a number", {"challengeId": 30_054_321}, Reason.CHALLENGE_ID_INVALID, "challengeId"),
    ("member a json number", {"memberId": 88_770_025}, Reason.WRONG_FIELD_TYPE, "memberId"),
    ("member not digits", {"memberId": "tourist"}, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    ("member zero", {"memberId": "0"}, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    ("member too large", {"memberId": str(MAX_MEMBER_ID + 1)}, Reason.MEMBER_ID_OUT_OF_RANGE, "memberId"),
    ("handle with a space", {"memberHandle": "two words"}, Reason.MEMBER_HANDLE_INVALID, "memberHandle"),
    ("handle too long", {"memberHandle": "h" * 65}, Reason.MEMBER_HANDLE_INVALID, "64"),
    ("handle not a string", {"memberHandle": 7}, Reason.WRONG_FIELD_TYPE, "memberHandle"),
    ("url empty", {"submissionUrl": ""}, Reason.URL_NOT_HTTPS, "submissionUrl"),  # as v5 judges ""
    ("url http", {"submissionUrl": f"http://{ALLOWED_HOST}/a.zip"}, Reason.URL_NOT_HTTPS, "https"),
    ("url foreign host", {"submissionUrl": "https://attacker.example/a.zip"}, Reason.URL_HOST_NOT_ALLOWED, "host"),
    ("url ip literal", {"submissionUrl": "https://169.254.169.254/latest"}, Reason.URL_HOST_IP_LITERAL, "IP"),
    ("url userinfo", {"submissionUrl": f"https://u:p@{ALLOWED_HOST}/a"}, Reason.URL_HAS_USERINFO, "user"),
    ("date not iso", {"submittedDate": "yesterday"}, Reason.INVALID_FIELD_VALUE, "submittedDate"),
    ("date epoch text", {"submittedDate": "1783000000"}, Reason.INVALID_FIELD_VALUE, "ISO 8601"),
    ("date a number", {"submittedDate": 1_783_000_000}, Reason.WRONG_FIELD_TYPE, "submittedDate"),
]


@pytest.mark.parametrize(("overrides", "reason", "detail"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
@pytest.mark.parametrize("shape", ["envelope", "bare"])
def test_each_bad_field_is_rejected_with_its_reason(
    shape: str, overrides: dict[str, Any], reason: Reason, detail: str
) -> None:
    payload = v6_payload(**overrides)
    verdict = verdict_of(v6_envelope(payload) if shape == "envelope" else payload)
    assert verdict.reason is reason
    assert verdict.reason.disposition is AuditDisposition.REJECTED
    assert detail in verdict.detail
    assert verdict.platform is Platform.V6
    if shape == "envelope" and reason is not Reason.URL_HOST_NOT_ALLOWED:
        assert "payload." in verdict.detail


@pytest.mark.parametrize("field", ["submissionId", "challengeId", "memberId", "submissionUrl"])
def test_a_missing_required_field_is_named(field: str) -> None:
    payload = v6_payload()
    del payload[field]
    verdict = verdict_of(payload)
    assert verdict.reason is Reason.MISSING_REQUIRED_FIELD
    assert field in verdict.detail


def test_a_rejection_keeps_the_ids_when_they_are_plain() -> None:
    sid, cid = new_nanoid(), new_uuid()
    verdict = verdict_of(v6_payload(submission_id=sid, challenge_id=cid, memberId="x"))
    assert (verdict.submission_id, verdict.challenge_id) == (sid, cid)


def test_details_never_quote_the_untrusted_values() -> None:
    secret = "SECRETVALUE123"
    for overrides in ({"submissionId": secret + "!"}, {"memberHandle": secret + " x"}, {"memberId": secret}):
        assert secret not in verdict_of(v6_payload(**overrides)).detail


def test_an_envelope_missing_its_own_fields_is_rejected_with_the_v6_ids() -> None:
    sid = new_nanoid()
    envelope = v6_envelope(v6_payload(submission_id=sid))
    del envelope["originator"]
    verdict = verdict_of(envelope)
    assert verdict.reason is Reason.MISSING_REQUIRED_FIELD
    assert verdict.submission_id == sid


# ---------------------------------------------------------------- properties
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
V6_FIELDS = st.sampled_from(
    ["topic", "payload", "originator", "timestamp", "mime-type", *v6_payload().keys(), "resource", "id"]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(V6_FIELDS, JSON, max_size=8), st.dictionaries(V6_FIELDS, JSON, max_size=8))
def test_arbitrary_json_on_the_v6_topic_never_raises(top: dict[str, Any], overrides: dict[str, Any]) -> None:
    for value in (top, {**v6_payload(), **overrides}, v6_envelope({**v6_payload(), **overrides}) | top):
        result = classify(value)
        assert isinstance(result, Verdict | V6SubmissionPayload | SubmissionFields)
