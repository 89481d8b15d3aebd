"""SQS as the tests need it: a queue with visibility timeout, receive counts, redrive to a DLQ after
maxReceiveCount and delay seconds; a boto3-shaped client for code that sends to a queue (a relaunch); and
`RecordingSqs`, an audit queue's client that records what was sent (and can fail entries or calls)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.clock import VirtualClock


@dataclass
class QueuedMessage:
    message_id: str
    body: str
    visible_at: float
    sent_at: float
    receive_count: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)


class FakeQueue:
    def __init__(
        self,
        name: str,
        clock: VirtualClock,
        on_visible: Callable[[float], None],
        *,
        visibility_seconds: int = 180,
        max_receive_count: int = 3,
    ) -> None:
        self.name = name
        self.url = f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}"
        self._clock = clock
        self._on_visible = on_visible  # (instant) -> schedule a poll then
        self.visibility_seconds = visibility_seconds
        self.max_receive_count = max_receive_count
        self.messages: dict[str, QueuedMessage] = {}
        self.dead_letters: list[QueuedMessage] = []
        self.sent: list[QueuedMessage] = []
        self._seq = itertools.count()

    def send(self, body: str, *, delay_seconds: float = 0, attributes: dict[str, Any] | None = None) -> str:
        now = self._clock()
        message = QueuedMessage(str(uuid.uuid4()), body, now + delay_seconds, now, attributes=dict(attributes or {}))
        self.messages[message.message_id] = message
        self.sent.append(message)
        self._on_visible(message.visible_at)
        return message.message_id

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        """Visible messages (up to `max_messages`), now in flight; those past maxReceiveCount go to the DLQ."""
        now = self._clock()
        received: list[QueuedMessage] = []
        for message in sorted(self.messages.values(), key=lambda m: (m.visible_at, m.sent_at)):
            if len(received) >= max_messages:
                break
            if message.visible_at > now:
                continue
            if message.receive_count >= self.max_receive_count:
                del self.messages[message.message_id]
                self.dead_letters.append(message)
                continue
            message.receive_count += 1
            message.visible_at = now + self.visibility_seconds
            received.append(message)
        return received

    def delete(self, message_id: str) -> None:
        self.messages.pop(message_id, None)

    def return_later(self, message: QueuedMessage) -> None:
        """A failed receive: visible again when its visibility timeout ends."""
        if message.message_id in self.messages:
            self._on_visible(message.visible_at)

    @property
    def empty(self) -> bool:
        return not self.messages


class FakeSqsClient:
    """`get_queue_url` / `send_message` / `send_message_batch` onto fake queues by name."""

    def __init__(self, queues: dict[str, FakeQueue]) -> None:
        self._by_name = queues
        self._by_url = {q.url: q for q in queues.values()}
        self.batches: list[list[dict[str, Any]]] = []

    def get_queue_url(self, QueueName: str, **_: Any) -> dict[str, Any]:
        return {"QueueUrl": self._by_name[QueueName].url}

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int = 0, **kwargs: Any) -> dict[str, Any]:
        queue = self._by_url[QueueUrl]
        message_id = queue.send(MessageBody, delay_seconds=DelaySeconds, attributes=kwargs.get("MessageAttributes"))
        return {"MessageId": message_id}

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.batches.append(list(kwargs["Entries"]))
        queue = self._by_url.get(kwargs["QueueUrl"])
        successful = []
        for entry in kwargs["Entries"]:
            message_id = queue.send(entry["MessageBody"]) if queue is not None else str(uuid.uuid4())
            successful.append({"Id": entry["Id"], "MessageId": message_id})
        return {"Successful": successful, "Failed": []}


@dataclass
class RecordingSqs:
    """An audit queue's client (SendMessageBatch): keeps every entry sent and its decoded body (the router's audit
    records). `error` makes every call raise it; entries whose `Id` is in `fail_ids` come back in `Failed`."""

    error: Exception | None = None
    fail_ids: set[str] = field(default_factory=set)
    calls: list[list[dict[str, Any]]] = field(default_factory=list)  # every call's entries, as sent
    entries: list[dict[str, Any]] = field(default_factory=list)  # the entries accepted
    messages: list[dict[str, Any]] = field(default_factory=list)  # their bodies, decoded

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        entries: list[dict[str, Any]] = kwargs["Entries"]
        self.calls.append(entries)
        if self.error is not None:
            raise self.error
        accepted = [e for e in entries if e["Id"] not in self.fail_ids]
        self.entries.extend(accepted)
        self.messages.extend(json.loads(e["MessageBody"]) for e in accepted)
        return {
            "Successful": [{"Id": e["Id"], "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": "x"} for e in accepted],
            "Failed": [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
                for e in entries
                if e["Id"] in self.fail_ids
            ],
        }

    def reasons(self) -> list[str]:
        return [m["reason"] for m in self.messages]
