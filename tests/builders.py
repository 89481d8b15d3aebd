"""Builders for real-shaped events (MSK, SQS, EventBridge ECS Task State Change) and bus messages.

Shapes follow the AWS documentation samples and platform-facts.md; use these rather than hand-written
dicts so every test feeds the functions what Lambda would.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC

REGION = "us-east-1"
ACCOUNT = "123456789012"
MSK_CLUSTER_ARN = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/mm-bus/6f1c5d2e-1234-4f4e-9c1d-0a1b2c3d4e5f-2"


def new_uuid() -> str:
    return str(uuid.uuid4())


def iso_now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- Topcoder bus messages
def submission_payload(
    *,
    submission_id: str | None = None,
    challenge_id: str | None = None,
    member_id: int = 40_158_994,
    url: str = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
    **overrides: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "resource": "submission",
        "id": submission_id or new_uuid(),
        "type": "Contest Submission",
        "url": url,
        "memberId": member_id,
        "challengeId": challenge_id or new_uuid(),
        "created": iso_now(),
        "updated": iso_now(),
        "createdBy": "mm-member",
        "updatedBy": "mm-member",
        "submissionPhaseId": 764_567,
        "fileType": "zip",
        "submittedDate": iso_now(),
        "isFileSubmission": False,
    }
    payload.update(overrides)
    return payload


def bus_envelope(payload: dict[str, Any], *, topic: str = DEFAULT_SUBMISSION_TOPIC) -> dict[str, Any]:
    return {
        "topic": topic,
        "originator": "submission-api",
        "timestamp": iso_now(),
        "mime-type": "application/json",
        "payload": payload,
    }


def review_envelope(submission_id: str | None = None) -> dict[str, Any]:
    return bus_envelope(
        {
            "resource": "review",
            "id": new_uuid(),
            "score": 92.5,
            "typeId": "c56a4180-65aa-42ec-a945-5fd21dec0503",
            "reviewerId": new_uuid(),
            "scoreCardId": 30_001_852,
            "submissionId": submission_id or new_uuid(),
            "status": "completed",
        }
    )


def flat_submission(**kwargs: Any) -> dict[str, Any]:
    """The unwrapped form some producers send: `id`, `challengeId`, `url`, `memberId`, `created`."""
    payload = submission_payload(**kwargs)
    return {k: payload[k] for k in ("id", "challengeId", "url", "memberId", "created")}


# ---------------------------------------------------------------- MSK event
@dataclass
class KafkaRecord:
    value: bytes | str | dict[str, Any]
    partition: int = 0
    offset: int | None = None
    topic: str = DEFAULT_SUBMISSION_TOPIC
    key: bytes | None = None
    headers: list[dict[str, list[int]]] = field(default_factory=list)
    timestamp: int | None = None

    def value_bytes(self) -> bytes:
        if isinstance(self.value, bytes):
            return self.value
        if isinstance(self.value, str):
            return self.value.encode()
        return json.dumps(self.value).encode()


def msk_event(records: Iterable[KafkaRecord], *, start_offset: int = 100) -> dict[str, Any]:
    """`records` grouped by "<topic>-<partition>"; offsets assigned per partition when not given."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    next_offset: dict[str, int] = {}
    for record in records:
        group = f"{record.topic}-{record.partition}"
        offset = record.offset if record.offset is not None else next_offset.get(group, start_offset)
        next_offset[group] = offset + 1
        item: dict[str, Any] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": offset,
            "timestamp": record.timestamp or int(datetime.now(tz=UTC).timestamp() * 1000),
            "timestampType": "CREATE_TIME",
            "value": base64.b64encode(record.value_bytes()).decode(),
            "headers": record.headers,
        }
        if record.key is not None:
            item["key"] = base64.b64encode(record.key).decode()
        grouped.setdefault(group, []).append(item)
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": MSK_CLUSTER_ARN,
        "bootstrapServers": "b-1.mm-bus.kafka.us-east-1.amazonaws.com:9098",
        "records": grouped,
    }


# ---------------------------------------------------------------- SQS event
def sqs_record(
    body: str | dict[str, Any],
    *,
    queue_arn: str = f"arn:aws:sqs:{REGION}:{ACCOUNT}:mm-example-challenge",
    receive_count: int = 1,
    message_id: str | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    message_attributes = {
        name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
        for name, value in (attributes or {}).items()
    }
    now_ms = str(int(datetime.now(tz=UTC).timestamp() * 1000))
    return {
        "messageId": message_id or new_uuid(),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": message_attributes,
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


# ---------------------------------------------------------------- EventBridge: ECS Task State Change
def ecs_task_stopped_event(
    *,
    task_arn: str | None = None,
    cluster_arn: str = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mm-scorers",
    started_by: str | None = "mm-processor/example/00000000-0000-0000-0000-000000000000",
    container_name: str = "scorer",
    environment: dict[str, str] | None = None,
    exit_code: int | None = 0,
    stop_code: str = "EssentialContainerExited",
    stopped_reason: str = "Essential container in task exited",
    containers: list[dict[str, Any]] | None = None,
    task_definition_arn: str = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/mm-scorer-example:3",
    event_id: str | None = None,
) -> dict[str, Any]:
    task_arn = task_arn or f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/mm-scorers/{uuid.uuid4().hex}"
    now = iso_now()
    if containers is None:
        container: dict[str, Any] = {
            "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/mm-scorers/{uuid.uuid4().hex}",
            "lastStatus": "STOPPED",
            "name": container_name,
            "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mm-scorer:latest",
            "taskArn": task_arn,
            "networkInterfaces": [],
            "cpu": "0",
        }
        if exit_code is not None:
            container["exitCode"] = exit_code
        containers = [container]
    detail: dict[str, Any] = {
        "attachments": [],
        "availabilityZone": f"{REGION}a",
        "clusterArn": cluster_arn,
        "containers": containers,
        "createdAt": now,
        "launchType": "FARGATE",
        "cpu": "1024",
        "memory": "2048",
        "desiredStatus": "STOPPED",
        "group": "family:mm-scorer-example",
        "lastStatus": "STOPPED",
        "overrides": {
            "containerOverrides": [
                {
                    "name": container_name,
                    "environment": [{"name": k, "value": v} for k, v in (environment or {}).items()],
                }
            ]
        },
        "stopCode": stop_code,
        "stoppedAt": now,
        "stoppedReason": stopped_reason,
        "stoppingAt": now,
        "taskArn": task_arn,
        "taskDefinitionArn": task_definition_arn,
        "updatedAt": now,
        "version": 5,
        "platformVersion": "1.4.0",
    }
    if started_by is not None:
        detail["startedBy"] = started_by
    return {
        "version": "0",
        "id": event_id or new_uuid(),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": now,
        "region": REGION,
        "resources": [task_arn],
        "detail": detail,
    }


# ---------------------------------------------------------------- Lambda context
class FakeLambdaContext(LambdaContext):
    """A Lambda context as the runtime passes it (Powertools' `LambdaContext`, so a handler's type holds)."""

    def __init__(
        self,
        function_name: str = "mm-example-function",
        memory_limit_in_mb: int = 256,
        invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mm-example-function",
        aws_request_id: str | None = None,
        remaining_ms: int = 60_000,
    ) -> None:
        self._function_name = function_name
        self._memory_limit_in_mb = memory_limit_in_mb
        self._invoked_function_arn = invoked_function_arn
        self._aws_request_id = aws_request_id or new_uuid()
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
