"""The local Kafka event source mapping: partial batch responses, bounded retries, the on-failure destination."""

from __future__ import annotations

import json
from typing import Any

from local_pipeline.kafka import KafkaFeeder, assign, on_failure_offsets
from local_pipeline.scenario import InputRecord
from local_pipeline.workers import Invocation

TOPIC = "submission.notification.create"


def records(n: int) -> list[InputRecord]:
    return [InputRecord(i, json.dumps({"n": i}).encode()) for i in range(n)]


class FakeRouter:
    """Fails the offsets in `failing` (partial batch response) or raises on `crash_batches`."""

    def __init__(self, failing: set[int] | None = None, *, always_fail: set[int] | None = None, crash: int = 0) -> None:
        self.calls: list[list[int]] = []
        self.failing = set(failing or ())
        self.always_fail = set(always_fail or ())
        self.crash = crash

    def __call__(self, event: dict[str, Any]) -> Invocation:
        ((key, batch),) = event["records"].items()
        offsets = [r["offset"] for r in batch]
        self.calls.append(offsets)
        if self.crash > 0:
            self.crash -= 1
            return Invocation(ok=False, error_type="RuntimeError", error_message="boom")
        failed = [o for o in offsets if o in self.failing or o in self.always_fail]
        self.failing -= set(failed)  # a transient failure: the retry succeeds
        return Invocation(
            ok=True,
            payload={"batchItemFailures": [{"itemIdentifier": {"partition": key, "offset": o}} for o in failed]},
        )


def feeder(router: FakeRouter, sent: list[dict[str, Any]], *, batch_size: int = 10, retries: int = 2) -> KafkaFeeder:
    return KafkaFeeder(
        router,
        sent.append,
        batch_size=batch_size,
        retry_attempts=retries,
        event_source_arn="arn:aws:kafka:us-east-1:123456789012:cluster/x/y",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:router",
        sleep=lambda _: None,
    )


def test_records_become_msk_events_with_base64_values_and_consecutive_offsets() -> None:
    router = FakeRouter()
    messages = assign(records(3), TOPIC)
    f = feeder(router, [])
    event = f.event(messages)
    assert event["eventSource"] == "aws:kafka"
    batch = event["records"][f"{TOPIC}-0"]
    assert [r["offset"] for r in batch] == [1000, 1001, 1002]
    assert "key" not in batch[0]
    assert batch[0]["timestampType"] == "CREATE_TIME"


def test_partial_failure_retries_from_the_lowest_failed_offset() -> None:
    router = FakeRouter(failing={1002, 1004})
    feeder(router, []).feed(assign(records(6), TOPIC))
    assert router.calls == [[1000, 1001, 1002, 1003, 1004, 1005], [1002, 1003, 1004, 1005]]


def test_exhausted_retries_send_the_rest_of_the_batch_to_the_on_failure_destination_and_move_on() -> None:
    router = FakeRouter(always_fail={1001})
    sent: list[dict[str, Any]] = []
    f = feeder(router, sent, batch_size=3, retries=2)
    stats = f.feed(assign(records(5), TOPIC))
    assert router.calls == [[1000, 1001, 1002], [1001, 1002], [1001, 1002], [1003, 1004]]
    (failure,) = sent
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert on_failure_offsets(json.dumps(failure)) == [(f"{TOPIC}-0", 1001), (f"{TOPIC}-0", 1002)]
    assert stats.sent_to_on_failure == {1: "RetryAttemptsExhausted", 2: "RetryAttemptsExhausted"}


def test_a_function_error_splits_the_batch_before_retrying() -> None:
    router = FakeRouter(crash=1)
    stats = feeder(router, []).feed(assign(records(4), TOPIC))
    assert router.calls == [[1000, 1001, 1002, 1003], [1000, 1001], [1002, 1003]]
    assert stats.bisections == 1


def test_an_unrecognised_item_identifier_fails_the_whole_batch() -> None:
    calls: list[int] = []

    def router(event: dict[str, Any]) -> Invocation:
        calls.append(1)
        if len(calls) == 1:
            return Invocation(ok=True, payload={"batchItemFailures": [{"itemIdentifier": "garbage"}]})
        return Invocation(ok=True, payload={"batchItemFailures": []})

    stats = feeder(router, []).feed(assign(records(2), TOPIC))  # type: ignore[arg-type]
    assert len(calls) == 2
    assert stats.retries == 1


def test_records_spread_over_partitions_keep_per_partition_order() -> None:
    messages = assign(records(4), TOPIC, partitions=2)
    assert [(m.partition, m.offset) for m in messages] == [(0, 1000), (1, 1000), (0, 1001), (1, 1001)]


def test_the_topic_of_a_record_decides_its_platform() -> None:
    # Given an environment serving v5 and v6 (a migration): both topics subscribed
    from local_pipeline.kafka import assign_to_topics, record_topic

    v5_topic, v6_topic = "submission.notification.create", "marathonmatch.submission.received"
    topics = (v5_topic, v6_topic)
    v6_envelope = json.dumps({"topic": v6_topic, "payload": {"submissionId": "3G9RNcDiRX4ioW"}}).encode()
    v6_bare = json.dumps({"submissionId": "3G9RNcDiRX4ioW", "challengeId": "x", "memberHandle": "h"}).encode()
    v5_envelope = json.dumps({"topic": v5_topic, "payload": {"resource": "submission", "id": "x"}}).encode()
    v5_flat = json.dumps({"id": "x", "challengeId": "y"}).encode()
    # Then an envelope goes on the topic it names, a bare v6 payload on v6's, anything else on the first topic
    assert record_topic(v6_envelope, topics) == v6_topic
    assert record_topic(v6_bare, topics) == v6_topic
    assert record_topic(v5_envelope, topics) == v5_topic
    assert record_topic(v5_flat, topics) == v5_topic
    assert record_topic(b"not json {", topics) == v5_topic
    # and a v5-only environment feeds everything on its one topic (its router skips what is not its platform's)
    assert record_topic(v6_bare, (v5_topic,)) == v5_topic
    # offsets are counted per topic
    messages = assign_to_topics(
        [InputRecord(i, value) for i, value in enumerate((v5_envelope, v6_bare, v6_envelope))], topics
    )
    assert [(m.position, m.offset) for m in messages[v6_topic]] == [(1, 1000), (2, 1001)]
    assert [(m.position, m.offset) for m in messages[v5_topic]] == [(0, 1000)]
