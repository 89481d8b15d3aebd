"""The fuzz's oracles: why an input must be refused, decided independently of the code under test.

The URL policy's hard rules (https only, no userinfo, port 443, an allow-listed host, never the instance-metadata
address), a RoutedSubmission body's validity for one challenge, and for v6 records a decoding of the Kafka record
of its own, so a published v6 body can be held against the record it came from.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import ValidationError

from mm_contracts.models.phase import V6_SUBMISSION_TOPIC
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC
from tests.fuzz.strategies import (
    ALLOWED_URL_HOSTS,
    KNOWN_CHALLENGE,
    SEEDED_SUBMISSION,
    V6_CHALLENGE,
    V6_INACTIVE_CHALLENGE,
    V6_ORIGINATOR,
    V6_SUBMITTED,
    V6_TIMESTAMP,
)

MAX_MEMBER_ID = 2**63 - 1  # a signed 64-bit integer: what every later store holds exactly
_METADATA_HOSTS = ("169.254.169.254", "2852039166", "0xa9fea9fe", "fd00:ec2::254")


def url_refused_because(url: str) -> str | None:
    """Why the URL policy must refuse `url` (None: it may be fetched).

    The shared policy (mm_contracts.url_policy) when present, plus hard rules the fuzz checks on its own so a
    hole in the policy shows up too: https only, no userinfo, port 443, an allow-listed host, never the
    instance-metadata address, text that can be encoded at all.
    """
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        return "not encodable (lone surrogate)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "unparsable"
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme.lower() != "https":
        return "scheme is not https"
    if "@" in parts.netloc:
        return "userinfo"
    if port not in (None, 443):
        return "port"
    if any(marker in host for marker in _METADATA_HOSTS):
        return "instance-metadata address"
    from mm_contracts.models.bus import host_is_allowed

    if not host_is_allowed(host, ALLOWED_URL_HOSTS):
        return "host not allowed"
    try:
        from mm_contracts.url_policy import url_refusal
    except ImportError:  # before the shared policy existed: decision 014's rules live in the bus model
        from mm_contracts.models.bus import FlatSubmission

        try:
            FlatSubmission.model_validate(
                {"id": SEEDED_SUBMISSION, "challengeId": KNOWN_CHALLENGE, "memberId": 1, "url": url}
            )
        except ValidationError:
            return "refused by the URL rules"
        return None
    refusal = url_refusal(url, ALLOWED_URL_HOSTS)
    return None if refusal is None else f"refused by the URL policy ({refusal.value})"


def routed_refused_because(body: str | dict[str, Any], *, challenge_id: str) -> str | None:
    """Why a RoutedSubmission body must not be acted on by the processor of `challenge_id` (None: valid)."""
    from mm_contracts.models.routed import RoutedSubmission

    try:
        if isinstance(body, str):
            routed = RoutedSubmission.model_validate_json(body)
        else:
            routed = RoutedSubmission.model_validate(body)
    except ValidationError:
        return "not a RoutedSubmission"
    if routed.challenge_id != challenge_id:
        return "another challenge"
    if not 1 <= routed.member_id <= MAX_MEMBER_ID:
        return "memberId out of range"
    return url_refused_because(routed.url)


def canonical_uuid(value: Any) -> str | None:
    """`value` as a canonical UUID text (None: not a UUID)."""
    if not isinstance(value, str):
        return None
    try:
        return str(UUID(value.strip()))
    except ValueError:
        return None


_NANOID = re.compile(r"^[A-Za-z0-9_-]{14}$")
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_HANDLE = re.compile(r"^[\x21-\x7e]{1,64}$")
# What the router may publish a v6 record as: its served v6 challenges, and the skip reason each must carry.
V6_SERVED = {V6_CHALLENGE: None, V6_INACTIVE_CHALLENGE: "challenge_inactive"}
_V6_PAYLOAD_KEYS = {"submissionId", "challengeId", "submissionUrl", "memberHandle", "memberId", "submittedDate"}


def _decoded_object(item: dict[str, Any]) -> dict[str, Any] | None:
    """The record's value as the JSON object it carries, decoded strictly (None: not one)."""
    value = item.get("value")
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(base64.b64decode(value, validate=True).decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _uuid_text(value: Any) -> str | None:
    """A canonical UUID (case aside) as text: 36 characters, hyphenated."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        parsed = UUID(value)
    except ValueError:
        return None
    return str(parsed) if str(parsed) == value.lower() else None


def _v6_payload_of(item: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """The v6 payload of a record and whether it came in an envelope (None: the record is not read as v6)."""
    obj = _decoded_object(item)
    # The Kafka topic is judged first: a topic the environment does not read is skipped, whatever it carries.
    if obj is None or item.get("topic") not in (V6_SUBMISSION_TOPIC, DEFAULT_SUBMISSION_TOPIC):
        return None
    if any(marker in obj for marker in ("topic", "payload", "originator", "mime-type")):
        topic = obj.get("topic")
        if not isinstance(topic, str) or topic.strip() != V6_SUBMISSION_TOPIC:
            return None
        payload = obj.get("payload")
        return (payload, True) if isinstance(payload, dict) else None
    return (obj, False) if item.get("topic") == V6_SUBMISSION_TOPIC else None


def v6_published_refused_because(body: dict[str, Any], item: dict[str, Any] | None) -> str | None:
    """Why a published v6 body must not have been published from its record (None: it is that record's valid
    v6 submission of a served challenge). Independent of the router's code: the record is decoded here again."""
    why = routed_refused_because(json.dumps(body), challenge_id=str(body.get("challengeId")))
    if why is not None:
        return why
    if item is None:
        return "no record with its correlation id"
    found = _v6_payload_of(item)
    if found is None:
        return "its record is not a v6 record (topic)"
    payload, _ = found
    return _v6_identity_refused_because(body, payload) or _v6_member_refused_because(body, payload)


def _v6_identity_refused_because(body: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """The body names the record's submission and served challenge, with that challenge's skip reason."""
    raw_id = payload.get("submissionId")
    if not isinstance(raw_id, str) or not _NANOID.match(raw_id.strip()):
        return "the record's submissionId is not a nanoid"
    if body.get("submissionId") != raw_id.strip():
        return "another submissionId than the record's"
    raw_challenge = payload.get("challengeId")
    challenge = _uuid_text(raw_challenge.strip() if isinstance(raw_challenge, str) else None)
    if challenge not in V6_SERVED:
        return "the record's challenge is not a served v6 challenge"
    if body.get("challengeId") != challenge:
        return "another challenge than the record's"
    if body.get("skipReason") != V6_SERVED[challenge]:
        return f"skipReason {body.get('skipReason')!r} for challenge {challenge}"
    return None


def _v6_member_refused_because(body: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """The body carries the record's member, a URL the policy allows and a plain handle."""
    member = payload.get("memberId")
    if not isinstance(member, str) or not _DIGITS.match(member.strip()) or not 1 <= int(member) <= MAX_MEMBER_ID:
        return "the record's memberId is not a string of a positive 64-bit integer"
    if body.get("memberId") != int(member):
        return "another memberId than the record's"
    url = payload.get("submissionUrl")
    if not isinstance(url, str):
        return "the record has no submissionUrl"
    url_why = url_refused_because(url.strip())
    if url_why is not None:
        return f"the record's submissionUrl: {url_why}"
    handle = payload.get("memberHandle")
    if handle not in (None, "") and not (isinstance(handle, str) and _HANDLE.match(handle.strip())):
        return "the record's memberHandle is not a plain handle"
    return None


def pristine_v6_record(item: dict[str, Any]) -> str | None:
    """The challenge of a record that is exactly a valid v6 submission as review-api-v6 publishes it, for a served
    challenge (so the router must publish it); None for anything else. Stricter than the router on purpose."""
    found = _v6_payload_of(item)
    if found is None:
        return None
    payload, in_envelope = found
    if in_envelope:
        obj = _decoded_object(item) or {}
        expected = {
            "topic": V6_SUBMISSION_TOPIC,
            "originator": V6_ORIGINATOR,
            "timestamp": V6_TIMESTAMP,
            "mime-type": "application/json",
        }
        if set(obj) != {*expected, "payload"} or any(obj[key] != value for key, value in expected.items()):
            return None
    if not set(payload) <= _V6_PAYLOAD_KEYS or not {"submissionId", "challengeId", "submissionUrl", "memberId"} <= set(
        payload
    ):
        return None
    submission_id, challenge, member, url = (
        payload["submissionId"],
        payload["challengeId"],
        payload["memberId"],
        payload["submissionUrl"],
    )
    if not (isinstance(submission_id, str) and _NANOID.match(submission_id)):
        return None
    if not isinstance(challenge, str) or challenge not in V6_SERVED:
        return None
    if not (isinstance(member, str) and _DIGITS.match(member) and 1 <= int(member) <= MAX_MEMBER_ID):
        return None
    if not isinstance(url, str) or url_refused_because(url) is not None or url != url.strip():
        return None
    if (
        payload.get("memberHandle", "tourist") != "tourist"
        or payload.get("submittedDate", V6_SUBMITTED) != V6_SUBMITTED
    ):
        return None
    return str(challenge)
