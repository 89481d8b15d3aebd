"""One-pass classification (decision 113): a good envelope is validated once from its JSON text, and every record
still gets exactly the outcome, reason and detail of the two-step path (`json.loads`, then the envelope, then the
payload), which stays the path that names a refusal."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mm_contracts.models.bus import InboundSubmission, SubmissionPayload, V6SubmissionPayload
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC
from mm_contracts.settings import RouterSettings
from router_lambda.reasons import Reason
from router_lambda.records import (
    MskRecord,
    Verdict,
    classify_in_one_pass,
    classify_object,
    classify_record,
    decode_text,
    decode_value,
    topic_platform,
)
from tests.builders import bus_envelope, review_envelope, submission_payload
from tests.fuzz.kafka_inputs import envelope_objects, record_values, v6_envelope, v6_objects, v6_payload
from tests.fuzz.strategies import ALLOWED_URL_HOSTS, HOSTILE_INTS, HOSTILE_URLS, V6_CHALLENGE, nanoids
from tests.unit.router.support import router_settings

SETTINGS = router_settings(allowed_url_hosts=ALLOWED_URL_HOSTS, platforms=(Platform.V5, Platform.V6))
V5_ONLY = router_settings(allowed_url_hosts=ALLOWED_URL_HOSTS)


def record(raw: bytes, topic: str) -> MskRecord:
    return MskRecord(topic=topic, partition=0, offset=7, timestamp=1, value=base64.b64encode(raw).decode())


def two_step(msk_record: MskRecord, router_settings: RouterSettings) -> InboundSubmission | Verdict:
    """The path every record took before the one pass (and every refused record still takes)."""
    platform = topic_platform(msk_record.topic, router_settings)
    if platform is None:
        return classify_record(msk_record, router_settings)  # refused on its Kafka topic, its value never read
    decoded = decode_value(msk_record, router_settings.max_record_bytes)
    if isinstance(decoded, Verdict):
        return decoded.on(platform)
    return classify_object(decoded, router_settings, platform)


def assert_same_outcome(raw: bytes, topic: str, router_settings: RouterSettings = SETTINGS) -> None:
    msk_record = record(raw, topic)
    new, old = classify_record(msk_record, router_settings), two_step(msk_record, router_settings)
    assert type(new) is type(old)
    assert new == old  # a verdict: reason, detail, ids, platform; a submission: every field (pydantic equality)


# ---------------------------------------------------------------- JSON-level edits the fuzz inputs do not make
def _spaced_topic(raw: bytes, draw: st.DrawFn) -> bytes:
    # str.strip and pydantic's strip disagree on \x1c-\x1f (whitespace to Python, not to Unicode)
    pad = draw(st.sampled_from(["\x1c", "\x1f", "\u3000", "\u00a0", "\u0085", " ", "\t", "\u200b"]))
    obj = json.loads(raw)
    if isinstance(obj, dict) and isinstance(obj.get("topic"), str):
        obj["topic"] = draw(st.sampled_from([pad + obj["topic"], obj["topic"] + pad]))
    return json.dumps(obj, allow_nan=True).encode()


def _edited(raw: bytes, how: str, draw: st.DrawFn) -> bytes:
    try:
        text = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw  # not text: nothing to edit
    if how == "duplicate_topic":  # json.loads keeps the last of a duplicate key; so must the one pass
        return text.replace("{", '{"topic": "other.topic", ', 1).encode("utf-8", "surrogatepass")
    if how == "duplicate_payload":
        return text.replace("{", '{"payload": {"resource": "submission"}, ', 1).encode("utf-8", "surrogatepass")
    if how == "unicode_as_is":  # non-ASCII written as itself, not as \u escapes
        try:
            return json.dumps(json.loads(raw), ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
        except (ValueError, RecursionError):  # not JSON, or nested past json.loads' depth
            return raw
    if how == "ignored_oddities":  # fields the models ignore: what json.loads takes and jiter may not
        extra = draw(st.sampled_from(['"\\ud800"', "NaN", "-Infinity", "1e999", "9" * 4301, "[" * 300 + "]" * 300]))
        return text.replace("{", '{"producerNote": ' + extra + ", ", 1).encode("utf-8", "surrogatepass")
    if how == "spaced_topic":
        try:
            return _spaced_topic(raw, draw)
        except (ValueError, RecursionError):  # not JSON, or nested past json.loads' depth
            return raw
    return raw


_EDITS = ("none", "none", "duplicate_topic", "duplicate_payload", "unicode_as_is", "ignored_oddities", "spaced_topic")


_ONE_CHANGE: dict[str, st.SearchStrategy[Any]] = {
    "url": st.sampled_from(HOSTILE_URLS),
    "submissionUrl": st.sampled_from(HOSTILE_URLS),
    "resource": st.sampled_from(["submission", " submission", "submission ", "Submission", "review"]),
    "memberId": st.sampled_from(HOSTILE_INTS) | st.sampled_from(["40158994", " 7 ", "1e3"]),
    "challengeId": st.sampled_from([V6_CHALLENGE, V6_CHALLENGE.upper(), f" {V6_CHALLENGE} ", "30054321"]),
}
_TOPICS = st.sampled_from([DEFAULT_SUBMISSION_TOPIC, V6_SUBMISSION_TOPIC, f" {V6_SUBMISSION_TOPIC}", "other.topic"])


@st.composite
def one_change(draw: st.DrawFn) -> tuple[bytes, str]:
    """A good envelope of either platform with one field changed (or its topic): every guard of the one pass."""
    if draw(st.booleans()):
        envelope, topic = bus_envelope(submission_payload()), DEFAULT_SUBMISSION_TOPIC
    else:
        envelope, topic = v6_envelope(v6_payload(draw(nanoids), V6_CHALLENGE)), V6_SUBMISSION_TOPIC
    if draw(st.booleans()):
        envelope["topic"] = draw(_TOPICS)
    else:
        name = draw(st.sampled_from(sorted(_ONE_CHANGE)))
        envelope["payload"][name] = draw(_ONE_CHANGE[name])
    return json.dumps(envelope, allow_nan=True).encode(), topic


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, str]:
    """A record's bytes and its Kafka topic: mostly good or one-field-broken envelopes of either platform."""
    kind = draw(st.sampled_from(["v5", "v5", "v6", "v6", "one change", "one change", "anything"]))
    if kind == "one change":
        raw, topic = draw(one_change())
    elif kind == "v5":
        raw, topic = json.dumps(draw(envelope_objects()), allow_nan=True).encode(), DEFAULT_SUBMISSION_TOPIC
    elif kind == "v6":
        obj, topic = draw(v6_objects())
        raw = json.dumps(obj, allow_nan=True).encode()
    else:
        raw, topic = draw(record_values), draw(st.sampled_from([DEFAULT_SUBMISSION_TOPIC, V6_SUBMISSION_TOPIC]))
        # Nesting near the interpreter's recursion limit: json.loads' answer depends on the caller's stack depth
        # (one frame more in `two_step`), as it always did; both paths refuse it, with one of two reasons.
        assume(b"[" * 500 not in raw and b'{"a":' * 500 not in raw)
    return _edited(raw, draw(st.sampled_from(_EDITS)), draw), topic


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records())
def test_one_pass_classification_matches_the_two_step_path(case: tuple[bytes, str]) -> None:
    # Given any record, good or bad, of either platform's topic (both read, or only v5)
    raw, topic = case
    # When it is classified, Then the outcome is the two-step path's: the same submission or the same verdict
    assert_same_outcome(raw, topic, SETTINGS)
    assert_same_outcome(raw, topic, V5_ONLY)


def _v5_text(**payload: Any) -> str:
    return json.dumps(bus_envelope(submission_payload(**payload)))


def _v6_text(**payload: Any) -> str:
    values = v6_payload("V1StGXR8_Z5jdH", V6_CHALLENGE) | payload
    return json.dumps(v6_envelope(values))


def test_good_envelopes_of_both_platforms_are_judged_in_one_pass() -> None:
    # Given a good v5 envelope and a good v6 one, each on its own topic, and a v5 one whose URL host is not allowed
    v5 = classify_in_one_pass(_v5_text(), SETTINGS, Platform.V5)
    v6 = classify_in_one_pass(_v6_text(), SETTINGS, Platform.V6)
    foreign = _v5_text(url="https://evil.example.com/solution.zip")
    refused = classify_in_one_pass(foreign, SETTINGS, Platform.V5)
    # Then each is judged in one pass: into the model the two-step path builds, or its host's verdict
    assert type(v5) is SubmissionPayload
    assert type(v6) is V6SubmissionPayload
    assert isinstance(refused, Verdict)
    assert refused.reason is Reason.URL_HOST_NOT_ALLOWED
    assert refused == two_step(record(foreign.encode(), DEFAULT_SUBMISSION_TOPIC), SETTINGS)


def test_a_record_the_one_pass_cannot_vouch_for_is_judged_the_long_way() -> None:
    # Given records whose JSON text the one pass must not judge: a resource the router skips (pydantic would strip
    # " submission"), a review event, an envelope topic of the other platform, a topic padded with what only
    # str.strip removes, a lone surrogate in an ignored field (json.loads takes it, jiter does not)
    envelope = bus_envelope(submission_payload())
    cases = {
        "resource": _v5_text(resource=" submission"),
        "review": json.dumps(review_envelope()),
        "topic": json.dumps(envelope | {"topic": V6_SUBMISSION_TOPIC}),
        "padded topic": json.dumps(envelope | {"topic": "\x1c" + DEFAULT_SUBMISSION_TOPIC}),
        "surrogate": _v5_text(producerNote="\ud800"),
    }
    for name, text in cases.items():
        # Then the one pass declines it, and classification gives the two-step path's outcome
        assert classify_in_one_pass(text, SETTINGS, Platform.V5) is None, name
        assert_same_outcome(text.encode("utf-8", "surrogatepass"), DEFAULT_SUBMISSION_TOPIC)
    skipped = classify_record(record(cases["resource"].encode(), DEFAULT_SUBMISSION_TOPIC), SETTINGS)
    assert isinstance(skipped, Verdict)
    assert skipped.reason is Reason.RESOURCE_NOT_SUBMISSION
    surrogate = record(cases["surrogate"].encode("utf-8", "surrogatepass"), DEFAULT_SUBMISSION_TOPIC)
    assert isinstance(classify_record(surrogate, SETTINGS), SubmissionPayload)


@given(nanoids)
def test_the_one_pass_text_is_the_decoded_record_value(submission_id: str) -> None:
    # Given a v6 record as Lambda delivers it
    raw = _v6_text(submissionId=submission_id).encode()
    text = decode_text(record(raw, V6_SUBMISSION_TOPIC), SETTINGS.max_record_bytes)
    # Then the text the one pass reads is the value's UTF-8 text, exactly
    assert text == raw.decode()
