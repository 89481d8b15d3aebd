"""The router's AWS side on moto, shared by the v5 and the v6 integration tests: the submissions topic with one
filtered queue per challenge, the audit queue, the audit-marks table, the router's environment, and a drain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE
from mm_contracts.settings import RouterSettings
from mm_contracts.tables import AUDIT_MARKS_TTL, audit_marks_table_definition
from router_lambda import handler as handler_module
from tests.unit.router.support import AUDIT_MARKS_TABLE

TOPIC_NAME = "mm-test-submissions"
AUDIT_QUEUE_NAME = "mm-test-audit"


def queue(name: str) -> tuple[str, str]:
    """A new SQS queue: its URL and ARN."""
    sqs = aws_clients.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def fan_out(challenges: tuple[str, ...]) -> tuple[str, str, dict[str, str]]:
    """The topic, the audit queue and one raw-delivery queue per challenge behind the router's filter policy
    (the `challengeId` attribute): (topic ARN, audit queue URL, challenge id -> queue URL)."""
    sns = aws_clients.client("sns")
    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    audit_url, _ = queue(AUDIT_QUEUE_NAME)
    queues: dict[str, str] = {}
    for challenge in challenges:
        url, arn = queue(f"mm-test-challenge-{challenge[:8]}")
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={
                "RawMessageDelivery": "true",
                "FilterPolicy": json.dumps({CHALLENGE_ID_ATTRIBUTE: [challenge]}),
            },
        )
        queues[challenge] = url
    return topic_arn, audit_url, queues


def create_audit_marks_table() -> None:
    ddb = aws_clients.client("dynamodb")
    ddb.create_table(**audit_marks_table_definition(AUDIT_MARKS_TABLE))
    ddb.update_time_to_live(TableName=AUDIT_MARKS_TABLE, TimeToLiveSpecification=AUDIT_MARKS_TTL)


def set_router_env(monkeypatch: pytest.MonkeyPatch, settings: RouterSettings) -> None:
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)


def drain(queue_url: str) -> list[dict[str, Any]]:
    sqs = aws_clients.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The real handler, as Lambda calls it."""
    return dict(handler_module.handler(event, context))
