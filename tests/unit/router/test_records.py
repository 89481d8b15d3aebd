"""Record classification: every way a Kafka record can be unroutable has its own reason code."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm_contracts.models.audit import AuditDisposition
from mm_contracts.models.bus import (
    BusErrorCode,
    FlatSubmission,
    InboundSubmission,
    SubmissionFields,
    SubmissionPayload,
    canonical_uuid,
    host_is_allowed,
)
from mm_contracts.models.phase import Platform, submission_id_fits
from router_lambda.reasons import Reason
from router_lambda.records import MskRecord, Verdict, classify_record, decode_value
from tests.builders import bus_envelope, flat_submission, new_uuid, review_envelope, submission_payload
from tests.unit.router.support import router_settings

SETTINGS = router_settings(max_record_bytes=4096)
TOPIC = "submission.notification.create"


def record(value: Any, *, topic: str = TOPIC, encode: bool = True) -> MskRecord:
    if encode:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        value = base64.b64encode(raw).decode()
    return MskRecord(topic=topic, partition=0, offset=7, timestamp=1, value=value)


def classify(value: Any, **kwargs: Any) -> InboundSubmission | Verdict:
    return classify_record(record(value, **kwargs), SETTINGS)


def envelope(**payload_overrides: Any) -> dict[str, Any]:
    return bus_envelope(submission_payload(**payload_overrides))


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def payload_without(key: str) -> dict[str, Any]:
    env = envelope()
    env["payload"] = without(env["payload"], key)
    return env


# ---------------------------------------------------------------- accepted shapes
def test_envelope_submission_is_accepted_with_canonical_ids() -> None:
    # Given a bus envelope whose ids are upper-case UUIDs
    sid, cid = new_uuid(), new_uuid()
    # When it is classified
    result = classify(envelope(submission_id=sid.upper(), challenge_id=cid.upper()))
    # Then it is a submission with canonical (lower-case) ids
    assert isinstance(result, SubmissionPayload)
    assert (result.id, result.challenge_uuid, result.member_id) == (sid, cid, 40_158_994)


def test_flat_form_without_resource_is_recognized() -> None:
    result = classify(flat_submission())
    assert isinstance(result, FlatSubmission)


def test_bare_payload_with_resource_is_judged_like_an_envelope_payload() -> None:
    assert isinstance(classify(submission_payload()), SubmissionPayload)
    verdict = classify({"resource": "review", "id": new_uuid()})
    assert isinstance(verdict, Verdict)
    assert verdict.reason is Reason.RESOURCE_NOT_SUBMISSION


def test_legacy_numeric_challenge_id_is_accepted_for_resolution() -> None:
    v5 = new_uuid()
    result = classify(envelope(challenge_id=30_054_321, v5ChallengeId=v5))
    assert isinstance(result, SubmissionFields)
    assert result.legacy_challenge_number == 30_054_321
    assert result.challenge_uuid is None
    assert result.v5_challenge_id == v5


def test_numeric_string_member_id_is_accepted() -> None:
    result = classify(envelope(member_id="40158994"))
    assert isinstance(result, SubmissionFields)
    assert result.member_id == 40_158_994


# ---------------------------------------------------------------- skipped
@pytest.mark.parametrize("resource", ["review", "reviewSummation", "reviewType", "Submission", 5])
def test_non_submission_resources_are_skipped(resource: Any) -> None:
    env = review_envelope()
    env["payload"]["resource"] = resource
    verdict = classify(env)
    assert isinstance(verdict, Verdict)
    assert verdict.reason is Reason.RESOURCE_NOT_SUBMISSION
    assert verdict.reason.disposition is AuditDisposition.SKIPPED


def test_envelope_topic_not_accepted_is_skipped_before_validation() -> None:
    verdict = classify({"topic": "challenge.notification.update", "payload": "not even an object"})
    assert isinstance(verdict, Verdict)
    assert verdict.reason is Reason.TOPIC_NOT_ACCEPTED
    assert verdict.reason.disposition is AuditDisposition.SKIPPED


def test_kafka_topic_not_accepted_is_skipped_without_decoding() -> None:
    verdict = classify_record(record("%%%not-base64", topic="other.topic", encode=False), SETTINGS)
    assert isinstance(verdict, Verdict)
    assert verdict.reason is Reason.KAFKA_TOPIC_NOT_ACCEPTED


# ---------------------------------------------------------------- rejected
LONG_URL = "https://topcoder-submissions.s3.amazonaws.com/" + "a" * 2100

REJECTIONS: list[tuple[str, Any, bool, Reason, str]] = [
    # (case, value, base64-encode it, reason, text the detail must contain)
    ("not base64", "###", False, Reason.VALUE_NOT_BASE64, "base64"),
    ("value not a string", 12, False, Reason.VALUE_NOT_BASE64, "int"),
    ("tombstone", None, False, Reason.VALUE_MISSING, "no value"),
    ("empty", b"  ", True, Reason.VALUE_MISSING, "empty"),
    ("undecodable bytes", b"\xff\xfe\x00garbage", True, Reason.VALUE_NOT_UTF8, "UTF-8"),
    ("not JSON", b"submission id=1", True, Reason.VALUE_NOT_JSON, "JSON"),
    ("JSON array", [1, 2], True, Reason.VALUE_NOT_OBJECT, "array"),
    ("JSON string", "hello", True, Reason.VALUE_NOT_OBJECT, "string"),
    ("JSON null", None, True, Reason.VALUE_NOT_OBJECT, "null"),
    ("oversize decoded", {"pad": "x" * 4100}, True, Reason.RECORD_TOO_LARGE, "MAX_RECORD_BYTES"),
    ("oversize encoded", "A" * 6000, False, Reason.RECORD_TOO_LARGE, "MAX_RECORD_BYTES"),
    ("unknown shape", {"hello": "world"}, True, Reason.UNRECOGNIZED_SHAPE, "neither"),
    ("payload not object", {**envelope(), "payload": [1]}, True, Reason.WRONG_FIELD_TYPE, "payload"),
    ("envelope no originator", without(envelope(), "originator"), True, Reason.MISSING_REQUIRED_FIELD, "originator"),
    ("envelope bad timestamp", {**envelope(), "timestamp": "yesterday"}, True, Reason.INVALID_FIELD_VALUE, "timestamp"),
    ("payload no resource", payload_without("resource"), True, Reason.MISSING_REQUIRED_FIELD, "payload.resource"),
    ("missing memberId", payload_without("memberId"), True, Reason.MISSING_REQUIRED_FIELD, "payload.memberId"),
    ("missing url", payload_without("url"), True, Reason.MISSING_REQUIRED_FIELD, "payload.url"),
    ("missing id", payload_without("id"), True, Reason.MISSING_REQUIRED_FIELD, "payload.id"),
    ("missing challengeId", payload_without("challengeId"), True, Reason.MISSING_REQUIRED_FIELD, "payload.challengeId"),
    ("flat missing url", without(flat_submission(), "url"), True, Reason.MISSING_REQUIRED_FIELD, "url"),
    ("url wrong type", envelope(url=["https://x"]), True, Reason.WRONG_FIELD_TYPE, "payload.url"),
    (
        "id wrong type",
        envelope(submission_id=None) | {"payload": {**submission_payload(), "id": [1]}},
        True,
        Reason.WRONG_FIELD_TYPE,
        "payload.id",
    ),
    ("phase wrong type", envelope(submissionPhaseId=[1]), True, Reason.WRONG_FIELD_TYPE, "submissionPhaseId"),
    ("created not a date", envelope(created="soon"), True, Reason.INVALID_FIELD_VALUE, "payload.created"),
    ("fileType wrong type", envelope(fileType=3), True, Reason.WRONG_FIELD_TYPE, "payload.fileType"),
    (
        "legacy numeric id (number)",
        envelope() | {"payload": {**submission_payload(), "id": 205_867}},
        True,
        Reason.SUBMISSION_ID_LEGACY_NUMERIC,
        "payload.id",
    ),
    ("legacy numeric id (text)", envelope(submission_id="205867"), True, Reason.SUBMISSION_ID_LEGACY_NUMERIC, "id"),
    ("v6 id", envelope(submission_id="Xk3Lm9Pq2Rs7Tu"), True, Reason.SUBMISSION_ID_V6, "payload.id"),
    ("id not uuid", envelope(submission_id="not-a-uuid-at-all"), True, Reason.SUBMISSION_ID_NOT_UUID, "payload.id"),
    (
        "id uuid without hyphens",
        envelope(submission_id=new_uuid().replace("-", "")),
        True,
        Reason.SUBMISSION_ID_NOT_UUID,
        "payload.id",
    ),
    ("challenge id garbage", envelope(challenge_id="abc"), True, Reason.CHALLENGE_ID_INVALID, "payload.challengeId"),
    ("challenge id zero", envelope(challengeId=0), True, Reason.CHALLENGE_ID_INVALID, "challengeId"),
    ("challenge id bool", envelope(challenge_id=True), True, Reason.CHALLENGE_ID_INVALID, "challengeId"),
    ("memberId negative", envelope(member_id=-5), True, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    ("memberId zero", envelope(member_id=0), True, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    ("memberId text", envelope(member_id="abc"), True, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    ("memberId float", envelope(member_id=1.5), True, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    ("memberId bool", envelope(member_id=True), True, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    # Bounded where it enters: a 40-digit memberId used to be routed and then fail three times at the claim.
    ("memberId 40 digits", envelope(member_id=int("9" * 40)), True, Reason.MEMBER_ID_OUT_OF_RANGE, "memberId"),
    ("memberId 40-digit text", envelope(member_id="9" * 40), True, Reason.MEMBER_ID_OUT_OF_RANGE, "memberId"),
    ("memberId 2^63", envelope(member_id=2**63), True, Reason.MEMBER_ID_OUT_OF_RANGE, "memberId"),
    ("memberId 65-digit text", envelope(member_id="9" * 65), True, Reason.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId"),
    (
        "url metadata address",
        envelope(url="https://169.254.169.254/latest/meta-data/"),
        True,
        Reason.URL_HOST_IP_LITERAL,
        "url",
    ),
    ("url integer address", envelope(url="https://2130706433/a.zip"), True, Reason.URL_HOST_IP_LITERAL, "url"),
    ("url localhost", envelope(url="https://localhost/a.zip"), True, Reason.URL_HOST_RESERVED, "url"),
    ("url file", envelope(url="file:///etc/passwd"), True, Reason.URL_NOT_HTTPS, "url"),
    ("url http", envelope(url="http://topcoder-submissions.s3.amazonaws.com/a.zip"), True, Reason.URL_NOT_HTTPS, "url"),
    ("url ftp", envelope(url="ftp://topcoder-submissions.s3.amazonaws.com/a.zip"), True, Reason.URL_NOT_HTTPS, "url"),
    ("url relative", envelope(url="/a.zip"), True, Reason.URL_NOT_HTTPS, "url"),
    (
        "url userinfo",
        envelope(url="https://u:p@topcoder-submissions.s3.amazonaws.com/a.zip"),
        True,
        Reason.URL_HAS_USERINFO,
        "url",
    ),
    (
        "url port",
        envelope(url="https://topcoder-submissions.s3.amazonaws.com:8443/a.zip"),
        True,
        Reason.URL_PORT_NOT_ALLOWED,
        "url",
    ),
    (
        "url bad port",
        envelope(url="https://topcoder-submissions.s3.amazonaws.com:99999/a"),
        True,
        Reason.URL_INVALID,
        "url",
    ),
    (
        "url whitespace",
        envelope(url="https://topcoder-submissions.s3.amazonaws.com/a b.zip"),
        True,
        Reason.URL_INVALID,
        "url",
    ),
    (
        "url backslash",
        envelope(url="https://evil.com\\@topcoder-submissions.s3.amazonaws.com/"),
        True,
        Reason.URL_INVALID,
        "url",
    ),
    ("url too long", envelope(url=LONG_URL), True, Reason.URL_INVALID, "url"),
    (
        "url host not allowed",
        envelope(url="https://evil.example.net/a.zip"),
        True,
        Reason.URL_HOST_NOT_ALLOWED,
        "evil.example.net",
    ),
    (
        "url host look-alike",
        envelope(url="https://topcoder-submissions.s3.amazonaws.com.evil.net/a"),
        True,
        Reason.URL_HOST_NOT_ALLOWED,
        "ALLOWED_URL_HOSTS",
    ),
    (
        "url apex of subdomain rule",
        envelope(url="https://topcoder.com/a.zip"),
        True,
        Reason.URL_HOST_NOT_ALLOWED,
        "topcoder.com",
    ),
]


@pytest.mark.parametrize(
    ("value", "encode", "reason", "detail"),
    [pytest.param(v, e, r, d, id=case) for case, v, e, r, d in REJECTIONS],
)
def test_rejections_have_specific_reason_codes(value: Any, encode: bool, reason: Reason, detail: str) -> None:
    # When a malformed record is classified
    verdict = classify(value, encode=encode)
    # Then it is rejected with that failure's own reason, and the detail names the problem
    assert isinstance(verdict, Verdict), verdict
    assert verdict.reason is reason, verdict
    assert verdict.reason.disposition is AuditDisposition.REJECTED
    assert detail in verdict.detail


def test_rejection_names_every_offending_field() -> None:
    env = envelope(member_id=-1, url="http://x.example/a")
    del env["payload"]["id"]
    verdict = classify(env)
    assert isinstance(verdict, Verdict)
    assert verdict.reason is Reason.MISSING_REQUIRED_FIELD  # the first problem in field order
    for name in ("payload.id", "payload.memberId", "payload.url"):
        assert name in verdict.detail


def test_rejection_keeps_ids_when_they_are_plain() -> None:
    sid, cid = new_uuid(), new_uuid()
    verdict = classify(envelope(submission_id=sid, challenge_id=cid, member_id=-1))
    assert isinstance(verdict, Verdict)
    assert (verdict.submission_id, verdict.challenge_id) == (sid, cid)
    hostile = classify(envelope(submission_id="<script>" * 20, member_id=-1))
    assert isinstance(hostile, Verdict)
    assert hostile.submission_id is None


def test_details_never_quote_the_untrusted_value() -> None:
    marker = "SECRET-MARKER-" + "z" * 30
    cases = [
        envelope(url=f"http://{marker}.example/a"),
        envelope(member_id=marker),
        envelope(submission_id=marker),
        envelope(challenge_id=marker),
        envelope(created=marker),
        {**envelope(), "timestamp": marker},
    ]
    for case in cases:
        verdict = classify(case)
        assert isinstance(verdict, Verdict)
        assert marker not in verdict.detail


def test_the_largest_member_id_is_accepted_as_integer_and_as_digits() -> None:
    for value in (2**63 - 1, str(2**63 - 1), " 0040158994 "):
        result = classify(envelope(member_id=value))
        assert isinstance(result, SubmissionPayload), value
        assert result.member_id == int(str(value).strip())


def test_an_ip_literal_is_refused_even_when_listed() -> None:
    # Decision 076 supersedes 014's "IP literals pass if listed verbatim": no listing makes them fetchable.
    listed = router_settings(allowed_url_hosts=("169.254.169.254", "10.0.0.1"))
    for url in ("https://169.254.169.254/latest/", "https://10.0.0.1/a.zip"):
        verdict = classify_record(record(envelope(url=url)), listed)
        assert isinstance(verdict, Verdict)
        assert verdict.reason is Reason.URL_HOST_IP_LITERAL


# ---------------------------------------------------------------- host rules
@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("files.topcoder.com", (".topcoder.com",), True),
        ("a.b.topcoder.com", (".topcoder.com",), True),
        ("topcoder.com", (".topcoder.com",), False),
        ("eviltopcoder.com", (".topcoder.com",), False),
        ("topcoder.com", ("topcoder.com",), True),
        ("www.topcoder.com", ("topcoder.com",), False),
        ("TopCoder.com.", ("topcoder.com",), True),
        ("x.com", (".",), False),
    ],
)
def test_host_allow_list(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert host_is_allowed(host, allowed) is expected


# ---------------------------------------------------------------- reason codes
def test_every_bus_error_code_is_a_reason_and_a_rejection() -> None:
    for code in BusErrorCode:
        assert Reason(code.value).disposition is AuditDisposition.REJECTED


def test_skip_reasons_are_exactly_the_normal_traffic_ones() -> None:
    skipped = {r for r in Reason if r.disposition is AuditDisposition.SKIPPED}
    assert skipped == {
        Reason.KAFKA_TOPIC_NOT_ACCEPTED,
        Reason.TOPIC_NOT_ACCEPTED,
        Reason.RESOURCE_NOT_SUBMISSION,
        Reason.DUPLICATE_IN_BATCH,
        Reason.PLATFORM_MISMATCH,  # decision 088: the other platform's copy of a submission
        Reason.CHALLENGE_NOT_SERVED,  # decision 088: the v6 topic carries every Marathon Match
    }
    assert all(r.value == r.value.lower() and " " not in r.value for r in Reason)


# ---------------------------------------------------------------- properties
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=6000))
def test_arbitrary_bytes_never_raise_out_of_the_decoder(raw: bytes) -> None:
    result = classify_record(record(raw), SETTINGS)
    assert isinstance(result, Verdict | SubmissionFields)
    assert isinstance(decode_value(record(raw), 4096), dict | Verdict)


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_as_the_raw_value_never_raises(text: str) -> None:
    assert isinstance(classify_record(record(text, encode=False), SETTINGS), Verdict | SubmissionFields)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["topic", "payload", "originator", "timestamp", "mime-type", "resource", "id", "challengeId", "memberId", "url"]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(FIELDS, JSON, max_size=8), st.dictionaries(FIELDS, JSON, max_size=8))
def test_arbitrary_json_objects_never_raise(top: dict[str, Any], payload: dict[str, Any]) -> None:
    for value in (top, {**top, "payload": payload}, {**envelope(), "payload": {**submission_payload(), **payload}}):
        result = classify(value)
        assert isinstance(result, Verdict | SubmissionFields)


def test_deeply_nested_json_is_rejected_not_raised() -> None:
    deep = b"[" * 3000 + b"]" * 3000
    verdict = classify_record(record(deep), router_settings(max_record_bytes=65_536))
    assert isinstance(verdict, Verdict)
    assert verdict.reason in {Reason.VALUE_NOT_JSON, Reason.VALUE_NOT_OBJECT}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.uuids().map(lambda u: "{" + str(u) + "}"),
        st.uuids().map(lambda u: f"urn:uuid:{u}"),
        st.text(alphabet="0123456789abcdefABCDEF-{}:urn\u0130\u212a\u0660", min_size=30, max_size=40),
        st.text(max_size=40),
    )
)
def test_canonical_uuid_accepts_exactly_what_uuid_parsing_did(value: str) -> None:
    # The regex (decision 113) against the rule it replaced: UUID() parses it and writes it back as value.lower().
    def by_parsing(text: str) -> str | None:
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            return None
        return str(parsed) if len(text) == 36 and str(parsed) == text.lower() else None

    assert canonical_uuid(value) == by_parsing(value)
    assert submission_id_fits(value, Platform.V5) is (by_parsing(value) == value)
