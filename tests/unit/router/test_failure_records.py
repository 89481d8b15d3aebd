"""Kafka on-failure records in the S3 bucket (decision 055): the model reads what AWS writes, replay rebuilds the
router's MSK event, and the local pipeline's emulation writes the same format."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from local_pipeline.kafka import KafkaFeeder, assign
from local_pipeline.scenario import InputRecord
from local_pipeline.workers import Invocation
from mm_adapters.kafka_failures import main, replay_events
from mm_contracts.models.kafka_failure import PAYLOAD_TOO_LARGE, FailureRecordError, KafkaFailureRecord

CLUSTER = "arn:aws:kafka:us-east-1:123456789012:cluster/tc-bus/6f1c5d2e-1234-4f4e-9c1d-0a1b2c3d4e5f-2"
TOPIC = "submission.notification.create"


def kafka_record(offset: int, partition: int = 0, value: str = "{}") -> dict[str, Any]:
    return {
        "topic": TOPIC,
        "partition": partition,
        "offset": offset,
        "timestamp": 1_749_116_692_330,
        "timestampType": "CREATE_TIME",
        "value": base64.b64encode(value.encode()).decode(),
        "headers": [],
    }


def msk_event(*offsets: int, partition: int = 0) -> dict[str, Any]:
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": CLUSTER,
        "bootstrapServers": "b-1.tc-bus.kafka.us-east-1.amazonaws.com:9098",
        "records": {f"{TOPIC}-{partition}": [kafka_record(o, partition) for o in offsets]},
    }


def s3_failure_object(event: dict[str, Any] | None, *, condition: str = "RetryAttemptsExhausted") -> str:
    """An object as https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html shows it for S3."""
    ((key, batch),) = (event or msk_event(5))["records"].items()
    body: dict[str, Any] = {
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:mm-example-router",
            "condition": condition,
            "approximateInvokeCount": 11,
        },
        "responseContext": None
        if condition == PAYLOAD_TOO_LARGE
        else {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-14T00:38:06.021Z",
        "KafkaBatchInfo": {
            "batchSize": len(batch),
            "eventSourceArn": CLUSTER,
            "bootstrapServers": "b-1.tc-bus.kafka.us-east-1.amazonaws.com:9098",
            "payloadSize": 2039,
            "recordsInfo": {
                key: {
                    "firstRecordOffset": str(batch[0]["offset"]),
                    "lastRecordOffset": str(batch[-1]["offset"]),
                    "firstRecordTimestamp": "2026-11-14T00:38:04.835Z",
                    "lastRecordTimestamp": "2026-11-14T00:38:05.580Z",
                }
            },
        },
    }
    if event is not None:
        body["payload"] = json.dumps(event)  # an escaped JSON string, as AWS writes it
    return json.dumps(body)


def test_a_stored_record_gives_back_the_event_the_router_was_invoked_with() -> None:
    event = msk_event(1000, 1001, 1002)
    record = KafkaFailureRecord.parse(s3_failure_object(event))
    assert record.request_context.condition == "RetryAttemptsExhausted"
    assert record.offsets() == [(f"{TOPIC}-0", 1000), (f"{TOPIC}-0", 1001), (f"{TOPIC}-0", 1002)]
    assert replay_events([record]) == [event]


def test_replay_orders_by_offset_and_sends_each_kafka_record_once() -> None:
    later = KafkaFailureRecord.parse(s3_failure_object(msk_event(1003, 1004)))
    earlier = KafkaFailureRecord.parse(s3_failure_object(msk_event(1000, 1001)))
    same_again = KafkaFailureRecord.parse(s3_failure_object(msk_event(1000, 1001)))  # e.g. an object stored twice
    other_partition = KafkaFailureRecord.parse(s3_failure_object(msk_event(7, partition=1)))
    events = replay_events([later, same_again, other_partition, earlier])
    offsets = [[r["offset"] for batch in e["records"].values() for r in batch] for e in events]
    assert offsets == [[1000, 1001], [1003, 1004], [7]]


def test_a_record_without_payload_is_refused_with_the_offsets_to_replay_from_kafka() -> None:
    record = KafkaFailureRecord.parse(s3_failure_object(None, condition=PAYLOAD_TOO_LARGE))
    with pytest.raises(FailureRecordError, match=rf"MaximumPayloadSizeExceeded.*{TOPIC}-0 offsets 5-5.*from Kafka"):
        replay_events([record])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not a Kafka on-failure record"),
        (json.dumps({"requestContext": {}}), "not a Kafka on-failure record"),
    ],
)
def test_an_object_that_is_not_a_failure_record_is_refused_by_name(text: str, problem: str) -> None:
    with pytest.raises(FailureRecordError, match=f"s3://b/k: {problem}"):
        KafkaFailureRecord.parse(text, source="s3://b/k")


def test_a_payload_that_is_not_an_msk_event_is_refused() -> None:
    body = json.loads(s3_failure_object(msk_event(1)))
    body["payload"] = json.dumps({"eventSource": "aws:sqs", "Records": []})
    with pytest.raises(FailureRecordError, match="not an MSK event"):
        KafkaFailureRecord.parse(json.dumps(body)).original_event()


def test_the_local_pipeline_writes_records_replay_can_read() -> None:
    """The emulated on-failure destination writes the AWS S3 format, so replay is tested against it too."""
    written: list[dict[str, Any]] = []
    feeder = KafkaFeeder(
        lambda event: Invocation(ok=False, error_type="RuntimeError", error_message="down"),
        written.append,
        batch_size=2,
        retry_attempts=1,
        bisect_on_error=False,
        event_source_arn=CLUSTER,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:mm-example-router",
        sleep=lambda _: None,
    )
    messages = assign([InputRecord(i, json.dumps({"n": i}).encode()) for i in range(3)], TOPIC)
    feeder.feed(messages)
    records = [KafkaFailureRecord.parse(json.dumps(body)) for body in written]
    events = replay_events(records)
    assert [feeder.event(messages[:2]), feeder.event(messages[2:])] == events


def test_the_replay_command_writes_one_invocation_payload_per_failure_record(tmp_path: Path) -> None:
    objects = tmp_path / "objects" / "aws" / "lambda"
    objects.mkdir(parents=True)
    (objects / "a").write_text(s3_failure_object(msk_event(1000, 1001)))
    (objects / "b").write_text(s3_failure_object(msk_event(1002)))
    assert main([str(tmp_path / "objects"), str(tmp_path / "events")]) == 0
    written = sorted((tmp_path / "events").iterdir())
    assert [p.name for p in written] == ["event-0001.json", "event-0002.json"]
    assert json.loads(written[0].read_text()) == msk_event(1000, 1001)


def test_the_replay_command_fails_on_a_record_it_cannot_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "a").write_text(s3_failure_object(None, condition=PAYLOAD_TOO_LARGE))
    assert main([str(tmp_path / "objects"), str(tmp_path / "events")]) == 1
    assert "from Kafka instead" in capsys.readouterr().err
    assert not (tmp_path / "events").exists()
