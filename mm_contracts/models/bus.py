"""Inbound Topcoder bus shapes: v5 `submission.notification.create` and v6 `marathonmatch.submission.received`.

v5 shapes reach the router three ways (see docs/decisions/011):

* the bus envelope `{topic, originator, timestamp, mime-type, payload, key?}` (`BusEnvelope`), whose
  `payload` with `resource == "submission"` is a `SubmissionPayload`;
* the flat form some producers send (`id`, `challengeId`, `url`, `memberId`, `created`, no `resource`):
  `FlatSubmission`.

v6 (Topcoder's live platform, decision 088): the same envelope, or its bare payload, holding a
`V6SubmissionPayload` (`submissionId` a 14-character nanoid, `challengeId`, `memberId` and `memberHandle`,
`submissionUrl`, `submittedDate`; all strings), as review-api-v6 `publishMarathonMatchEvent` builds it.

Field rules that need a specific rejection reason raise `PydanticCustomError` whose *error type* is the
reason code (`BusErrorCode`), so callers map errors by type and location, never by message text.
Messages never echo the input: it is untrusted and ends up in logs.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from mm_contracts.models.base import ContractModel, canonical_uuid
from mm_contracts.models.phase import V6_SUBMISSION_ID, Platform
from mm_contracts.models.routed import MAX_MEMBER_ID
from mm_contracts.url_policy import MAX_URL_LENGTH, UrlRefusal, host_is_allowed, url_host, url_shape_refusal

SUBMISSION_RESOURCE = "submission"

_DIGITS = re.compile(r"^[0-9]{1,19}$")
_MEMBER_DIGITS = re.compile(r"^[0-9]{1,64}$")  # longer strings are not a number we could be sent
_V6_ID_LENGTH = 14
_ISO_DATE_START = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")  # pydantic would also take a bare epoch number
# A member handle as far as we carry it (logs, MM_MEMBER_HANDLE): printable ASCII without spaces, bounded.
_MEMBER_HANDLE = re.compile(r"^[\x21-\x7e]{1,64}$")


class BusErrorCode(StrEnum):
    """Error types raised by the field validators below; the router uses them as rejection reasons."""

    SUBMISSION_ID_NOT_UUID = "submission_id_not_uuid"
    SUBMISSION_ID_LEGACY_NUMERIC = "submission_id_legacy_numeric"
    SUBMISSION_ID_V6 = "submission_id_v6_format"
    CHALLENGE_ID_INVALID = "challenge_id_invalid"
    MEMBER_ID_NOT_POSITIVE_INTEGER = "member_id_not_positive_integer"
    MEMBER_ID_OUT_OF_RANGE = "member_id_out_of_range"
    URL_INVALID = UrlRefusal.URL_INVALID.value
    URL_NOT_HTTPS = UrlRefusal.URL_NOT_HTTPS.value
    URL_HAS_USERINFO = UrlRefusal.URL_HAS_USERINFO.value
    URL_PORT_NOT_ALLOWED = UrlRefusal.URL_PORT_NOT_ALLOWED.value
    URL_HOST_IP_LITERAL = UrlRefusal.URL_HOST_IP_LITERAL.value
    URL_HOST_RESERVED = UrlRefusal.URL_HOST_RESERVED.value
    # v6 (decision 088)
    SUBMISSION_ID_NOT_NANOID = "submission_id_not_nanoid"  # a v6 record whose id is not nanoid(14)
    SUBMISSION_ID_V5 = "submission_id_v5_format"  # a v6 record carrying a v5 UUID
    MEMBER_HANDLE_INVALID = "member_handle_invalid"


# What the model says for each shape refusal (the allow-list check needs settings: the router does it).
_URL_MESSAGES = {
    UrlRefusal.URL_INVALID: "url is too long, has whitespace, control characters or backslashes, "
    "a malformed port, or no plain ASCII host name",
    UrlRefusal.URL_NOT_HTTPS: "url scheme is not https",
    UrlRefusal.URL_HAS_USERINFO: "url carries user information",
    UrlRefusal.URL_PORT_NOT_ALLOWED: "url names a port other than 443",
    UrlRefusal.URL_HOST_IP_LITERAL: "url host is an IP address literal",
    UrlRefusal.URL_HOST_RESERVED: "url host is a local or metadata-service name",
}


def _error(code: BusErrorCode, message: str) -> PydanticCustomError:
    return PydanticCustomError(code.value, message)


def _positive_int(value: Any) -> int | None:
    """A JSON integer or a string of decimal digits, > 0 (bool is not an integer here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        number = int(value.strip())
        return number if number > 0 else None
    return None


def _member_id_number(value: Any) -> int | None:
    """A JSON integer or a string of decimal digits (the v5 spec allows both); bool is not a number here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _MEMBER_DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def _bounded_member_id(value: Any) -> int:
    number = _member_id_number(value)
    if number is None or number <= 0:
        raise _error(BusErrorCode.MEMBER_ID_NOT_POSITIVE_INTEGER, "memberId is not a positive integer")
    if number > MAX_MEMBER_ID:
        # Every later stage stores it (DynamoDB number, the scorer's environment): bound it here.
        raise _error(BusErrorCode.MEMBER_ID_OUT_OF_RANGE, f"memberId is larger than {MAX_MEMBER_ID}")
    return number


class _BusModel(ContractModel):
    # Producers add fields over time: ignore what we do not use. Not frozen-strict on whitespace either.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class SubmissionFields(_BusModel):
    """The submission fields common to the v5 envelope payload and the flat form."""

    platform: ClassVar[Platform] = Platform.V5
    url_field: ClassVar[str] = "url"  # the wire name of the URL, for rejection details

    id: str
    challenge_id: str  # canonical UUID, or the decimal digits of a legacy numeric id
    member_id: int
    url: str
    type: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    submitted_date: datetime | None = None
    file_type: str = "zip"
    submission_phase_id: int | None = None
    # Hints used to resolve a legacy challenge id; ignored (None) when not well-formed.
    v5_challenge_id: str | None = None
    legacy_challenge_id: int | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _submission_id(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | str):
            return value  # the `str` type check reports the wrong type
        if isinstance(value, int):
            raise _error(
                BusErrorCode.SUBMISSION_ID_LEGACY_NUMERIC, "legacy numeric submission id; a v5 UUID is required"
            )
        text = value.strip()
        canonical = canonical_uuid(text)
        if canonical:
            return canonical
        if _DIGITS.match(text):
            raise _error(
                BusErrorCode.SUBMISSION_ID_LEGACY_NUMERIC, "legacy numeric submission id; a v5 UUID is required"
            )
        if V6_SUBMISSION_ID.match(text):
            raise _error(BusErrorCode.SUBMISSION_ID_V6, "14-character v6 submission id; a v5 UUID is required")
        raise _error(BusErrorCode.SUBMISSION_ID_NOT_UUID, "submission id is not a UUID")

    @field_validator("challenge_id", mode="before")
    @classmethod
    def _challenge_id(cls, value: Any) -> Any:
        if isinstance(value, str):
            canonical = canonical_uuid(value.strip())
            if canonical:
                return canonical
        number = _positive_int(value)
        if number is not None:
            return str(number)
        raise _error(BusErrorCode.CHALLENGE_ID_INVALID, "challenge id is neither a UUID nor a legacy numeric id")

    @field_validator("member_id", mode="before")
    @classmethod
    def _member_id(cls, value: Any) -> Any:
        return _bounded_member_id(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        refusal = url_shape_refusal(value)  # the shared policy (mm_contracts.url_policy, decision 076)
        if refusal is not None:
            raise _error(BusErrorCode(refusal.value), _URL_MESSAGES[refusal])
        return value

    @field_validator("v5_challenge_id", mode="before")
    @classmethod
    def _v5_hint(cls, value: Any) -> str | None:
        return canonical_uuid(value.strip()) if isinstance(value, str) else None

    @field_validator("legacy_challenge_id", mode="before")
    @classmethod
    def _legacy_hint(cls, value: Any) -> int | None:
        return _positive_int(value)

    @property
    def url_host(self) -> str:
        return url_host(self.url)

    @property
    def challenge_uuid(self) -> str | None:
        """`challengeId` when it is already the v5 UUID."""
        return None if self.challenge_id.isdigit() else self.challenge_id

    @property
    def legacy_challenge_number(self) -> int | None:
        """`challengeId` when it is a legacy numeric id."""
        return int(self.challenge_id) if self.challenge_id.isdigit() else None


class SubmissionPayload(SubmissionFields):
    """`payload` of a bus envelope with `resource == "submission"`."""

    # Exactly "submission", not stripped first (a Literal is compared as sent): what the router's own check asks
    # before it validates a payload, so the one-pass envelope below accepts no payload that check would skip.
    resource: Literal["submission"]


class FlatSubmission(SubmissionFields):
    """The unwrapped form without `resource` (no envelope, no topic of its own)."""


def _wrong_type(message: str) -> PydanticCustomError:
    # The type name ends in `_type`, so the router files it as `wrong_field_type` like pydantic's own.
    return PydanticCustomError("string_type", message)


class V6SubmissionPayload(_BusModel):
    """`payload` of a v6 `marathonmatch.submission.received` record (or the bare payload), decision 088.

    Every field is a string on the wire (review-api-v6 `First2FinishSubmissionEventPayload`). Unknown fields
    are ignored. The properties give it the v5 model's face where the router resolves and routes it.
    """

    platform: ClassVar[Platform] = Platform.V6
    url_field: ClassVar[str] = "submissionUrl"

    submission_id: str
    challenge_id: str
    member_id: int
    submission_url: str
    # Always sent by review-api-v6; optional here because nothing downstream needs them to score.
    member_handle: str | None = None
    submitted_date: datetime | None = None

    @field_validator("submission_id", mode="before")
    @classmethod
    def _submission_id(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise _error(BusErrorCode.SUBMISSION_ID_NOT_NANOID, "submissionId is a number; v6 sends a nanoid string")
        if not isinstance(value, str):
            return value  # the `str` type check reports the wrong type
        text = value.strip()
        if V6_SUBMISSION_ID.fullmatch(text):
            return text
        if canonical_uuid(text):
            raise _error(BusErrorCode.SUBMISSION_ID_V5, "submissionId is a v5 UUID; a v6 id is a 14-character nanoid")
        if len(text) != _V6_ID_LENGTH:
            raise _error(
                BusErrorCode.SUBMISSION_ID_NOT_NANOID,
                f"submissionId has {len(text)} characters; a v6 id has exactly {_V6_ID_LENGTH}",
            )
        raise _error(BusErrorCode.SUBMISSION_ID_NOT_NANOID, "submissionId has characters outside A-Za-z0-9_-")

    @field_validator("challenge_id", mode="before")
    @classmethod
    def _challenge_id(cls, value: Any) -> Any:
        canonical = canonical_uuid(value.strip()) if isinstance(value, str) else None
        if canonical is None:
            raise _error(BusErrorCode.CHALLENGE_ID_INVALID, "challengeId is not a UUID (v6 has no legacy ids)")
        return canonical

    @field_validator("member_id", mode="before")
    @classmethod
    def _member_id(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise _wrong_type("memberId must be a string of decimal digits")
        return _bounded_member_id(value)

    @field_validator("member_handle", mode="before")
    @classmethod
    def _member_handle(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise _wrong_type("memberHandle must be a string")
        text = value.strip()
        if not _MEMBER_HANDLE.fullmatch(text):
            raise _error(
                BusErrorCode.MEMBER_HANDLE_INVALID,
                "memberHandle is longer than 64 characters or has spaces, control or non-ASCII characters",
            )
        return text

    @field_validator("submission_url")
    @classmethod
    def _submission_url(cls, value: str) -> str:
        refusal = url_shape_refusal(value)  # the v5 policy, unchanged (decision 076)
        if refusal is not None:
            raise _error(BusErrorCode(refusal.value), _URL_MESSAGES[refusal])
        return value

    @field_validator("submitted_date", mode="before")
    @classmethod
    def _submitted_date(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _wrong_type("submittedDate must be an ISO 8601 string")
        if not _ISO_DATE_START.match(value.strip()):
            raise PydanticCustomError("datetime_from_date_parsing", "submittedDate is not an ISO 8601 date-time")
        return value

    # ------------------------------------------------------------ the v5 model's face
    @property
    def id(self) -> str:
        return self.submission_id

    @property
    def url(self) -> str:
        return self.submission_url

    @property
    def url_host(self) -> str:
        return url_host(self.submission_url)

    @property
    def challenge_uuid(self) -> str:
        return self.challenge_id

    @property
    def v5_challenge_id(self) -> None:
        return None

    @property
    def legacy_challenge_number(self) -> None:
        return None

    @property
    def legacy_challenge_id(self) -> None:
        return None


# What the router classifies a record into, whichever platform it came from.
InboundSubmission = SubmissionFields | V6SubmissionPayload


class BusEnvelope(_BusModel):
    topic: str = Field(min_length=1)
    originator: str = Field(min_length=1)
    timestamp: datetime
    mime_type: str = Field(alias="mime-type", min_length=1)
    payload: dict[str, Any]
    key: str | None = None


class SubmissionEnvelope(BusEnvelope):
    """A v5 envelope and its submission payload in one validation, from the JSON bytes (decision 113).

    Accepts exactly the records `BusEnvelope` and then `SubmissionPayload` both accept; the router uses it
    only to route a good record without a second pass, and names every refusal with the two-step path.
    """

    payload: SubmissionPayload  # type: ignore[assignment]  # the dict, validated as the payload it must be


class V6SubmissionEnvelope(BusEnvelope):
    """The v6 counterpart of `SubmissionEnvelope`: a `marathonmatch.submission.received` envelope in one pass."""

    payload: V6SubmissionPayload  # type: ignore[assignment]


__all__ = [
    "MAX_URL_LENGTH",
    "SUBMISSION_RESOURCE",
    "BusEnvelope",
    "BusErrorCode",
    "FlatSubmission",
    "InboundSubmission",
    "SubmissionEnvelope",
    "SubmissionFields",
    "SubmissionPayload",
    "V6SubmissionEnvelope",
    "V6SubmissionPayload",
    "canonical_uuid",
    "host_is_allowed",
]
