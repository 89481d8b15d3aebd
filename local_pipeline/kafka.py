"""Feeds Kafka records to the router as the MSK event source mapping (provisioned mode) does.

- Records get a partition (round-robin over `partitions`) and consecutive offsets per partition.
- Each invocation carries up to `batch_size` records of one partition, base64 values, no key, as an
  MSK event (`records` keyed "<topic>-<partition>").
- A partial batch response (`batchItemFailures` with `{partition: "<topic>-<p>", offset}`) commits
  everything below the lowest failed offset and retries from there; a function error fails the whole
  batch, which is split in two (BisectBatchOnFunctionError) before it is retried.
- After `retry_attempts` retries the remaining records go to the on-failure destination as AWS writes them
  to an S3 destination (metadata plus the whole event as `payload`, decision 055) and the partition moves
  on: one bad batch never blocks it.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_pipeline.scenario import InputRecord
from local_pipeline.workers import Invocation
from mm_contracts.models.kafka_failure import RETRIES_EXHAUSTED, FailureRecordError, KafkaFailureRecord
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC

FIRST_OFFSET = 1000
LOCAL_BOOTSTRAP_SERVERS = "b-1.local.kafka.us-east-1.amazonaws.com:9098"


@dataclass(frozen=True)
class KafkaMessage:
    position: int
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes

    @property
    def correlation_id(self) -> str:
        return f"{self.topic}-{self.partition}-{self.offset}"

    def msk_record(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp_ms,
            "timestampType": "CREATE_TIME",
            "value": base64.b64encode(self.value).decode(),
            "headers": [],
        }


@dataclass
class FeedStats:
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    retries: int = 0
    bisections: int = 0
    on_failure_batches: int = 0
    first_invoked_at: dict[int, float] = field(default_factory=dict)  # position -> epoch
    sent_to_on_failure: dict[int, str] = field(default_factory=dict)  # position -> condition


def assign(records: list[InputRecord], topic: str, partitions: int = 1) -> list[KafkaMessage]:
    now_ms = int(time.time() * 1000)
    next_offset = dict.fromkeys(range(partitions), FIRST_OFFSET)
    messages = []
    for index, record in enumerate(records):
        partition = index % partitions
        messages.append(KafkaMessage(record.position, topic, partition, next_offset[partition], now_ms, record.value))
        next_offset[partition] += 1
    return messages


def record_topic(value: bytes, topics: tuple[str, ...]) -> str:
    """The topic a record is fed on: the one its envelope names, a bare v6 payload's (`submissionId` without
    v5's `resource`/`id`), else the first of `topics` (the environment's first platform). The topic decides
    the platform (decision 090), as on the bus: a producer publishes each platform's records on its own topic."""
    try:
        obj = json.loads(value)
    except ValueError:
        return topics[0]
    if isinstance(obj, dict):
        named = obj.get("topic")
        if isinstance(named, str) and named in topics:
            return named
        is_bare_v6 = "payload" not in obj and "submissionId" in obj and "resource" not in obj and "id" not in obj
        if is_bare_v6 and V6_SUBMISSION_TOPIC in topics:
            return V6_SUBMISSION_TOPIC
    return topics[0]


def assign_to_topics(
    records: list[InputRecord], topics: tuple[str, ...], partitions: int = 1
) -> dict[str, list[KafkaMessage]]:
    """`assign` per topic: each record on `record_topic`, offsets counted per topic and partition."""
    grouped: dict[str, list[InputRecord]] = {topic: [] for topic in topics}
    for record in records:
        grouped[record_topic(record.value, topics)].append(record)
    return {topic: assign(group, topic, partitions) for topic, group in grouped.items() if group}


def _failed_offsets(payload: Any, batch: list[KafkaMessage]) -> set[int] | None:
    """Failed offsets of this batch; None when the response is not a usable partial batch response."""
    if payload is None:
        return set()
    if not isinstance(payload, dict):
        return None
    items = payload.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    key = f"{batch[0].topic}-{batch[0].partition}"
    offsets = {m.offset for m in batch}
    failed: set[int] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if isinstance(identifier, dict):
            partition, offset = identifier.get("partition"), identifier.get("offset")
        elif isinstance(identifier, str) and "-" in identifier:  # "<topic>-<partition>-<offset>"
            head, _, offset_text = identifier.rpartition("-")
            partition, offset = head, int(offset_text) if offset_text.isdigit() else None
        else:
            return None
        if partition != key or not isinstance(offset, int) or offset not in offsets:
            return None  # Lambda treats an unrecognised identifier as a failure of the whole batch
        failed.add(offset)
    return failed


class KafkaFeeder:
    def __init__(
        self,
        invoke: Callable[[dict[str, Any]], Invocation],
        on_failure: Callable[[dict[str, Any]], None],
        *,
        batch_size: int,
        retry_attempts: int,
        bisect_on_error: bool = True,
        event_source_arn: str,
        function_arn: str,
        retry_backoff_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._invoke = invoke
        self._on_failure = on_failure
        self.batch_size = batch_size
        self.retry_attempts = retry_attempts
        self.bisect_on_error = bisect_on_error
        self.event_source_arn = event_source_arn
        self.function_arn = function_arn
        self._backoff = retry_backoff_seconds
        self._sleep = sleep
        self.stats = FeedStats()

    def event(self, batch: list[KafkaMessage]) -> dict[str, Any]:
        return {
            "eventSource": "aws:kafka",
            "eventSourceArn": self.event_source_arn,
            "bootstrapServers": LOCAL_BOOTSTRAP_SERVERS,
            "records": {f"{batch[0].topic}-{batch[0].partition}": [m.msk_record() for m in batch]},
        }

    def feed(self, messages: list[KafkaMessage], *, should_stop: Callable[[], bool] = lambda: False) -> FeedStats:
        by_partition: dict[int, list[KafkaMessage]] = {}
        for message in messages:
            by_partition.setdefault(message.partition, []).append(message)
        cursors = dict.fromkeys(by_partition, 0)
        while any(cursors[p] < len(by_partition[p]) for p in by_partition) and not should_stop():
            for partition, queue in by_partition.items():
                start = cursors[partition]
                if start >= len(queue):
                    continue
                batch = queue[start : start + self.batch_size]
                self._deliver(batch)
                cursors[partition] = start + len(batch)
        return self.stats

    def _deliver(self, batch: list[KafkaMessage]) -> None:
        attempt = 0
        while batch:
            now = time.time()
            for message in batch:
                self.stats.first_invoked_at.setdefault(message.position, now)
            self.stats.invocations += 1
            result = self._invoke(self.event(batch))
            failed: set[int] | None
            if result.ok:
                failed = _failed_offsets(result.payload, batch)
                if failed == set():
                    return
                if failed:
                    self.stats.partial_failures += 1
                    lowest = min(failed)
                    batch = [m for m in batch if m.offset >= lowest]  # below it: committed
            else:
                self.stats.function_errors += 1
                failed = None
                if self.bisect_on_error and len(batch) > 1:
                    self.stats.bisections += 1
                    middle = len(batch) // 2
                    self._deliver(batch[:middle])
                    self._deliver(batch[middle:])
                    return
            attempt += 1
            if attempt > self.retry_attempts:
                self._give_up(batch, attempt, result)
                return
            self.stats.retries += 1
            self._sleep(self._backoff * attempt)

    def _give_up(self, batch: list[KafkaMessage], attempts: int, result: Invocation) -> None:
        self.stats.on_failure_batches += 1
        for message in batch:
            self.stats.sent_to_on_failure[message.position] = RETRIES_EXHAUSTED

        def iso(ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

        first, last = batch[0], batch[-1]
        self._on_failure(
            {
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": self.function_arn,
                    "condition": RETRIES_EXHAUSTED,
                    "approximateInvokeCount": attempts,
                },
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": None if result.ok else "Unhandled",
                },
                "version": "1.0",
                "timestamp": datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "KafkaBatchInfo": {
                    "batchSize": len(batch),
                    "eventSourceArn": self.event_source_arn,
                    "bootstrapServers": LOCAL_BOOTSTRAP_SERVERS,
                    "payloadSize": len(json.dumps(self.event(batch))),
                    "recordsInfo": {
                        f"{first.topic}-{first.partition}": {
                            "firstRecordOffset": str(first.offset),
                            "lastRecordOffset": str(last.offset),
                            "firstRecordTimestamp": iso(first.timestamp_ms),
                            "lastRecordTimestamp": iso(last.timestamp_ms),
                        }
                    },
                },
                "payload": json.dumps(self.event(batch)),  # the whole event: S3 destinations only
            }
        )


def on_failure_offsets(body: str) -> list[tuple[str, int]]:
    """(topic-partition, offset) pairs an on-failure destination record describes."""
    try:
        return KafkaFailureRecord.parse(body).offsets()
    except FailureRecordError:
        return []
