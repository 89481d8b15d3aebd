"""mm_contracts.url_policy: the one URL policy the router (at entry) and the challenge processor (pre-launch) apply."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from hypothesis import example, given, settings
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


# URLs built from the parts the fast path looks at: the scheme's case, userinfo, the host's characters (U+017F and
# U+212A fold to ASCII letters under IGNORECASE), the port, and what follows the authority.
_URLS = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["https://", "HTTPS://", "hTtPs://", "http://", "https:/", "https:", "", "ftp://"]),
        st.sampled_from(["", "u@", "u:p@", "@"]),
        st.lists(
            st.sampled_from(
                [
                    "files",
                    "topcoder",
                    "com",
                    "Com",
                    ".",
                    "-",
                    "127",
                    "0x1f",
                    "\u017f",
                    "\u212a",
                    "\xe9",
                    "localhost",
                    "internal",
                    "[::1]",
                    "%41",
                    "_",
                ]
            ),
            max_size=5,
        ).map("".join),
        st.sampled_from(["", ":443", ":0443", ":8443", ":", ":x", ":99999", ":443:443"]),
        st.sampled_from(["", "/", "/a.zip", "?q=1", "#f", "\\x", " x", "/a b", "@evil.net/", ";p"]),
    ),
)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_URLS, _URLS, st.text(max_size=80), st.text(max_size=40).map(lambda tail: "https://" + tail)))
@example("https://\u017f.topcoder.com/a.zip")  # U+017F: IGNORECASE's `[a-z]` takes it; urlsplit keeps it
@example("https://files.topcoder.com:8443/a.zip")
@example("https://u@files.topcoder.com/a.zip")
@example("HTTPS://Files.TopCoder.com.:443?x")
def test_the_one_match_fast_path_answers_exactly_what_the_full_parse_does(url: str) -> None:
    # The router's common URL is judged by one regex (decision 113); `urlsplit` is the reference for every URL.
    from mm_contracts.url_policy import _parsed_shape_refusal, _parsed_url_host, url_host, url_shape_refusal

    assert url_shape_refusal(url) is _parsed_shape_refusal(url)
    assert url_host(url) == _parsed_url_host(url)


def _allowed_by_the_plain_loop(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    # The rule as written before the allow list was normalized once per environment (decision 113).
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        entry = entry.strip().lower().rstrip(".")
        if not entry or entry == ".":
            continue
        if entry.startswith("."):
            if host.endswith(entry) and len(host) > len(entry):
                return True
        elif host == entry:
            return True
    return False


_HOST_PIECES = st.lists(st.sampled_from(["files", "topcoder", "com", ".", "Com", "s3", "x", " ", ""]), max_size=5).map(
    "".join
)


@settings(max_examples=1000, deadline=None)
@given(_HOST_PIECES, st.lists(_HOST_PIECES, max_size=4).map(tuple))
def test_the_normalized_allow_list_allows_exactly_what_the_plain_rule_does(host: str, allowed: tuple[str, ...]) -> None:
    from mm_contracts.url_policy import host_is_allowed

    assert host_is_allowed(host, allowed) is _allowed_by_the_plain_loop(host, allowed)
    assert host_is_allowed(host, list(allowed)) is _allowed_by_the_plain_loop(host, allowed)
