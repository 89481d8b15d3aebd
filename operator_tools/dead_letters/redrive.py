"""Dead letters back where they came from, per queue kind (decision 110).

- challenge DLQ: SQS `StartMessageMoveTask` with no destination (back to its source queue: SQS supports it only
  for a DLQ whose source is an SQS queue, which a challenge DLQ's is), paced by `MaxNumberOfMessagesPerSecond`.
  Where the endpoint lacks the API (the emulator, `--endpoint-url`) or `--move` asks for it: a move.
- fan-out DLQ: a move to the challenge queue the routed message's `challengeId` names (an SNS subscription DLQ
  has no SQS source queue to move back to).
- completion DLQ: the event invoked into the completion function asynchronously, the message deleted only after
  Lambda accepted the invoke (202).

A move receives a batch, hands each message on, and deletes it only after that succeeded; a message that could
not be handed on stays in the DLQ (visible again after the move's visibility timeout). Moving twice is safe: the
status table grants a launch once per run attempt and a report once per task (decision 002).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infrastructure.wiring import WiringPlan
from operator_tools.clients import ClientSource
from operator_tools.dead_letters.decode import completion_event, routed_document
from operator_tools.dead_letters.queues import (
    DeadLetterQueue,
    QueueKind,
    fresh_batches,
    queue_arn,
    queue_url,
)

MOVE_VISIBILITY_SECONDS = 60
# An API the endpoint does not implement: moto answers an HTML 500 (so the code reads "500", which AWS, whose errors
# carry a code, never sends), other emulators InvalidAction. Never SQS's UnsupportedOperation: AWS answers that for
# a DLQ whose source is not an SQS queue, or while a move task runs on the queue; that is said, not worked around.
UNSUPPORTED_CODES = frozenset({"500", "NotImplemented", "InvalidAction"})


@dataclass
class RedriveResult:
    method: str  # "move-task" | "move" | "invoke"
    destination: str
    moved: int = 0  # handed on and deleted
    failed: int = 0  # not handed on (left in the DLQ)
    not_deleted: int = 0  # handed on, but the DeleteMessage failed (still in the DLQ)
    task_handle: str | None = None
    task_status: str | None = None
    moved_bodies: list[str] = field(default_factory=list)  # what was handed on (the audit entries' runs)
    errors: list[str] = field(default_factory=list)
    note: str = ""
    interrupted: bool = False  # a receive failed: the move stopped before the DLQ was empty

    @property
    def ok(self) -> bool:
        """Every message seen was handed on and deleted (a move task: it started)."""
        return not (self.failed or self.not_deleted or self.interrupted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "destination": self.destination,
            "moved": self.moved,
            "failed": self.failed,
            "notDeleted": self.not_deleted,
            "interrupted": self.interrupted,
            "taskHandle": self.task_handle,
            "taskStatus": self.task_status,
            "errors": self.errors[:20],
            "note": self.note,
        }


class UnsupportedMoveTask(Exception):
    """The endpoint does not implement StartMessageMoveTask."""


class MoveTaskRefused(Exception):
    """SQS refused StartMessageMoveTask (nothing moved): its error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def destination_of(plan: WiringPlan, queue: DeadLetterQueue) -> str:
    """Where a redrive of `queue` sends its messages (a queue name, a function name, or a description)."""
    if queue.kind is QueueKind.CHALLENGE:
        assert queue.challenge_id is not None
        return plan.names.challenge_queue(queue.challenge_id)
    if queue.kind is QueueKind.FANOUT:
        return "the challenge queue each message's challengeId names"
    return plan.names.completion_function


def _error(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


# ------------------------------------------------------------------ the native move task
def start_move_task(clients: ClientSource, dlq_url: str, *, max_per_second: int | None) -> tuple[str, str, str]:
    """(task handle, status, note) of a StartMessageMoveTask back to the DLQ's source queue. Only the start is
    refused (`MoveTaskRefused`: nothing moved); once it started, a status that cannot be read is UNKNOWN and the
    note says the task may be running."""
    sqs = clients.client("sqs")
    arn = queue_arn(clients, dlq_url)
    request: dict[str, Any] = {"SourceArn": arn}
    if max_per_second:
        request["MaxNumberOfMessagesPerSecond"] = max_per_second
    try:
        handle = str(sqs.start_message_move_task(**request)["TaskHandle"])
    except NotImplementedError as error:  # moto in-process
        raise UnsupportedMoveTask(str(error)) from error
    except ClientError as error:
        if _error(error) in UNSUPPORTED_CODES:
            raise UnsupportedMoveTask(_error(error)) from error
        raise MoveTaskRefused(_error(error), str(error.response.get("Error", {}).get("Message", ""))) from error
    try:
        tasks = sqs.list_message_move_tasks(SourceArn=arn, MaxResults=1).get("Results", [])
    except (ClientError, BotoCoreError) as error:
        return (
            handle,
            "UNKNOWN",
            (
                f"the task started, but ListMessageMoveTasks failed ({_error(error)}): it may be running; see "
                "`aws sqs list-message-move-tasks --source-arn " + arn + "`"
            ),
        )
    status = str(tasks[0].get("Status", "UNKNOWN")) if tasks else "UNKNOWN"
    return handle, status, ""


# ------------------------------------------------------------------ a move, message by message
Deliver = Callable[[dict[str, Any]], str | None]  # a received message -> None (handed on) or why not


def move_messages(
    clients: ClientSource,
    dlq_url: str,
    deliver: Deliver,
    result: RedriveResult,
    *,
    limit: int,
    max_per_second: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    """Receive, hand on, delete: up to `limit` messages, each at most once in this call."""
    sqs = clients.client("sqs")
    moved = 0
    batches = fresh_batches(sqs, dlq_url, limit=limit, visibility_seconds=MOVE_VISIBILITY_SECONDS)
    while True:
        try:
            batch = next(batches, None)
        except (ClientError, BotoCoreError) as error:
            result.interrupted = True
            result.errors.append(f"ReceiveMessage failed ({_error(error)}): stopped after {moved} message(s)")
            break
        if batch is None:
            break
        for message in batch:
            moved += 1
            _move_one(sqs, dlq_url, message, deliver, result)
            if max_per_second:
                sleep(1.0 / max_per_second)
    return result


def _move_one(sqs: Any, dlq_url: str, message: dict[str, Any], deliver: Deliver, result: RedriveResult) -> None:
    try:
        why = deliver(message)
    except (ClientError, BotoCoreError) as error:
        why = f"AWS error: {_error(error)}"
    if why is not None:
        result.failed += 1
        result.errors.append(f"{message['MessageId']}: {why}")
        return
    result.moved_bodies.append(str(message.get("Body", "")))  # handed on: its runs get their audit entries
    try:
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    except (ClientError, BotoCoreError) as error:
        # Handed on but still in the DLQ (visible again after the move's visibility timeout): a second redrive
        # hands it on again, which the status table claims once (decision 002).
        result.not_deleted += 1
        result.errors.append(f"{message['MessageId']}: handed on, not deleted ({_error(error)})")
        return
    result.moved += 1


def _message_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """The message's own attributes as SendMessage takes them (copied, never printed)."""
    kept: dict[str, Any] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        copy = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        kept[name] = copy
    return kept


def send_to_queue(clients: ClientSource, queue_name: str) -> Deliver:
    urls: dict[str, str] = {}

    def deliver(message: dict[str, Any]) -> str | None:
        if queue_name not in urls:
            urls[queue_name] = queue_url(clients, queue_name)
        request: dict[str, Any] = {"QueueUrl": urls[queue_name], "MessageBody": message["Body"]}
        attributes = _message_attributes(message)
        if attributes:
            request["MessageAttributes"] = attributes
        clients.client("sqs").send_message(**request)
        return None

    return deliver


def send_to_named_challenge(plan: WiringPlan, clients: ClientSource) -> Deliver:
    """Fan-out: to the challenge queue of the routed message's challengeId (a challenge of this environment)."""
    known = {c.challenge_id for c in plan.config.challenges}
    senders: dict[str, Deliver] = {}

    def deliver(message: dict[str, Any]) -> str | None:
        document = routed_document(str(message.get("Body", "")))
        challenge_id = str(document.get("challengeId", "")) if document else ""
        if challenge_id not in known:
            return f"challengeId {challenge_id[:60]!r} is no challenge of {plan.config.environment}: left in the DLQ"
        if challenge_id not in senders:
            senders[challenge_id] = send_to_queue(clients, plan.names.challenge_queue(challenge_id))
        body = json.dumps(document)
        return senders[challenge_id]({**message, "Body": body})

    return deliver


def invoke_completion(plan: WiringPlan, clients: ClientSource) -> Deliver:
    """Completion: the event (an on-failure record's requestPayload, else the body) invoked asynchronously."""

    def deliver(message: dict[str, Any]) -> str | None:
        try:
            document = json.loads(str(message.get("Body", "")))
        except ValueError:
            return "the body is not JSON: left in the DLQ"
        event, _ = completion_event(document)
        if event is None:
            return "no event in the message: left in the DLQ"
        response = clients.client("lambda").invoke(
            FunctionName=plan.names.completion_function, InvocationType="Event", Payload=json.dumps(event).encode()
        )
        status = int(response.get("StatusCode", 0))
        return None if status == 202 else f"Lambda answered {status}"

    return deliver


# ------------------------------------------------------------------ per kind
def redrive(
    plan: WiringPlan,
    clients: ClientSource,
    queue: DeadLetterQueue,
    *,
    limit: int,
    max_per_second: int | None = None,
    force_move: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    url = queue_url(clients, queue.name)
    destination = destination_of(plan, queue)
    if queue.kind is QueueKind.COMPLETION:
        result = RedriveResult("invoke", destination)
        return move_messages(
            clients,
            url,
            invoke_completion(plan, clients),
            result,
            limit=limit,
            max_per_second=max_per_second,
            sleep=sleep,
        )
    if queue.kind is QueueKind.FANOUT:
        result = RedriveResult("move", destination)
        return move_messages(
            clients,
            url,
            send_to_named_challenge(plan, clients),
            result,
            limit=limit,
            max_per_second=max_per_second,
            sleep=sleep,
        )
    note = "--move: moved message by message"
    if not force_move:
        try:
            handle, status, started_note = start_move_task(clients, url, max_per_second=max_per_second)
        except UnsupportedMoveTask as unsupported:
            note = f"the endpoint does not implement StartMessageMoveTask ({unsupported}): moved message by message"
        else:
            return RedriveResult("move-task", destination, task_handle=handle, task_status=status, note=started_note)
    result = RedriveResult("move", destination, note=note)
    return move_messages(
        clients,
        url,
        send_to_queue(clients, destination),
        result,
        limit=limit,
        max_per_second=max_per_second,
        sleep=sleep,
    )
