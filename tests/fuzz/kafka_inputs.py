"""The router's fuzz inputs: MSK events of hostile Kafka records, v5 (bus envelope or flat) and v6 (envelope or
bare payload), with Lambda's event shape mutated where it could differ."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from mm_contracts.models.phase import V6_SUBMISSION_TOPIC
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC
from tests.builders import KafkaRecord, bus_envelope, msk_event, submission_payload
from tests.fuzz.strategies import (
    FOREIGN_CHALLENGE,
    HOSTILE_INTS,
    HOSTILE_URLS,
    INACTIVE_CHALLENGE,
    KNOWN_CHALLENGE,
    KNOWN_LEGACY_ID,
    V6_CHALLENGE,
    V6_INACTIVE_CHALLENGE,
    V6_ORIGINATOR,
    V6_SUBMITTED,
    V6_TIMESTAMP,
    VALID_URL,
    hostile_values,
    id_variants,
    mutate_object,
    nanoid_variants,
    nanoids,
    uuids,
)


# ---------------------------------------------------------------- router: Kafka record values
def _valid_payload(submission_id: str, challenge: Any) -> dict[str, Any]:
    return submission_payload(submission_id=submission_id, challenge_id=None, challengeId=challenge)


challenge_refs = st.sampled_from([KNOWN_CHALLENGE, str(KNOWN_LEGACY_ID), KNOWN_LEGACY_ID, INACTIVE_CHALLENGE])


def _payload_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "id": id_variants(submission_id),
        "challengeId": st.one_of(
            challenge_refs,
            st.sampled_from([FOREIGN_CHALLENGE, KNOWN_CHALLENGE.upper(), f" {KNOWN_CHALLENGE} "]),
            id_variants(KNOWN_CHALLENGE),
        ),
        "url": st.one_of(st.sampled_from(HOSTILE_URLS), st.sampled_from(HOSTILE_URLS), hostile_values),
        "memberId": st.sampled_from(HOSTILE_INTS)
        | st.sampled_from(["40158994", " 1 ", "1e3", "0x10"])
        | hostile_values,
        "resource": st.sampled_from(["submission", "review", "Submission", " submission", ""]) | hostile_values,
        "created": st.sampled_from(["2026-13-45T00:00:00Z", "yesterday", "2026-12-01T10:00:00Z"]) | hostile_values,
        "submissionPhaseId": st.sampled_from(HOSTILE_INTS) | hostile_values,
        "legacyChallengeId": st.sampled_from([KNOWN_LEGACY_ID, str(KNOWN_LEGACY_ID), -5]) | hostile_values,
        "v5ChallengeId": st.sampled_from([KNOWN_CHALLENGE, FOREIGN_CHALLENGE]) | hostile_values,
    }


_ENVELOPE_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "topic": st.sampled_from(
        [DEFAULT_SUBMISSION_TOPIC, " " + DEFAULT_SUBMISSION_TOPIC, "submission.notification.update"]
    )
    | hostile_values,
    "timestamp": st.sampled_from(["not a time", "2026-12-01T10:00:00Z", 0]) | hostile_values,
    "mime-type": st.sampled_from(["application/json", ""]) | hostile_values,
    "originator": hostile_values,
    "payload": hostile_values,
}


@st.composite
def envelope_objects(draw: st.DrawFn) -> dict[str, Any]:
    submission_id = draw(uuids)
    valid = _valid_payload(submission_id, draw(challenge_refs))
    payload = draw(mutate_object(valid, _payload_overrides(submission_id)))
    envelope = bus_envelope(payload)
    if draw(st.integers(0, 3)):  # mostly the payload alone is hostile: it has the rules the next stage trusts
        return envelope
    return draw(mutate_object(envelope, _ENVELOPE_OVERRIDES))


@st.composite
def flat_objects(draw: st.DrawFn) -> dict[str, Any]:
    submission_id = draw(uuids)
    payload = _valid_payload(submission_id, draw(challenge_refs))
    flat = {k: payload[k] for k in ("id", "challengeId", "url", "memberId", "created")}
    return draw(mutate_object(flat, _payload_overrides(submission_id)))


def _dump(obj: Any) -> bytes:
    # ensure_ascii (the default) writes lone surrogates as \udXXX escapes, as a real producer could.
    return json.dumps(obj, allow_nan=True).encode()


def _deeply_nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode() if depth % 2 else ('{"a":' * depth + "1" + "}" * depth).encode()


@st.composite
def _truncated(draw: st.DrawFn) -> bytes:
    raw = _dump(draw(envelope_objects()))
    return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]


_mutated_real_values = st.one_of(
    envelope_objects().map(_dump), envelope_objects().map(_dump), flat_objects().map(_dump)
)

record_values: st.SearchStrategy[bytes] = st.one_of(
    # mutated real shapes most of the time: they reach the field rules, the challenge lookup and the publish
    *[envelope_objects().map(_dump)] * 6,
    *[flat_objects().map(_dump)] * 2,
    st.binary(max_size=200),
    st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
    hostile_values.map(_dump),
    _truncated(),
    st.integers(1, 20_000).map(_deeply_nested),
    st.integers(60_000, 90_000).map(lambda n: _dump({"pad": "x" * n, **bus_envelope(submission_payload())})),
    st.sampled_from([b"", b"   ", b"null", b"[]", b"{}", b'{"id":', b"\xff\xfe\x00", b"9" * 5000]),
)


# ---------------------------------------------------------------- router: MSK event shapes
_VALUE_MUTATIONS = ("none",) * 12 + ("missing", "null", "not_base64", "unpadded", "not_text", "urlsafe")


def _mutate_value(value_b64: str, how: str, draw: st.DrawFn) -> Any:
    if how == "null":
        return None
    if how == "not_base64":
        return value_b64[:-1] + draw(st.sampled_from(["!", "*", " ", "\u00e9", "\ud800"]))
    if how == "unpadded":
        return value_b64.rstrip("=")[:-1] if value_b64 else "A"
    if how == "not_text":
        return draw(hostile_values.filter(lambda v: not isinstance(v, str)))
    if how == "urlsafe":
        return value_b64.replace("+", "-").replace("/", "_") + "-_"
    return value_b64


@st.composite
def msk_events(draw: st.DrawFn) -> dict[str, Any]:
    """An MSK event of 1..6 records with hostile values, and its shape mutated where Lambda could differ."""
    count = draw(st.integers(1, 6))
    records = [
        KafkaRecord(
            draw(record_values if draw(st.integers(0, 9)) >= 6 else _mutated_real_values),
            partition=draw(st.integers(0, 2)),
            topic=draw(st.sampled_from([DEFAULT_SUBMISSION_TOPIC] * 9 + ["other.topic"])),
        )
        for _ in range(count)
    ]
    event = msk_event(records)
    _mutate_msk_shape(event, draw, value_mutations=_VALUE_MUTATIONS)
    return event


def _mutate_msk_shape(event: dict[str, Any], draw: st.DrawFn, *, value_mutations: tuple[str, ...]) -> None:
    """Lambda's MSK event shape mutated in place: a twin record, values, keys, headers, the records-map keys."""
    # The same submission twice in one batch (duplicates must end as one published + one skipped).
    grouped = event["records"]
    if draw(st.booleans()):
        groups = sorted(grouped)
        group = grouped[draw(st.sampled_from(groups))]
        twin = dict(draw(st.sampled_from(group)))
        twin["offset"] = max(r["offset"] for r in group) + 1
        group.append(twin)
    for group in list(grouped.values()):
        for item in group:
            _mutate_record(item, draw, value_mutations)
    _mutate_records_map_keys(event, draw)


def _mutate_record(item: dict[str, Any], draw: st.DrawFn, value_mutations: tuple[str, ...]) -> None:
    """One record's value, key and headers (drawn in that order)."""
    how = draw(st.sampled_from(value_mutations))
    if how == "missing":
        item.pop("value", None)
    else:
        item["value"] = _mutate_value(item["value"], how, draw)
    key_how = draw(st.sampled_from(["absent", "absent", "valid", "not_base64", "null", "hostile"]))
    if key_how == "valid":
        item["key"] = base64.b64encode(b"submission-key").decode()
    elif key_how == "not_base64":
        item["key"] = "%%%not base64"
    elif key_how == "null":
        item["key"] = None
    elif key_how == "hostile":
        item["key"] = draw(hostile_values)
    headers_how = draw(st.sampled_from(["as_is", "as_is", "bytes", "hostile", "missing"]))
    if headers_how == "bytes":
        item["headers"] = [{draw(st.text(max_size=6)): draw(st.lists(st.integers(-300, 300), max_size=5))}]
    elif headers_how == "hostile":
        item["headers"] = draw(hostile_values)
    elif headers_how == "missing":
        item.pop("headers", None)


def _mutate_records_map_keys(event: dict[str, Any], draw: st.DrawFn) -> None:
    grouped = event["records"]
    # The records map key is Lambda's "<topic>-<partition>"; a record must be judged by its own fields.
    if draw(st.booleans()):
        event["records"] = {
            draw(st.sampled_from(["", "x", "other.topic-9", "submission.notification.create-7"])) + f"#{i}": group
            for i, group in enumerate(grouped.values())
        }


# ---------------------------------------------------------------- v6 records
def v6_payload(submission_id: str, challenge_id: str) -> dict[str, Any]:
    """The payload review-api-v6 `publishMarathonMatchEvent` sends: every field a string."""
    return {
        "submissionId": submission_id,
        "challengeId": challenge_id,
        "submissionUrl": VALID_URL,
        "memberHandle": "tourist",
        "memberId": "88770025",
        "submittedDate": V6_SUBMITTED,
    }


def v6_envelope(payload: dict[str, Any], *, topic: str = V6_SUBMISSION_TOPIC) -> dict[str, Any]:
    return {
        "topic": topic,
        "originator": V6_ORIGINATOR,
        "timestamp": V6_TIMESTAMP,
        "mime-type": "application/json",
        "payload": payload,
    }


v6_challenge_refs = st.sampled_from([V6_CHALLENGE] * 3 + [V6_INACTIVE_CHALLENGE])


def _v6_payload_overrides(submission_id: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "submissionId": nanoid_variants(submission_id),
        "challengeId": st.one_of(
            st.sampled_from(
                [
                    V6_CHALLENGE,
                    V6_INACTIVE_CHALLENGE,
                    KNOWN_CHALLENGE,  # a v5 challenge: platform mismatch
                    INACTIVE_CHALLENGE,
                    FOREIGN_CHALLENGE,  # not served
                    V6_CHALLENGE.upper(),
                    f" {V6_CHALLENGE} ",
                    str(KNOWN_LEGACY_ID),  # v6 has no legacy ids
                ]
            ),
            st.just(KNOWN_LEGACY_ID),
            id_variants(V6_CHALLENGE),
        ),
        "submissionUrl": st.one_of(st.sampled_from(HOSTILE_URLS), st.sampled_from(HOSTILE_URLS), hostile_values),
        "memberId": st.sampled_from(["88770025", " 1 ", "0", "-5", "1e3", "0x10", "9" * 19, "9" * 40, "1.0", ""])
        | st.sampled_from(HOSTILE_INTS)  # a JSON number: v6 sends strings
        | hostile_values,
        "memberHandle": st.sampled_from(
            ["tourist", "", " tourist ", "a b", "x" * 64, "x" * 65, "\u00e9l\u00e8ve", "t\x00", "\ud800", None]
        )
        | hostile_values,
        "submittedDate": st.sampled_from([V6_SUBMITTED, "yesterday", "2026-13-45T00:00:00Z", "1764579600", ""])
        | hostile_values,
        "url": st.sampled_from(HOSTILE_URLS),  # the v5 name: ignored by the v6 model
        "id": id_variants(submission_id),  # the v5 name: ignored by the v6 model
    }


_V6_ENVELOPE_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "topic": st.sampled_from(
        [
            V6_SUBMISSION_TOPIC,
            DEFAULT_SUBMISSION_TOPIC,  # a v6 payload claiming the v5 topic
            " " + V6_SUBMISSION_TOPIC,
            V6_SUBMISSION_TOPIC.upper(),
            "marathonmatch.submission.created",
            "",
        ]
    )
    | hostile_values,
    "originator": st.sampled_from([V6_ORIGINATOR, "", "submission-api"]) | hostile_values,
    "timestamp": st.sampled_from(["not a time", V6_TIMESTAMP, 0]) | hostile_values,
    "mime-type": st.sampled_from(["application/json", ""]) | hostile_values,
    "payload": hostile_values,
}


@st.composite
def v6_objects(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A (mutated) v6 envelope or bare payload, and the Kafka topic it travels on."""
    submission_id = draw(nanoids)
    valid = v6_payload(submission_id, draw(v6_challenge_refs))
    if draw(st.integers(0, 2)) == 0:
        del valid["memberHandle"]  # optional to us
    payload = draw(mutate_object(valid, _v6_payload_overrides(submission_id))) if draw(st.integers(0, 4)) else valid
    kafka_topic = draw(st.sampled_from([V6_SUBMISSION_TOPIC] * 8 + [DEFAULT_SUBMISSION_TOPIC, "other.topic"]))
    if draw(st.booleans()):  # the bare payload (what review-api-v6 actually produces on its own topic)
        return payload, kafka_topic
    envelope = v6_envelope(payload)
    if draw(st.integers(0, 3)):
        return envelope, kafka_topic
    return draw(mutate_object(envelope, _V6_ENVELOPE_OVERRIDES)), kafka_topic


@st.composite
def v6_kafka_records(draw: st.DrawFn) -> KafkaRecord:
    obj, topic = draw(v6_objects())
    if draw(st.integers(0, 9)) == 0:
        raw = _dump(obj)
        return KafkaRecord(
            raw[: draw(st.integers(0, max(0, len(raw) - 1)))], partition=draw(st.integers(0, 2)), topic=topic
        )
    return KafkaRecord(_dump(obj), partition=draw(st.integers(0, 2)), topic=topic)


@st.composite
def v6_msk_events(draw: st.DrawFn) -> dict[str, Any]:
    """An MSK event of 1..6 records, mostly v6 (some v5 ones mixed in), with the MSK-shape mutations of
    `msk_events` applied by `_mutate_msk_shape`."""
    count = draw(st.integers(1, 6))
    records: list[KafkaRecord] = []
    for _ in range(count):
        if draw(st.integers(0, 4)):
            records.append(draw(v6_kafka_records()))
        else:
            records.append(
                KafkaRecord(
                    draw(_mutated_real_values), partition=draw(st.integers(0, 2)), topic=DEFAULT_SUBMISSION_TOPIC
                )
            )
    event = msk_event(records)
    _mutate_msk_shape(event, draw, value_mutations=_V6_VALUE_MUTATIONS)
    return event


_V6_VALUE_MUTATIONS = ("none",) * 24 + ("missing", "null", "not_base64", "unpadded", "not_text", "urlsafe")
