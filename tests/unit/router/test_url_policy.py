"""mm_contracts.url_policy: the one URL policy the router (at entry) and the challenge processor (pre-launch) apply."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mm_contracts.models.routed import MAX_MEMBER_ID, RoutedSubmission
from mm_contracts.url_policy import UrlRefusal, is_ip_literal, url_refusal
from router_lambda.reasons import Reason
from router_lambda.records import MskRecord, Verdict, classify_record
from tests.builders import bus_envelope, new_uuid, submission_payload
from tests.unit.router.support import router_settings

ALLOWED = ("topcoder-submissions.s3.amazonaws.com", ".topcoder.com")
SETTINGS = router_settings(allowed_url_hosts=ALLOWED)

URLS = [
    ("https://topcoder-submissions.s3.amazonaws.com/mm/a.zip", None),
    ("https://files.topcoder.com/a.zip", None),
    ("https://files.topcoder.com:443/a.zip", None),
    ("file:///etc/passwd", UrlRefusal.URL_NOT_HTTPS),
    ("http://169.254.169.254/latest/meta-data/", UrlRefusal.URL_NOT_HTTPS),
    ("gopher://files.topcoder.com/", UrlRefusal.URL_NOT_HTTPS),
    ("https://169.254.169.254/latest/meta-data/", UrlRefusal.URL_HOST_IP_LITERAL),
    ("https://169.254.169.254./latest/", UrlRefusal.URL_HOST_IP_LITERAL),
    ("https://2852039166/", UrlRefusal.URL_HOST_IP_LITERAL),
    ("https://0xa9fea9fe/", UrlRefusal.URL_HOST_IP_LITERAL),
    ("https://0251.0376.0251.0376/", UrlRefusal.URL_HOST_IP_LITERAL),
    ("https://127.1/", UrlRefusal.URL_HOST_IP_LITERAL),
    ("https://files.topcoder.123/", UrlRefusal.URL_HOST_IP_LITERAL),
    ("https://[::1]/", UrlRefusal.URL_INVALID),
    ("https://[fd00:ec2::254]/latest/", UrlRefusal.URL_INVALID),
    ("https://localhost/a.zip", UrlRefusal.URL_HOST_RESERVED),
    ("https://app.localhost/a.zip", UrlRefusal.URL_HOST_RESERVED),
    ("https://metadata.google.internal/computeMetadata/v1/", UrlRefusal.URL_HOST_RESERVED),
    ("https://instance-data/latest/", UrlRefusal.URL_HOST_RESERVED),
    ("https://user:pw@files.topcoder.com/a.zip", UrlRefusal.URL_HAS_USERINFO),
    ("https://files.topcoder.com@evil.net/a.zip", UrlRefusal.URL_HAS_USERINFO),
    ("https://files.topcoder.com:8443/a.zip", UrlRefusal.URL_PORT_NOT_ALLOWED),
    ("https://files.topcoder.com:99999/a.zip", UrlRefusal.URL_INVALID),
    ("https://files.topcoder.com\\@evil.net/", UrlRefusal.URL_INVALID),
    ("https://files.topcoder.com/a b.zip", UrlRefusal.URL_INVALID),
    ("https://fìles.topcoder.com/a.zip", UrlRefusal.URL_INVALID),
    ("https://evil.net/a.zip", UrlRefusal.URL_HOST_NOT_ALLOWED),
    ("https://topcoder.com/a.zip", UrlRefusal.URL_HOST_NOT_ALLOWED),
    ("https://files.topcoder.com.evil.net/a.zip", UrlRefusal.URL_HOST_NOT_ALLOWED),
]


def routed_by_router(url: str) -> Reason | None:
    value = base64.b64encode(json.dumps(bus_envelope(submission_payload(url=url))).encode()).decode()
    record = MskRecord(topic="submission.notification.create", partition=0, offset=1, value=value)
    verdict = classify_record(record, SETTINGS)
    return verdict.reason if isinstance(verdict, Verdict) else None


@pytest.mark.parametrize(("url", "refusal"), URLS)
def test_the_policy_refuses_with_a_specific_code(url: str, refusal: UrlRefusal | None) -> None:
    assert url_refusal(url, ALLOWED) is refusal


@pytest.mark.parametrize(("url", "refusal"), URLS)
def test_the_router_and_the_policy_agree_on_every_url(url: str, refusal: UrlRefusal | None) -> None:
    # One source: the router's reason is the policy's refusal code (the processor calls the same function).
    reason = routed_by_router(url)
    assert (reason.value if reason else None) == (refusal.value if refusal else None)


def test_every_refusal_is_a_router_reason() -> None:
    for refusal in UrlRefusal:
        assert Reason(refusal.value).value == refusal.value


@pytest.mark.parametrize("host", ["files.topcoder.com", "s3.amazonaws.com", "a1.b2.example", "x-0.io"])
def test_ordinary_host_names_are_not_ip_literals(host: str) -> None:
    assert not is_ip_literal(host)


@settings(max_examples=300, deadline=None)  # what it proves is "never raises", not a time: a loaded machine flaked it
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert url_refusal(text, ALLOWED) is None or isinstance(url_refusal(text, ALLOWED), UrlRefusal)
    assert url_refusal("https://" + text, ALLOWED) is None or isinstance(
        url_refusal("https://" + text, ALLOWED), UrlRefusal
    )


def test_routed_submission_bounds_member_id_with_the_same_constant() -> None:
    base = {
        "submissionId": new_uuid(),
        "challengeId": new_uuid(),
        "url": "https://files.topcoder.com/a.zip",
        "correlationId": "t-0-1",
        "source": {"topic": "t", "partition": 0, "offset": 1},
        "routedAt": "2027-01-15T12:00:00Z",
    }
    assert RoutedSubmission.model_validate({**base, "memberId": MAX_MEMBER_ID}).member_id == MAX_MEMBER_ID
    for bad in (int("9" * 40), MAX_MEMBER_ID + 1, 0, -1):
        with pytest.raises(ValidationError, match="memberId"):
            RoutedSubmission.model_validate({**base, "memberId": bad})


def test_every_whitespace_control_character_and_backslash_makes_a_url_invalid_and_nothing_else_does() -> None:
    # The character rule is one regex (decision 113); it must refuse exactly what the rule says, for every code
    # point that could matter: the Basic Multilingual Plane's first 0x3100 and every whitespace anywhere.
    def refused_by_rule(ch: str) -> bool:
        return ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\"

    whitespace = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    for ch in [chr(c) for c in range(0x3100)] + whitespace:
        if ch in "#?/:@[]%" or 0xD800 <= ord(ch) <= 0xDFFF:
            continue  # URL syntax of their own (tested above), or lone surrogates (no URL text carries one)
        refusal = url_refusal(f"https://files.topcoder.com/mm/a{ch}b.zip", ALLOWED)
        assert (refusal is UrlRefusal.URL_INVALID) is refused_by_rule(ch), hex(ord(ch))
