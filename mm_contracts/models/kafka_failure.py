"""Kafka on-failure records as Lambda writes them to the router's S3 bucket (decision 055): the data only.

When the router's event source mapping gives up on a batch (retries exhausted or records too old), Lambda
writes one JSON object to the on-failure bucket: the failure metadata (`requestContext`, `responseContext`,
`KafkaBatchInfo`) and, for S3 destinations only, `payload`: the whole original MSK event as an escaped JSON
string (https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html). SQS and SNS destinations get
the metadata only, which is why the bucket is the destination.

The replay that turns stored records back into router events (and its command line) is an adapter:
`mm_adapters.kafka_failures`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

KAFKA_EVENT_SOURCE = "aws:kafka"
FAILURE_RECORD_VERSION = "1.0"
# Where Lambda sends a batch it gave up on (the `requestContext.condition` values AWS documents).
RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
PAYLOAD_TOO_LARGE = "MaximumPayloadSizeExceeded"


class FailureRecordError(ValueError):
    """A stored object is not a replayable Kafka failure record; the message says which and why."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class FailureRequestContext(_Record):
    request_id: str = Field(alias="requestId")
    function_arn: str = Field(alias="functionArn")
    condition: str
    approximate_invoke_count: int = Field(alias="approximateInvokeCount", ge=0)


class FailureResponseContext(_Record):
    status_code: int | None = Field(default=None, alias="statusCode")
    executed_version: str | None = Field(default=None, alias="executedVersion")
    function_error: str | None = Field(default=None, alias="functionError")


class PartitionSpan(_Record):
    """The records of one `<topic>-<partition>` in the failed batch (offsets as strings, as AWS writes them)."""

    first_record_offset: str = Field(alias="firstRecordOffset")
    last_record_offset: str = Field(alias="lastRecordOffset")
    first_record_timestamp: str | None = Field(default=None, alias="firstRecordTimestamp")
    last_record_timestamp: str | None = Field(default=None, alias="lastRecordTimestamp")


class KafkaBatchInfo(_Record):
    batch_size: int = Field(alias="batchSize", ge=0)
    event_source_arn: str = Field(alias="eventSourceArn")
    bootstrap_servers: str | None = Field(default=None, alias="bootstrapServers")
    payload_size: int | None = Field(default=None, alias="payloadSize")
    records_info: dict[str, PartitionSpan] = Field(default_factory=dict, alias="recordsInfo")


class KafkaFailureRecord(_Record):
    """One object in the on-failure bucket."""

    request_context: FailureRequestContext = Field(alias="requestContext")
    response_context: FailureResponseContext | None = Field(default=None, alias="responseContext")
    version: str = FAILURE_RECORD_VERSION
    timestamp: str
    kafka_batch_info: KafkaBatchInfo = Field(alias="KafkaBatchInfo")
    # The whole MSK event, as an escaped JSON string (S3 destinations only).
    payload: str | dict[str, Any] | None = None

    @classmethod
    def parse(cls, text: str | bytes, *, source: str = "<record>") -> KafkaFailureRecord:
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "record" for e in error.errors()[:5])
            raise FailureRecordError(f"{source}: not a Kafka on-failure record ({fields})") from None

    def spans(self) -> list[tuple[str, int, int]]:
        """(topic-partition, first offset, last offset) of each partition in the failed batch."""
        return [
            (key, int(span.first_record_offset), int(span.last_record_offset))
            for key, span in self.kafka_batch_info.records_info.items()
        ]

    def offsets(self) -> list[tuple[str, int]]:
        """Every (topic-partition, offset) the record covers."""
        return [(key, offset) for key, first, last in self.spans() for offset in range(first, last + 1)]

    def original_event(self, *, source: str = "<record>") -> dict[str, Any]:
        """The MSK event Lambda could not process, exactly as the router was invoked with it."""
        if self.payload is None:
            spans = ", ".join(f"{key} offsets {first}-{last}" for key, first, last in self.spans())
            raise FailureRecordError(
                f"{source}: no payload ({self.request_context.condition}); replay {spans or 'these offsets'} "
                "from Kafka instead"
            )
        try:
            event = json.loads(self.payload) if isinstance(self.payload, str) else self.payload
        except ValueError:
            raise FailureRecordError(f"{source}: payload is not JSON") from None
        records = event.get("records") if isinstance(event, dict) else None
        if event.get("eventSource") != KAFKA_EVENT_SOURCE or not isinstance(records, dict):
            raise FailureRecordError(f"{source}: payload is not an MSK event (eventSource {KAFKA_EVENT_SOURCE})")
        for key, batch in records.items():
            if not isinstance(batch, list) or not all(_is_kafka_record(r) for r in batch):
                raise FailureRecordError(f"{source}: payload records of {key!r} are not Kafka records")
        return event


def _is_kafka_record(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and isinstance(record.get("topic"), str)
        and isinstance(record.get("partition"), int)
        and isinstance(record.get("offset"), int)
    )


__all__ = [
    "FAILURE_RECORD_VERSION",
    "KAFKA_EVENT_SOURCE",
    "PAYLOAD_TOO_LARGE",
    "RETRIES_EXHAUSTED",
    "FailureRecordError",
    "FailureRequestContext",
    "FailureResponseContext",
    "KafkaBatchInfo",
    "KafkaFailureRecord",
    "PartitionSpan",
]
