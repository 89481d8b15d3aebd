"""Per-record classification: MSK record -> a validated submission, or a skip/reject verdict.

The record's platform comes from its topic (decision 088): the envelope's `topic` when there is an envelope,
else the Kafka topic. `marathonmatch.submission.received` is v6 when PLATFORMS has v6; the ACCEPTED_TOPICS
are v5 when PLATFORMS has v5. Anything else is skipped as another topic's traffic.

Pure functions over untrusted bytes: nothing here raises for a bad value (a property test feeds it
arbitrary bytes), and no verdict detail quotes the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mm_contracts.models.bus import (
    SUBMISSION_RESOURCE,
    BusEnvelope,
    BusErrorCode,
    FlatSubmission,
    InboundSubmission,
    SubmissionEnvelope,
    SubmissionPayload,
    V6SubmissionEnvelope,
    V6SubmissionPayload,
)
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.settings import RouterSettings
from mm_contracts.url_policy import host_is_allowed
from router_lambda.reasons import Reason

_MAX_DETAIL = 600
_MAX_ERRORS_IN_DETAIL = 4
_SAFE_ID = re.compile(r"^[A-Za-z0-9_:-]{1,64}$")
_BUS_CODES = {code.value for code in BusErrorCode}
# Keys that mark an object as a bus envelope (see docs/decisions/011).
_ENVELOPE_MARKERS = frozenset({"topic", "payload", "originator", "mime-type"})


# ---------------------------------------------------------------- the MSK event (Lambda's shape, trusted)
class MskRecord(BaseModel):
    """One Kafka record as Lambda delivers it. `value` stays raw: it is checked by `decode_value`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp: int | None = None
    value: Any = None  # base64 text; absent/None for a tombstone
    key: Any = None  # optional base64; unused

    @property
    def source(self) -> dict[str, Any]:
        """The record's `KafkaCoordinates` as input for the message that carries them: validated inside that
        message's own validation (a nested model costs pydantic-core far less than a model built on its own)."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset, "timestamp": self.timestamp}

    @property
    def correlation_id(self) -> str:
        return f"{self.topic}-{self.partition}-{self.offset}"


class MskEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    records: dict[str, list[MskRecord]] = Field(default_factory=dict)

    def flattened(self) -> list[MskRecord]:
        """Every partition's records, partitions in event order, each partition in offset order."""
        return [record for group in self.records.values() for record in sorted(group, key=lambda r: r.offset)]


# ---------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Verdict:
    """A record the router will not route: skipped or rejected, with a stable reason."""

    reason: Reason
    detail: str
    submission_id: str | None = None
    challenge_id: str | None = None
    platform: Platform | None = None  # None: not known (the record never reached a platform's topic)

    def with_ids(self, obj: Mapping[str, Any] | None, *, id_field: str = "id") -> Verdict:
        if obj is None or (self.submission_id and self.challenge_id):
            return self
        return replace(
            self,
            submission_id=self.submission_id or _safe_id(obj.get(id_field)),
            challenge_id=self.challenge_id or _safe_id(obj.get("challengeId")),
        )

    def on(self, platform: Platform) -> Verdict:
        return self if self.platform is not None else replace(self, platform=platform)


def _safe_id(value: Any) -> str | None:
    """An id from untrusted input, only when it is short and plain (it goes into logs and the audit)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    return text if _SAFE_ID.match(text) else None


def _quote(value: Any, limit: int = 80) -> str:
    """A short, escaped rendering of an untrusted scalar for a detail string."""
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------- bytes -> JSON object
def max_base64_length(max_bytes: int) -> int:
    return 4 * ((max_bytes + 2) // 3)


def decode_value(record: MskRecord, max_record_bytes: int) -> dict[str, Any] | Verdict:
    text = decode_text(record, max_record_bytes)
    return text if isinstance(text, Verdict) else parse_object(text)


def decode_text(record: MskRecord, max_record_bytes: int) -> str | Verdict:
    """The value as text: base64, within the size limit, not empty, UTF-8 (its JSON not parsed yet)."""
    value = record.value
    if value is None:
        return Verdict(Reason.VALUE_MISSING, "record has no value (tombstone or empty)")
    if not isinstance(value, str):
        return Verdict(Reason.VALUE_NOT_BASE64, f"record value is a {type(value).__name__}, not base64 text")
    # Size first, from the encoded length, so an oversize value is never decoded.
    if len(value) > max_base64_length(max_record_bytes):
        return Verdict(Reason.RECORD_TOO_LARGE, f"record value exceeds MAX_RECORD_BYTES={max_record_bytes}")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return Verdict(Reason.VALUE_NOT_BASE64, "record value is not valid base64")
    if len(raw) > max_record_bytes:
        return Verdict(
            Reason.RECORD_TOO_LARGE, f"record value is {len(raw)} bytes, over MAX_RECORD_BYTES={max_record_bytes}"
        )
    if not raw or raw.isspace():  # `not raw.strip()` without copying the value
        return Verdict(Reason.VALUE_MISSING, "record value is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Verdict(Reason.VALUE_NOT_UTF8, f"record value is not UTF-8 (invalid byte at position {error.start})")


def parse_object(text: str) -> dict[str, Any] | Verdict:
    """A record's text (`decode_text`) -> the JSON object it holds."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, int digit limits, absurd nesting
        return Verdict(Reason.VALUE_NOT_JSON, "record value is not valid JSON")
    if not isinstance(parsed, dict):
        return Verdict(Reason.VALUE_NOT_OBJECT, f"record value is a JSON {_json_kind(parsed)}, not an object")
    return parsed


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# ---------------------------------------------------------------- JSON object -> submission
def verdict_from_validation_error(error: ValidationError, prefix: str = "") -> Verdict:
    """Map pydantic errors to a reason by error *type* and *location* (never by message text).

    The first error (field order) gives the reason; the detail names every offending field.
    """
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    parts = [f"{_field_name(err['loc'], prefix)}: {_describe(err)}" for err in errors[:_MAX_ERRORS_IN_DETAIL]]
    if len(errors) > _MAX_ERRORS_IN_DETAIL:
        parts.append(f"(+{len(errors) - _MAX_ERRORS_IN_DETAIL} more)")
    return Verdict(_reason_for(first["type"]), "; ".join(parts)[:_MAX_DETAIL])


def _reason_for(error_type: str) -> Reason:
    if error_type in _BUS_CODES:
        return Reason(error_type)
    if error_type == "missing":
        return Reason.MISSING_REQUIRED_FIELD
    if error_type.endswith("_type"):  # string_type, int_type, dict_type, bool_type, ...
        return Reason.WRONG_FIELD_TYPE
    return Reason.INVALID_FIELD_VALUE  # parsing, pattern, length, ...


def _field_name(loc: tuple[int | str, ...], prefix: str) -> str:
    name = ".".join(str(part) for part in loc) or "<root>"
    return f"{prefix}{name}"


def _describe(err: Any) -> str:
    if err["type"] == "missing":
        return "required field is missing"
    if str(err["type"]).endswith("_type"):
        return f"wrong type ({err['msg']})"
    return str(err["msg"])


# ---------------------------------------------------------------- topic -> platform
def v5_topics(settings: RouterSettings) -> tuple[str, ...]:
    """The topics read as v5: ACCEPTED_TOPICS when PLATFORMS has v5 (never the v6 topic)."""
    return _v5_topics(settings.accepted_topics, settings.platforms)


@lru_cache(maxsize=8)  # asked twice per record (Kafka topic, envelope topic); settings are frozen
def _v5_topics(accepted_topics: tuple[str, ...], platforms: tuple[Platform, ...]) -> tuple[str, ...]:
    if Platform.V5 not in platforms:
        return ()
    return tuple(topic for topic in accepted_topics if topic != V6_SUBMISSION_TOPIC)


def topic_platform(topic: str, settings: RouterSettings) -> Platform | None:
    """The platform a topic's records are read as; None: not a topic this environment reads."""
    if topic == V6_SUBMISSION_TOPIC:
        return Platform.V6 if Platform.V6 in settings.platforms else None
    return Platform.V5 if topic in v5_topics(settings) else None


def _topic_refusal(topic: str, settings: RouterSettings) -> str:
    """Why a topic is not read, in words an operator can act on."""
    if topic == V6_SUBMISSION_TOPIC:
        return "is the v6 submission topic and PLATFORMS does not include v6"
    if topic in settings.accepted_topics:
        return "is in ACCEPTED_TOPICS (v5) and PLATFORMS does not include v5"
    v6 = f" nor the v6 topic {V6_SUBMISSION_TOPIC}" if Platform.V6 in settings.platforms else ""
    return f"is not in ACCEPTED_TOPICS{v6}"


def _on(outcome: InboundSubmission | Verdict, platform: Platform) -> InboundSubmission | Verdict:
    """A verdict learns the platform its record was read as (a submission knows its own)."""
    return outcome.on(platform) if isinstance(outcome, Verdict) else outcome


def classify_object(
    obj: dict[str, Any], settings: RouterSettings, platform: Platform = Platform.V5
) -> InboundSubmission | Verdict:
    """A decoded JSON object -> the submission to route, or why not. `platform`: its Kafka topic's."""
    if not _ENVELOPE_MARKERS.isdisjoint(obj):  # one C-level pass over the keys, no generator per record
        return _envelope(obj, settings, platform)
    if platform is Platform.V6:
        return _on(_submission(V6SubmissionPayload, obj, settings, prefix=""), platform)
    if "resource" in obj:
        # A bare payload (an envelope's `payload` without the envelope): judge it like one.
        return _on(_payload(obj, settings, prefix=""), platform)
    if "id" in obj or "challengeId" in obj:
        return _on(_submission(FlatSubmission, obj, settings, prefix=""), platform)
    return Verdict(
        Reason.UNRECOGNIZED_SHAPE, "object is neither a bus envelope nor a flat submission", platform=platform
    )


def _payload_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    payload = obj.get("payload")
    return payload if isinstance(payload, dict) else None


def _envelope(obj: dict[str, Any], settings: RouterSettings, kafka_platform: Platform) -> InboundSubmission | Verdict:
    topic = obj.get("topic")
    platform = kafka_platform
    if isinstance(topic, str):
        # The envelope names its own topic: that decides the platform. Another topic's message is not ours to
        # judge: skip it before validating its shape.
        read_as = topic_platform(topic.strip(), settings)
        if read_as is None:
            return Verdict(
                Reason.TOPIC_NOT_ACCEPTED, f"envelope topic {_quote(topic)} {_topic_refusal(topic.strip(), settings)}"
            )
        platform = read_as
    id_field = "submissionId" if platform is Platform.V6 else "id"
    try:
        envelope = BusEnvelope.model_validate(obj)
    except ValidationError as error:
        return verdict_from_validation_error(error).with_ids(_payload_of(obj), id_field=id_field).on(platform)
    if platform is Platform.V6:
        return _on(_submission(V6SubmissionPayload, envelope.payload, settings, prefix="payload."), platform)
    return _on(_payload(envelope.payload, settings, prefix="payload."), platform)


def _payload(payload: dict[str, Any], settings: RouterSettings, *, prefix: str) -> InboundSubmission | Verdict:
    resource = payload.get("resource")
    if resource is None:
        return Verdict(Reason.MISSING_REQUIRED_FIELD, f"{prefix}resource: required field is missing").with_ids(payload)
    if resource != SUBMISSION_RESOURCE:
        # review / reviewSummation / reviewType: a scorer's own posts land here; routing them would loop.
        return Verdict(Reason.RESOURCE_NOT_SUBMISSION, f"{prefix}resource is {_quote(resource)}, not a submission")
    return _submission(SubmissionPayload, payload, settings, prefix=prefix)


def _submission(
    model: type[InboundSubmission], data: dict[str, Any], settings: RouterSettings, *, prefix: str
) -> InboundSubmission | Verdict:
    id_field = "submissionId" if model.platform is Platform.V6 else "id"
    try:
        submission = model.model_validate(data)
    except ValidationError as error:
        return verdict_from_validation_error(error, prefix).with_ids(data, id_field=id_field)
    return _host_allowed(submission, settings, prefix=prefix)


def _host_allowed(
    submission: InboundSubmission, settings: RouterSettings, *, prefix: str
) -> InboundSubmission | Verdict:
    """The submission, or its `url_host_not_allowed` verdict (the allow list is configuration, not the model's)."""
    host = submission.url_host
    if host_is_allowed(host, settings.allowed_url_hosts):
        return submission
    return Verdict(
        Reason.URL_HOST_NOT_ALLOWED,
        f"{prefix}{submission.url_field} host {_quote(host)} is not in ALLOWED_URL_HOSTS",
        submission.id,
        submission.challenge_id,
    )


def classify_record(record: MskRecord, settings: RouterSettings) -> InboundSubmission | Verdict:
    """The whole per-record path: Kafka topic, bytes, JSON, shape, fields. Never raises for bad input."""
    platform = topic_platform(record.topic, settings)
    if platform is None:
        return Verdict(
            Reason.KAFKA_TOPIC_NOT_ACCEPTED,
            f"Kafka topic {_quote(record.topic)} {_topic_refusal(record.topic, settings)}",
        )
    text = decode_text(record, settings.max_record_bytes)
    if isinstance(text, Verdict):
        return text.on(platform)
    outcome = classify_in_one_pass(text, settings, platform)
    if outcome is not None:
        return outcome
    decoded = parse_object(text)
    if isinstance(decoded, Verdict):
        return decoded.on(platform)
    return classify_object(decoded, settings, platform)


_ONE_PASS_ENVELOPES: dict[Platform, type[SubmissionEnvelope | V6SubmissionEnvelope]] = {
    Platform.V5: SubmissionEnvelope,
    Platform.V6: V6SubmissionEnvelope,
}


def classify_in_one_pass(text: str, settings: RouterSettings, platform: Platform) -> InboundSubmission | Verdict | None:
    """A well-formed envelope's outcome, validated in one pass from its JSON text; None: judge it the long way.

    The common case (an envelope of the Kafka topic's platform whose every field is good) is parsed and validated
    by pydantic-core at once, without `json.loads` building every ignored field and without validating the
    payload dict a second time; it is routable, or refused only for its URL host. It returns only what
    `parse_object` then `classify_object` return for the same text (the property test
    `test_one_pass_classification_matches_the_two_step_path` holds it): the same models and validators, and jiter
    refuses what `json.loads` may take (lone surrogates, over-long integers, deep nesting). Any refusal, or an
    envelope topic that is not exactly one of the Kafka topic's platform, falls back to the two-step path, which
    names the reason.
    """
    if platform is Platform.V5 and '"submission"' not in text:
        return None  # no `"resource": "submission"` as plainly written (a review event): not worth a failed pass
    try:
        # `model_validate_json`'s own core call, without its Python wrapper (one per record)
        envelope = _ONE_PASS_ENVELOPES[platform].__pydantic_validator__.validate_json(text)
    except ValidationError:
        return None
    topic = envelope.topic  # stripped by pydantic (Unicode White_Space): the two-step path strips with str.strip
    if topic != topic.strip() or topic_platform(topic, settings) is not platform:
        return None
    return _on(_host_allowed(envelope.payload, settings, prefix="payload."), platform)
