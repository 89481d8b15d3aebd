"""SNS PublishBatch with per-entry retries (exponential backoff + full jitter). See docs/decisions/017.

- Entries in `Failed` with `SenderFault: false` are retried (only those) up to `max_attempts` sends.
- `SenderFault: true` is not transient: the entry is reported as rejected, never retried.
- A call that raises (boto already retried it) marks SNS unavailable for the rest of the invocation:
  every not-yet-published message is reported failed without further calls, so an outage costs one
  slow call, not one per chunk. Failed messages go back to Kafka through the partial batch response.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE
from router_lambda.batching import backoff_seconds, pack, utf8_length
from router_lambda.observability import logger


class SnsPublishBatch(Protocol):
    def publish_batch(self, **kwargs: Any) -> dict[str, Any]: ...


class OutboundMessage(NamedTuple):  # one per routed record: a tuple is built in a third of a frozen dataclass's time
    key: int  # the record's index in the batch: unique, so also a unique entry Id
    body: str
    challenge_id: str

    @property
    def entry_id(self) -> str:
        return f"r{self.key}"

    def entry(self) -> dict[str, Any]:
        return {
            "Id": self.entry_id,
            "Message": self.body,
            "MessageAttributes": {CHALLENGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": self.challenge_id}},
        }

    def size(self) -> int:
        return utf8_length(self.body) + len(CHALLENGE_ID_ATTRIBUTE) + utf8_length(self.challenge_id) + len("String")


@dataclass
class PublishResult:
    published: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)  # transient or unavailable: retry via Kafka
    rejected: dict[int, str] = field(default_factory=dict)  # SenderFault: retrying cannot help
    retries: int = 0


class Publisher:
    def __init__(
        self,
        topic_arn: str,
        client: Callable[[], SnsPublishBatch],
        *,
        max_attempts: int,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._topic_arn = topic_arn
        self._client = client
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._jitter = jitter

    def publish(self, messages: Sequence[OutboundMessage]) -> PublishResult:
        result = PublishResult()
        unavailable = False
        for chunk in pack(messages, OutboundMessage.size):
            if unavailable:
                for message in chunk:
                    result.failed[message.key] = "SNS unavailable earlier in this invocation"
                continue
            unavailable = self._publish_chunk(chunk, result)
        return result

    def _publish_chunk(self, chunk: list[OutboundMessage], result: PublishResult) -> bool:
        """Publish one chunk; True when SNS is unavailable (the call raised after boto's retries)."""
        pending = {message.entry_id: message for message in chunk}
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._client().publish_batch(
                    TopicArn=self._topic_arn, PublishBatchRequestEntries=[m.entry() for m in pending.values()]
                )
            except (ClientError, BotoCoreError) as error:
                code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
                logger.error("SNS PublishBatch failed", extra={"error": type(error).__name__, "code": code})
                why = f"PublishBatch raised {type(error).__name__} {code}".strip()
                result.failed.update({m.key: why for m in pending.values()})
                return True
            answered: dict[str, dict[str, Any]] = {str(e.get("Id")): e for e in response.get("Failed", [])}
            for entry in response.get("Successful", []):
                answered[str(entry.get("Id"))] = {"ok": True}
            retry: dict[str, OutboundMessage] = {}
            for entry_id, message in pending.items():
                entry = answered.get(entry_id, {"Code": "NoAnswer", "Message": "entry missing from the response"})
                if entry.get("ok"):
                    result.published.add(message.key)
                elif entry.get("SenderFault"):
                    result.rejected[message.key] = _describe(entry)
                else:
                    retry[entry_id] = message
                    result.failed[message.key] = _describe(entry)
            if not retry:
                return False
            if attempt == self._max_attempts:
                logger.warning("SNS entries still failing after retries", extra={"entries": len(retry)})
                return False
            for message in retry.values():
                del result.failed[message.key]
            result.retries += len(retry)
            self._sleep(backoff_seconds(attempt, self._jitter))
            pending = retry
        return False


def _describe(entry: dict[str, Any]) -> str:
    return f"{entry.get('Code', 'unknown')}: {str(entry.get('Message', ''))[:200]}"
