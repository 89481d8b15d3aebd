"""Deliveries in the services emulator (local_pipeline.emulator.services_delivery) answer what moto answers: SQS
sends to standard and FIFO queues (deduplication, groups, moto's errors), SNS -> SQS, EventBridge -> SQS with an
input transformer; without a pass over the queue per message sent, and with each input path parsed once."""

from __future__ import annotations

import json
from typing import Any

import boto3
import jsonpath_ng.ext
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sqs.models import Queue

from local_pipeline.emulator import services_delivery

INPUT_PATHS = {"id": "$.detail.submissionId", "phase": "$.detail.phase", "absent": "$.detail.nothing"}
INPUT_TEMPLATE = '{"submission": "<id>", "phase": "<phase>", "absent": "<absent>"}'


def _send(client: Any, **kwargs: Any) -> Any:
    try:
        answer = client.send_message(**kwargs)
    except ClientError as error:
        return ("error", error.response["Error"]["Code"], error.response["Error"]["Message"])
    return sorted(k for k in answer if k != "ResponseMetadata")


def _bodies(client: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _answers() -> dict[str, Any]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        answers: dict[str, Any] = {}
        plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
        answers["plain"] = [_send(sqs, QueueUrl=plain, MessageBody=f"m{n}") for n in range(3)]
        answers["plain too long"] = _send(sqs, QueueUrl=plain, MessageBody="x" * 1_100_000)
        for dedup in ("true", "false"):
            url = sqs.create_queue(
                QueueName=f"fifo-{dedup}.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": dedup}
            )["QueueUrl"]
            answers[f"fifo {dedup}"] = [
                _send(sqs, QueueUrl=url, MessageBody="same", MessageGroupId="g"),
                _send(sqs, QueueUrl=url, MessageBody="same", MessageGroupId="g"),
                _send(sqs, QueueUrl=url, MessageBody="same", MessageGroupId="g", MessageDeduplicationId="d1"),
                _send(sqs, QueueUrl=url, MessageBody="other", MessageGroupId="g", MessageDeduplicationId="d1"),
                _send(sqs, QueueUrl=url, MessageBody="no group"),
                _send(sqs, QueueUrl=url, MessageBody="delayed", MessageGroupId="g", DelaySeconds=5),
            ]
            answers[f"fifo {dedup} bodies"] = _bodies(sqs, url)
        answers["plain bodies"] = sorted(_bodies(sqs, plain))
        answers["plain attributes"] = {
            k: v
            for k, v in sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=["All"])["Attributes"].items()
            if "Timestamp" not in k
        }

        sns = boto3.client("sns", region_name="us-east-1")
        topic = sns.create_topic(Name="submissions")["TopicArn"]
        fanned = sqs.create_queue(QueueName="fanned")["QueueUrl"]
        fanned_arn = sqs.get_queue_attributes(QueueUrl=fanned, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=fanned_arn, Attributes={"RawMessageDelivery": "true"})
        sns.publish_batch(
            TopicArn=topic, PublishBatchRequestEntries=[{"Id": str(n), "Message": f"s{n}"} for n in range(4)]
        )
        answers["sns"] = sorted(_bodies(sqs, fanned))

        events = boto3.client("events", region_name="us-east-1")
        routed = sqs.create_queue(QueueName="routed")["QueueUrl"]
        routed_arn = sqs.get_queue_attributes(QueueUrl=routed, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="scored", EventPattern=json.dumps({"source": ["mm"]}))
        events.put_targets(
            Rule="scored",
            Targets=[
                {
                    "Id": "q",
                    "Arn": routed_arn,
                    "InputTransformer": {"InputPathsMap": INPUT_PATHS, "InputTemplate": INPUT_TEMPLATE},
                }
            ],
        )
        for n in range(3):
            events.put_events(
                Entries=[
                    {
                        "Source": "mm",
                        "DetailType": "scored",
                        "Detail": json.dumps({"submissionId": f"sub-{n}", "phase": "SYSTEM"}),
                    }
                ]
            )
        answers["events"] = sorted(_bodies(sqs, routed))
        return answers


def test_the_answers_are_motos_own() -> None:
    unwrapped = _answers()
    assert services_delivery.install()
    try:
        assert _answers() == unwrapped
    finally:
        services_delivery.uninstall()
    assert unwrapped["fifo true"][1] == unwrapped["fifo true"][0]  # deduplicated by content: same answer keys
    assert unwrapped["fifo true bodies"] == ["same", "same"]  # the second by content, "other" by its id
    assert unwrapped["fifo false"][0][0] == "error"  # no deduplication id on a queue without content dedup
    assert unwrapped["plain too long"][0] == "error"
    assert len(unwrapped["events"]) == 3
    assert '"submission": "sub-0"' in unwrapped["events"][0]


def test_a_send_does_not_count_the_queues_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto builds every attribute of the queue, its message counts included, for each message sent."""
    counted: list[str] = []
    moto_count: Any = Queue.__dict__["approximate_number_of_messages"]

    def counting(self: Queue) -> int:
        counted.append(self.name)
        return int(moto_count.fget(self))

    monkeypatch.setattr(Queue, "approximate_number_of_messages", property(counting))
    assert services_delivery.install()
    try:
        with mock_aws():
            sqs: Any = boto3.client("sqs", region_name="us-east-1")
            fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
            for name, attributes in (("plain", {}), ("fifo.fifo", fifo)):
                url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
                extra = {"MessageGroupId": "g"} if attributes else {}
                for n in range(5):
                    sqs.send_message(QueueUrl=url, MessageBody=f"m{n}", **extra)
            assert counted == []
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            assert counted  # outside a send, moto's attributes as they are
    finally:
        services_delivery.uninstall()


def test_an_input_path_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[str] = []
    parser_class = jsonpath_ng.ext.parser.ExtendedJsonPathParser
    moto_parse = parser_class.parse

    def counted(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        parses.append(path)
        return moto_parse(self, path, *args, **kwargs)

    monkeypatch.setattr(parser_class, "parse", counted)
    assert services_delivery.install()
    try:
        _answers()
    finally:
        services_delivery.uninstall()
    assert sorted(parses) == sorted(INPUT_PATHS.values())  # moto: each path once per event (3 events)


def test_install_is_a_no_op_on_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services_delivery.importlib.metadata, "version", lambda name: "0.0.0")
    assert not services_delivery.install()
    assert not hasattr(jsonpath_ng.ext.parse, "_mm_delivery_wrapper")
