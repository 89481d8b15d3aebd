"""The event source mappings scale as Lambda's do (decision 116): a challenge queue's mapping adds a poller while
batches come full, up to its maximum concurrency and one more than the function's instances, and lets the added
pollers go once the queue is empty; the completion rule's target runs several invocations at once, never more than
the function's instances plus one (so no received event waits long for an instance), tells each invocation when
its event was queued, and deletes each it served."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from typing import Any

from infrastructure.wiring import CHALLENGE_BATCH_SIZE
from local_pipeline.event_sources import EventSources
from local_pipeline.workers import Invocation

CHALLENGE_FUNCTION = "mm-test-ch-1"
COMPLETION_FUNCTION = "mm-test-completion"
SENT_MS = 1_796_400_000_000  # the messages' SentTimestamp (epoch milliseconds), one apart


class Queue:
    """An SQS client over one list of messages: receives take from the front, deletes are counted."""

    def __init__(self, count: int) -> None:
        self.messages = [
            {
                "MessageId": f"m{i}",
                "ReceiptHandle": f"r{i}",
                "Body": json.dumps({"submissionId": f"s{i}"}),
                "Attributes": {"SentTimestamp": str(SENT_MS + i)},
            }
            for i in range(count)
        ]
        self.deleted: list[str] = []
        self._lock = threading.Lock()

    def receive_message(self, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_: Any) -> dict[str, Any]:
        with self._lock:
            taken, self.messages = self.messages[:MaxNumberOfMessages], self.messages[MaxNumberOfMessages:]
        if not taken:
            time.sleep(min(WaitTimeSeconds, 0.05))
        return {"Messages": taken}

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> None:
        with self._lock:
            self.deleted += [e["ReceiptHandle"] for e in Entries]

    def delete_message(self, ReceiptHandle: str, **_: Any) -> None:
        with self._lock:
            self.deleted.append(ReceiptHandle)


class Function:
    """Counts the invocations running at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.most = 0
        self.calls = 0
        self.queued_at: list[float | None] = []
        self._lock = threading.Lock()

    def __call__(self, function_name: str, event: dict[str, Any], *, queued_at: float | None = None) -> Invocation:
        with self._lock:
            self.queued_at.append(queued_at)
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        return Invocation(ok=True, payload={"batchItemFailures": []})


def _sources(queue: Queue, function: Function, *, concurrency: int, instances: int) -> EventSources:
    challenge = SimpleNamespace(challenge_id="ch-1", function_name=CHALLENGE_FUNCTION, queue_url="q", queue_arn="arn:q")
    resources = SimpleNamespace(
        challenges={"ch-1": challenge},
        functions={
            CHALLENGE_FUNCTION: SimpleNamespace(concurrency=concurrency),
            COMPLETION_FUNCTION: SimpleNamespace(concurrency=concurrency),
        },
        completion_events_queue_url="completion-q",
    )
    sources = EventSources(
        aws=None,  # type: ignore[arg-type]
        config=SimpleNamespace(region="us-east-1", account="123456789012"),  # type: ignore[arg-type]
        plan=SimpleNamespace(names=SimpleNamespace(completion_function=COMPLETION_FUNCTION)),  # type: ignore[arg-type]
        deviations=None,  # type: ignore[arg-type]
        resources=resources,  # type: ignore[arg-type]
        invoke=function,
        twins={},
        instances=lambda name: instances,
    )
    sources._sqs_client = queue
    return sources


def _until(condition: Any, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_backlog_scales_the_mapping_to_its_maximum_concurrency_then_back_to_one_poller() -> None:
    queue, function = Queue(12 * CHALLENGE_BATCH_SIZE), Function(seconds=0.2)
    sources = _sources(queue, function, concurrency=3, instances=10)
    try:
        sources._add_poller(sources.resources.challenges["ch-1"])
        assert _until(lambda: len(queue.deleted) == 12 * CHALLENGE_BATCH_SIZE)
        assert function.most == 3
        assert sources.pollers_most == {"ch-1": 3}
        assert _until(lambda: sources._pollers["ch-1"] == 1)  # the added pollers left the empty queue
    finally:
        sources.stop()


def test_a_mapping_runs_at_most_one_invocation_more_than_the_function_has_instances() -> None:
    queue, function = Queue(8 * CHALLENGE_BATCH_SIZE), Function(seconds=0.2)
    sources = _sources(queue, function, concurrency=5, instances=1)
    try:
        sources._add_poller(sources.resources.challenges["ch-1"])
        assert _until(lambda: len(queue.deleted) == 8 * CHALLENGE_BATCH_SIZE)
        assert function.most == 2
    finally:
        sources.stop()


def test_the_completion_target_invokes_several_events_at_once_within_the_instances_plus_one() -> None:
    queue, function = Queue(30), Function(seconds=0.1)
    sources = _sources(queue, function, concurrency=20, instances=3)
    thread = threading.Thread(target=sources.poll_completion_events, daemon=True)
    thread.start()
    try:
        assert _until(lambda: len(queue.deleted) == 30)
        assert function.most == 4
        assert function.calls == 30
        # each invocation knows how long its event waited in the queue (a starved one scales the function up)
        assert sorted(function.queued_at) == [(SENT_MS + i) / 1000 for i in range(30)]  # type: ignore[type-var]
    finally:
        sources.stopping.set()
        thread.join(timeout=10)
