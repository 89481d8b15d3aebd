"""Stable reason codes for every record the router does not route (audit `reason`, metric `Reason`).

Codes are part of the operations contract: dashboards, alarms and replay tooling key on them. Add codes;
do not rename them.
"""

from __future__ import annotations

from enum import StrEnum

from mm_contracts.models.audit import AuditDisposition
from mm_contracts.models.bus import BusErrorCode
from mm_contracts.url_policy import UrlRefusal


class Reason(StrEnum):
    # skipped: normal traffic that is not a new submission for us
    KAFKA_TOPIC_NOT_ACCEPTED = "kafka_topic_not_accepted"
    TOPIC_NOT_ACCEPTED = "topic_not_accepted"  # the envelope's own `topic`
    RESOURCE_NOT_SUBMISSION = "resource_not_submission"  # review, reviewSummation, reviewType, ...
    DUPLICATE_IN_BATCH = "duplicate_in_batch"
    # A record of the other platform for this challenge (a migration publishes on both topics): it runs once,
    # from the challenge's own platform (decision 088).
    PLATFORM_MISMATCH = "platform_mismatch"
    # A v6 record for a challenge not in our table: the v6 topic carries every Marathon Match on the platform,
    # most of them scored by someone else (decision 088). v5 keeps `challenge_unknown`.
    CHALLENGE_NOT_SERVED = "challenge_not_served"
    # rejected: the bytes
    VALUE_MISSING = "value_missing"
    RECORD_TOO_LARGE = "record_too_large"
    VALUE_NOT_BASE64 = "value_not_base64"
    VALUE_NOT_UTF8 = "value_not_utf8"
    VALUE_NOT_JSON = "value_not_json"
    VALUE_NOT_OBJECT = "value_not_object"
    UNRECOGNIZED_SHAPE = "unrecognized_shape"
    # rejected: the fields
    MISSING_REQUIRED_FIELD = "missing_required_field"
    WRONG_FIELD_TYPE = "wrong_field_type"
    INVALID_FIELD_VALUE = "invalid_field_value"
    SUBMISSION_ID_NOT_UUID = BusErrorCode.SUBMISSION_ID_NOT_UUID.value
    SUBMISSION_ID_LEGACY_NUMERIC = BusErrorCode.SUBMISSION_ID_LEGACY_NUMERIC.value
    SUBMISSION_ID_V6 = BusErrorCode.SUBMISSION_ID_V6.value
    CHALLENGE_ID_INVALID = BusErrorCode.CHALLENGE_ID_INVALID.value
    MEMBER_ID_NOT_POSITIVE_INTEGER = BusErrorCode.MEMBER_ID_NOT_POSITIVE_INTEGER.value
    MEMBER_ID_OUT_OF_RANGE = BusErrorCode.MEMBER_ID_OUT_OF_RANGE.value
    URL_INVALID = BusErrorCode.URL_INVALID.value
    URL_NOT_HTTPS = BusErrorCode.URL_NOT_HTTPS.value
    URL_HAS_USERINFO = BusErrorCode.URL_HAS_USERINFO.value
    URL_PORT_NOT_ALLOWED = BusErrorCode.URL_PORT_NOT_ALLOWED.value
    URL_HOST_IP_LITERAL = BusErrorCode.URL_HOST_IP_LITERAL.value
    URL_HOST_RESERVED = BusErrorCode.URL_HOST_RESERVED.value
    URL_HOST_NOT_ALLOWED = UrlRefusal.URL_HOST_NOT_ALLOWED.value
    SUBMISSION_ID_NOT_NANOID = BusErrorCode.SUBMISSION_ID_NOT_NANOID.value
    SUBMISSION_ID_V5 = BusErrorCode.SUBMISSION_ID_V5.value
    MEMBER_HANDLE_INVALID = BusErrorCode.MEMBER_HANDLE_INVALID.value
    # rejected: the challenge
    LEGACY_CHALLENGE_UNRESOLVED = "legacy_challenge_unresolved"
    CHALLENGE_UNKNOWN = "challenge_unknown"
    CHALLENGE_INACTIVE = "challenge_inactive"
    CHALLENGE_RECORD_INVALID = "challenge_record_invalid"
    # rejected: SNS refused the entry as the sender's fault (retrying cannot help)
    PUBLISH_REJECTED = "publish_rejected"

    @property
    def disposition(self) -> AuditDisposition:
        return AuditDisposition.SKIPPED if self in _SKIPPED else AuditDisposition.REJECTED


_SKIPPED = frozenset(
    {
        Reason.KAFKA_TOPIC_NOT_ACCEPTED,
        Reason.TOPIC_NOT_ACCEPTED,
        Reason.RESOURCE_NOT_SUBMISSION,
        Reason.DUPLICATE_IN_BATCH,
        Reason.PLATFORM_MISMATCH,
        Reason.CHALLENGE_NOT_SERVED,
    }
)
