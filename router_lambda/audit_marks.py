"""Audit marks: which Kafka records already have their audit message, so a re-delivery does not audit again.

Kafka re-delivers records the router already audited: every record after the lowest failed offset of a
partition when the handler reports a partial failure, the whole batch after a crash or timeout, and any
record again after a consumer-group rebalance (docs/decisions/075). The record's coordinates
(topic, partition, offset, and its timestamp, which survive every re-delivery) identify it, so:

    look the batch's records up (BatchGetItem, consistent)  -> already audited: not sent, not counted
    send the others' audit messages (SQS)                   -> as before
    mark the ones SQS accepted (BatchWriteItem, TTL)

A lookup that fails leaves those records *unknown*: the router fails them back to Kafka rather than risk
a second audit. A mark that cannot be written after its audit was delivered is only logged: the audit is
durable, and failing the record would guarantee the duplicate the mark exists to prevent.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mm_contracts.tables import AUDIT_MARKS_PARTITION_KEY, AUDIT_MARKS_TTL_ATTRIBUTE
from router_lambda.batching import backoff_seconds
from router_lambda.observability import logger
from router_lambda.records import MskRecord

BATCH_GET_LIMIT = 100  # DynamoDB BatchGetItem keys per call
BATCH_WRITE_LIMIT = 25  # DynamoDB BatchWriteItem requests per call


class DynamoDBBatch(Protocol):
    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]: ...

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]: ...


def mark_key(record: MskRecord) -> str:
    """`topic-partition-offset@timestamp`: the timestamp tells a recreated topic's reused offsets apart."""
    if record.timestamp is None:
        return record.correlation_id
    return f"{record.correlation_id}@{record.timestamp}"


@dataclass
class MarkLookup:
    marked: set[str] = field(default_factory=set)  # audited by an earlier delivery
    unknown: set[str] = field(default_factory=set)  # the marks could not be read


class AuditMarks:
    def __init__(
        self,
        table_name: str,
        client: Callable[[], DynamoDBBatch],
        *,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._table_name = table_name
        self._client = client
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._jitter = jitter

    # ------------------------------------------------------------ reads
    def lookup(self, keys: Sequence[str]) -> MarkLookup:
        result = MarkLookup()
        pending_keys = sorted(set(keys))
        unavailable = False
        for start in range(0, len(pending_keys), BATCH_GET_LIMIT):
            chunk = pending_keys[start : start + BATCH_GET_LIMIT]
            if unavailable:  # DynamoDB already failed after boto's retries: don't stall on every chunk
                result.unknown.update(chunk)
                continue
            unavailable = self._lookup_chunk(chunk, result)
        return result

    def _lookup_chunk(self, chunk: list[str], result: MarkLookup) -> bool:
        pending = list(chunk)
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._client().batch_get_item(
                    RequestItems={
                        self._table_name: {
                            "Keys": [{AUDIT_MARKS_PARTITION_KEY: {"S": key}} for key in pending],
                            "ConsistentRead": True,  # a mark written by the previous delivery must be seen
                            "ProjectionExpression": AUDIT_MARKS_PARTITION_KEY,
                        }
                    }
                )
            except (ClientError, BotoCoreError) as error:
                logger.error("audit marks read failed", extra={"error": type(error).__name__, "keys": len(pending)})
                result.unknown.update(pending)
                return True
            for item in response.get("Responses", {}).get(self._table_name, []):
                key = item.get(AUDIT_MARKS_PARTITION_KEY, {}).get("S")
                if key in pending:
                    result.marked.add(key)
            unprocessed = {
                str(k.get(AUDIT_MARKS_PARTITION_KEY, {}).get("S"))
                for k in response.get("UnprocessedKeys", {}).get(self._table_name, {}).get("Keys", [])
            }
            pending = [key for key in pending if key in unprocessed]
            if not pending:
                return False
            if attempt < self._max_attempts:
                self._sleep(backoff_seconds(attempt, self._jitter))
        logger.warning("audit marks left keys unprocessed", extra={"keys": len(pending)})
        result.unknown.update(pending)
        return False

    # ------------------------------------------------------------ writes
    def mark(self, keys: Sequence[str]) -> set[str]:
        """Writes a mark per key; returns the keys left unmarked (logged by the caller)."""
        expires_at = str(int(self._clock()) + self._ttl_seconds)
        keys = sorted(set(keys))
        unmarked: set[str] = set()
        for start in range(0, len(keys), BATCH_WRITE_LIMIT):
            chunk = keys[start : start + BATCH_WRITE_LIMIT]
            if unmarked:  # an earlier chunk failed outright: DynamoDB is unavailable
                unmarked.update(chunk)
                continue
            unmarked.update(self._mark_chunk(chunk, expires_at))
        return unmarked

    def _mark_chunk(self, chunk: list[str], expires_at: str) -> set[str]:
        pending = [
            {
                "PutRequest": {
                    "Item": {AUDIT_MARKS_PARTITION_KEY: {"S": key}, AUDIT_MARKS_TTL_ATTRIBUTE: {"N": expires_at}}
                }
            }
            for key in chunk
        ]
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._client().batch_write_item(RequestItems={self._table_name: pending})
            except (ClientError, BotoCoreError) as error:
                logger.error("audit marks write failed", extra={"error": type(error).__name__, "keys": len(pending)})
                return {request["PutRequest"]["Item"][AUDIT_MARKS_PARTITION_KEY]["S"] for request in pending}
            pending = list(response.get("UnprocessedItems", {}).get(self._table_name, []))
            if not pending:
                return set()
            if attempt < self._max_attempts:
                self._sleep(backoff_seconds(attempt, self._jitter))
        return {request["PutRequest"]["Item"][AUDIT_MARKS_PARTITION_KEY]["S"] for request in pending}
