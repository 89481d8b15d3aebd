"""The events the matrix's Lambda functions are invoked with, in AWS's shapes: an SQS record of a queued message,
the EventBridge "ECS Task State Change" event of a stopped task; and the run a task or a message is for."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from mm_contracts.models.phase import run_id
from tests.fakes.queues import QueuedMessage
from tests.matrix.deployment import QUEUE_NAME, REGION


def run_of(submission_id: str, phase: str) -> str:
    """A task's run id; a task naming no phase (or an unknown one) is known by its submission id only."""
    try:
        return run_id(submission_id, phase)
    except ValueError:
        return submission_id


def submission_of(body: str) -> str:
    try:
        return str(json.loads(body).get("submissionId", ""))
    except (ValueError, AttributeError):
        return ""


def sqs_record(message: QueuedMessage, queue: str = QUEUE_NAME) -> dict[str, Any]:
    millis = str(int(message.sent_at * 1000))
    return {
        "messageId": message.message_id,
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": millis,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": millis,
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in message.attributes.items()
        },
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{queue}",
        "awsRegion": REGION,
    }


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value


def stopped_event(described: dict[str, Any], now: float) -> dict[str, Any]:
    """The EventBridge "ECS Task State Change" event ECS puts for a stopped task."""
    detail = _iso(described)
    stamp = _iso(datetime.fromtimestamp(now, tz=UTC))
    detail["updatedAt"] = stamp
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": stamp,
        "region": REGION,
        "resources": [detail["taskArn"]],
        "detail": detail,
    }
