"""The environment's dead-letter queues (names from the wiring plan only) and a look into them without consuming.

A peek receives with a short visibility timeout and sets each message visible again at once
(`ChangeMessageVisibility` 0), so nothing is deleted and a running redrive is not held up for long. A DLQ has no
redrive policy of its own, so the receive count a peek adds changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from infrastructure.wiring import WiringPlan
from operator_tools.clients import ClientSource

PEEK_VISIBILITY_SECONDS = 30
MAX_RECEIVE_BATCH = 10
DEPTH_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


class QueueKind(StrEnum):
    CHALLENGE = "challenge"
    FANOUT = "fanout"
    COMPLETION = "completion"


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str
    kind: QueueKind
    challenge_id: str | None = None  # the challenge of a challenge DLQ


class UnknownQueue(ValueError):
    """The name (or challenge id) is none of the environment's dead-letter queues."""


def dead_letter_queues(plan: WiringPlan) -> list[DeadLetterQueue]:
    """Each challenge's DLQ (in config order), then the fan-out and completion DLQs."""
    names = plan.names
    queues = [
        DeadLetterQueue(names.challenge_dlq(c.challenge_id), QueueKind.CHALLENGE, c.challenge_id)
        for c in plan.config.challenges
    ]
    queues.append(DeadLetterQueue(names.fanout_dlq, QueueKind.FANOUT))
    queues.append(DeadLetterQueue(names.completion_dlq, QueueKind.COMPLETION))
    return queues


def find_queue(plan: WiringPlan, name: str) -> DeadLetterQueue:
    """A DLQ by its name, its URL's last part, a challenge id, or `fanout` / `completion`."""
    wanted = name.rstrip("/").rsplit("/", 1)[-1]
    for queue in dead_letter_queues(plan):
        aliases = {queue.name, queue.challenge_id, queue.kind.value if queue.kind is not QueueKind.CHALLENGE else None}
        if wanted in aliases:
            return queue
    known = ", ".join(q.name for q in dead_letter_queues(plan))
    raise UnknownQueue(f"{name!r} is not a dead-letter queue of {plan.config.environment} (one of {known})")


@dataclass(frozen=True)
class QueueDepth:
    queue: DeadLetterQueue
    visible: int
    in_flight: int
    oldest_sent_at: datetime | None = None  # of the messages a peek saw (at most one batch)
    error: str | None = None  # the queue could not be read (missing, no access)

    @property
    def total(self) -> int:
        return self.visible + self.in_flight

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue.name,
            "kind": self.queue.kind.value,
            "challengeId": self.queue.challenge_id,
            "visible": self.visible,
            "inFlight": self.in_flight,
            "oldestSentAt": self.oldest_sent_at.isoformat() if self.oldest_sent_at else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class PeekedMessage:
    message_id: str
    body: str
    sent_at: datetime | None
    receive_count: int
    attributes: dict[str, str]  # the message's own string attributes (never printed wholesale)


def queue_url(clients: ClientSource, name: str) -> str:
    return str(clients.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def queue_arn(clients: ClientSource, url: str) -> str:
    attributes = clients.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def depth(clients: ClientSource, queue: DeadLetterQueue, *, peek_oldest: bool = True) -> QueueDepth:
    sqs = clients.client("sqs")
    url = queue_url(clients, queue.name)
    values = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
    visible = int(values.get("ApproximateNumberOfMessages", 0))
    in_flight = int(values.get("ApproximateNumberOfMessagesNotVisible", 0))
    oldest = None
    if peek_oldest and visible:
        sent = [m.sent_at for m in peek(clients, url, limit=MAX_RECEIVE_BATCH) if m.sent_at is not None]
        oldest = min(sent) if sent else None
    return QueueDepth(queue, visible, in_flight, oldest)


def _sent_at(attributes: dict[str, Any]) -> datetime | None:
    raw = attributes.get("SentTimestamp")
    return datetime.fromtimestamp(int(raw) / 1000, tz=UTC) if raw else None


def _peeked(message: dict[str, Any]) -> PeekedMessage:
    system = message.get("Attributes", {})
    own = {
        name: str(value.get("StringValue", ""))
        for name, value in message.get("MessageAttributes", {}).items()
        if value.get("DataType", "").startswith(("String", "Number"))
    }
    return PeekedMessage(
        message_id=str(message["MessageId"]),
        body=str(message.get("Body", "")),
        sent_at=_sent_at(system),
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        attributes=own,
    )


def fresh_batches(sqs: Any, url: str, *, limit: int, visibility_seconds: int) -> Iterator[list[dict[str, Any]]]:
    """Receive batches until `limit` messages or the queue gives no message not seen yet in this call; each batch
    holds only fresh messages (they stay invisible for `visibility_seconds`). The one receive loop of the peek and
    the move."""
    seen: set[str] = set()
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(MAX_RECEIVE_BATCH, limit - len(seen)),
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        seen.update(m["MessageId"] for m in fresh)
        yield fresh


def receive(clients: ClientSource, url: str, *, limit: int, visibility_seconds: int) -> list[dict[str, Any]]:
    """Up to `limit` messages, each received once (they stay invisible for `visibility_seconds`)."""
    sqs = clients.client("sqs")
    return [m for batch in fresh_batches(sqs, url, limit=limit, visibility_seconds=visibility_seconds) for m in batch]


def release(clients: ClientSource, url: str, messages: list[dict[str, Any]]) -> None:
    """Make received messages visible again now."""
    sqs = clients.client("sqs")
    for start in range(0, len(messages), MAX_RECEIVE_BATCH):
        entries = [
            {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, m in enumerate(messages[start : start + MAX_RECEIVE_BATCH])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def peek(clients: ClientSource, url: str, *, limit: int) -> list[PeekedMessage]:
    """Up to `limit` messages without deleting them (visible again when this returns)."""
    messages = receive(clients, url, limit=limit, visibility_seconds=PEEK_VISIBILITY_SECONDS)
    try:
        return [_peeked(m) for m in messages]
    finally:
        release(clients, url, messages)
