"""The audit queue: one `AuditRecord` per skipped or rejected record, sent with SQS SendMessageBatch.

Batches hold at most 10 entries and at most 256 KiB in all (SQS counts the whole batch); the raw value
is truncated so that one audit message always fits (see docs/decisions/013). An entry SQS refuses, or a
call that raises, makes that record *failed*: it goes back to Kafka instead of being silently dropped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mm_contracts.models.audit import AuditRecord
from router_lambda.batching import backoff_seconds, pack, utf8_length
from router_lambda.observability import logger
from router_lambda.records import MskRecord, Verdict

# Base64 characters of the raw value kept in an audit message (a multiple of 4, so it stays decodable).
# 128 KiB leaves ample room under the 256 KiB SQS message limit for the other fields.
MAX_AUDIT_RAW_BASE64 = 131_072


class SqsSendMessageBatch(Protocol):
    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AuditItem:
    key: int
    record: AuditRecord

    @property
    def entry_id(self) -> str:
        return f"a{self.key}"

    @cached_property
    def body(self) -> str:
        """The message body, serialized once (batch packing measures it, the request carries it)."""
        return self.record.to_json()


def _printable(value: str) -> str:
    """The value as text SQS and JSON can carry: lone surrogates (a `\\ud800` escape in the event) escaped."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def build_audit_record(record: MskRecord, verdict: Verdict, now: float) -> AuditRecord:
    raw = _printable(record.value) if isinstance(record.value, str) else None
    truncated = raw is not None and len(raw) > MAX_AUDIT_RAW_BASE64
    return AuditRecord(
        disposition=verdict.reason.disposition,
        reason=verdict.reason.value,
        detail=verdict.detail,
        source=record.source,
        correlation_id=record.correlation_id,
        submission_id=verdict.submission_id,
        challenge_id=verdict.challenge_id,
        platform=verdict.platform,
        raw_value_base64=raw[:MAX_AUDIT_RAW_BASE64] if raw is not None else None,
        truncated=truncated,
        recorded_at=datetime.fromtimestamp(now, tz=UTC),
    )


class AuditSender:
    def __init__(
        self,
        queue_url: str,
        client: Callable[[], SqsSendMessageBatch],
        *,
        max_attempts: int,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._queue_url = queue_url
        self._client = client
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._jitter = jitter

    def send(self, items: Sequence[AuditItem]) -> tuple[set[int], dict[int, str]]:
        """Returns (delivered keys, failed keys with why)."""
        delivered: set[int] = set()
        failed: dict[int, str] = {}
        unavailable = False
        for chunk in pack(items, lambda item: utf8_length(item.body)):
            if unavailable:
                failed.update({item.key: "SQS unavailable earlier in this invocation" for item in chunk})
                continue
            unavailable = self._send_chunk(chunk, delivered, failed)
        return delivered, failed

    def _send_chunk(self, chunk: list[AuditItem], delivered: set[int], failed: dict[int, str]) -> bool:
        pending = {item.entry_id: item for item in chunk}
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._client().send_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": item.entry_id, "MessageBody": item.body} for item in pending.values()],
                )
            except (ClientError, BotoCoreError) as error:
                logger.error("audit SendMessageBatch failed", extra={"error": type(error).__name__})
                failed.update(
                    {item.key: f"SendMessageBatch raised {type(error).__name__}" for item in pending.values()}
                )
                return True
            for entry in response.get("Successful", []):
                item = pending.pop(str(entry.get("Id")), None)
                if item is not None:
                    delivered.add(item.key)
            last_error = {
                str(entry.get("Id")): str(entry.get("Code", "unknown")) for entry in response.get("Failed", [])
            }
            if not pending:
                return False
            if attempt == self._max_attempts:
                failed.update({item.key: last_error.get(entry_id, "no answer") for entry_id, item in pending.items()})
                return False
            self._sleep(backoff_seconds(attempt, self._jitter))
        return False
