"""ReceiveMessage in the services emulator (local_pipeline.emulator.sqs_receive) answers what moto answers
(bodies, receive counts, visibility, the dead-letter queue at maxReceiveCount, retention) without building the
queue's attributes, a pass over the queue, once per returned message."""

from __future__ import annotations

from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.sqs import models as sqs_models
from moto.sqs.models import Queue

from local_pipeline.emulator import sqs_receive


def _receive_all(client: Any, url: str, rounds: int) -> list[list[tuple[str, str]]]:
    answers = []
    for _ in range(rounds):
        messages = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        answers.append([(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in messages])
    return answers


def _answers() -> dict[str, Any]:
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        dlq_url = client.create_queue(QueueName="dead")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = client.create_queue(
            QueueName="work",
            Attributes={"RedrivePolicy": f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "2"}}'},
        )["QueueUrl"]
        for n in range(25):
            client.send_message(QueueUrl=url, MessageBody=f"m{n}")
        answers: dict[str, Any] = {"rounds": _receive_all(client, url, 8)}
        answers["dead"] = sorted(body for round_ in _receive_all(client, dlq_url, 4) for body, _ in round_)
        hidden = client.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=3, VisibilityTimeout=30)
        answers["hidden"] = len(hidden.get("Messages", []))
        answers["after hidden"] = len(_receive_all(client, dlq_url, 1)[0])

        short_url = client.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        client.send_message(QueueUrl=short_url, MessageBody="old")
        now = sqs_models.unix_time()
        with mock.patch.object(sqs_models, "unix_time", return_value=now + 120):
            answers["expired"] = _receive_all(client, short_url, 1)
        answers["kept"] = _receive_all(client, short_url, 1)
        return answers


def test_receive_answers_what_moto_answers() -> None:
    unwrapped = _answers()
    assert sqs_receive.install()
    try:
        assert _answers() == unwrapped
    finally:
        sqs_receive.uninstall()
    assert unwrapped["dead"]
    assert unwrapped["expired"] == [[]]
    assert unwrapped["kept"] == [[("old", "2")]]  # moto counts the receive that found it expired, too


def test_receive_builds_no_queue_attributes_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto builds `Queue.attributes` (counting every message of the queue) three times per returned message."""
    builds: list[str] = []
    moto_attributes = Queue.attributes

    def counted(self: Queue) -> Any:
        builds.append(self.name)
        return moto_attributes.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(Queue, "attributes", property(counted))
    assert sqs_receive.install()
    try:
        with mock_aws():
            client = boto3.client("sqs", region_name="us-east-1")
            url = client.create_queue(QueueName="work")["QueueUrl"]
            for n in range(10):
                client.send_message(QueueUrl=url, MessageBody=f"m{n}")
            builds.clear()
            received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    finally:
        sqs_receive.uninstall()
    assert len(received) == 10
    assert builds == []


def test_install_is_a_no_op_on_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqs_receive.importlib.metadata, "version", lambda name: "0.0.0")
    assert not sqs_receive.install()
    assert not hasattr(sqs_models.SQSBackend.is_message_valid_based_on_retention_period, "_mm_retention_check_wrapper")
