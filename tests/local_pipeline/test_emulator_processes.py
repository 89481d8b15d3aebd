"""moto runs in its own processes (local_pipeline.emulator, decision 115): requests reach them directly or through
the engine's front door, are counted by caller, service and operation across the split, go straight to their
service's moto app, and the processes die with the engine."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from local_pipeline.awsenv import LocalAws
from local_pipeline.emulator.counting import RequestCounter, operation_of
from local_pipeline.emulator.server import EmulatorApp
from tests.local_pipeline.clients import loopback_client

REPO_ROOT = Path(__file__).resolve().parents[2]


def _auth(service: str, key: str = "local-example-router") -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )


def test_calls_are_counted_by_caller_service_and_operation_across_the_processes() -> None:
    with LocalAws() as aws:
        ddb = aws.client("dynamodb", "local-example-completion")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
        sqs = aws.client("sqs", "local-example-completion")
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        sns = aws.client("sns", "local-example-router")
        topic = sns.create_topic(Name="submissions")["TopicArn"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        sns.publish(TopicArn=topic, Message="m")  # SNS -> SQS inside the services process
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue)["Messages"]] == ["m"]
        operator = loopback_client("dynamodb", aws.endpoint, "local-operator")  # one endpoint for every service
        assert operator.list_tables()["TableNames"] == ["t"]
        aws.counter.add("local-fargate", "ecs", operation="RunTask")  # what a fake in the engine counts

        expected = {
            "local-example-completion": {
                "dynamodb": {"CreateTable": 1, "PutItem": 1},
                "sqs": {"CreateQueue": 1, "GetQueueAttributes": 1, "ReceiveMessage": 1},
            },
            "local-example-router": {"sns": {"CreateTopic": 1, "Publish": 1, "Subscribe": 1}},
            "local-fargate": {"ecs": {"RunTask": 1}},
            "local-operator": {"dynamodb": {"ListTables": 1}},
        }
        assert aws.counter.by_caller_operation() == expected
        assert aws.counter.by_caller()["local-example-completion"] == {"dynamodb": 2, "sqs": 3}
        assert aws.counter.snapshot()[("local-example-router", "sns")] == 3
        env = aws.credentials_env("local-example-router")
        assert env["AWS_ENDPOINT_URL_DYNAMODB"] != env["AWS_ENDPOINT_URL"] != aws.endpoint
    assert aws.counter.by_caller_operation() == expected  # read after stop: the last counts are kept


def test_the_engine_reuses_one_client_per_service_and_key() -> None:
    with LocalAws() as aws:
        assert aws.client("s3") is aws.client("s3")
        assert aws.client("s3") is not aws.client("s3", "local-esm")
        assert aws.client("dynamodb").meta.endpoint_url == aws.endpoints["dynamodb"]


def _request(app: EmulatorApp, service: str, target: str, body: dict[str, Any]) -> Any:
    return Client(app).post(
        "/",
        data=json.dumps(body),
        headers={
            "Authorization": _auth(service),
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.0",
        },
    )


def test_each_request_goes_straight_to_its_services_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's host lookup (a scan of its module directory and every backend's URL patterns) runs once per
    service and region, not once per request."""
    from moto import mock_aws
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lookups: list[str | None] = []
    moto_lookup = DomainDispatcherApplication.get_backend_for_host

    def counted_lookup(self: DomainDispatcherApplication, host: str | None) -> Any:
        lookups.append(host)
        return moto_lookup(self, host)

    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", counted_lookup)
    with mock_aws():
        app = EmulatorApp(RequestCounter(), serialize=False)
        for n in range(20):
            assert _request(app, "sqs", "AmazonSQS.CreateQueue", {"QueueName": f"q{n}"}).status_code == 200
            assert _request(app, "dynamodb", "DynamoDB_20120810.ListTables", {}).status_code == 200
    assert lookups == ["sqs.us-east-1.amazonaws.com"]
    assert app.counter.by_caller_operation() == {
        "local-example-router": {"dynamodb": {"ListTables": 20}, "sqs": {"CreateQueue": 20}}
    }


@pytest.mark.parametrize(
    ("environ", "service", "operation"),
    [
        ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems"}, "dynamodb", "TransactWriteItems"),
        (
            {"CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8", "BODY": b"Action=Publish&X=1"},
            "sns",
            "Publish",
        ),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/functions/f/invocations"}, "lambda", "Invoke"),
        (
            {"PATH_INFO": "/service/GraniteServiceVersion20100801/operation/PutMetricData"},
            "monitoring",
            "PutMetricData",
        ),
        ({"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/aws/lambda/key"}, "s3", "PutObject"),
        ({"REQUEST_METHOD": "GET", "PATH_INFO": "/bucket"}, "s3", "ListObjects"),
    ],
)
def test_the_operation_is_read_from_what_the_protocol_carries(
    environ: dict[str, Any], service: str, operation: str
) -> None:
    body = environ.pop("BODY", b"")
    environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), **environ}
    assert operation_of(environ, service) == operation
    assert environ["wsgi.input"].read() == body  # put back for moto


_PARENT = """
import sys, time
from local_pipeline.emulator.processes import EmulatorProcess
process = EmulatorProcess("services")
process.start()
print(process.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as stat:  # a zombie (exited, not yet reaped by init) is gone too
            if stat.read().split()[2] == "Z":
                return True
        time.sleep(0.05)
    return False


def test_an_emulator_process_dies_with_its_parent_even_when_the_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        assert _gone(child, within=10)
    finally:
        if parent.poll() is None:
            parent.kill()
