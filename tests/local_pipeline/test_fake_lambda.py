"""The fake Lambda endpoint speaks Invoke well enough for botocore: an asynchronous invocation is accepted
(202) and its payload handed on; what Lambda would refuse is refused with Lambda's error codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_pipeline.lambda_endpoint import FakeLambda, function_name_of
from tests.local_pipeline.clients import loopback_client

FUNCTION = "mm-example-completion"
ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"


@pytest.fixture
def delivered() -> list[bytes]:
    return []


@pytest.fixture
def fake(delivered: list[bytes]) -> Iterator[FakeLambda]:
    endpoint = FakeLambda().start()
    endpoint.register(FUNCTION, delivered.append)
    yield endpoint
    endpoint.stop()


@pytest.fixture
def client(fake: FakeLambda) -> Any:
    return loopback_client("lambda", fake.endpoint, "local-timeout-sweeper")


def test_an_event_invocation_is_accepted_and_its_payload_handed_on(
    client: Any, fake: FakeLambda, delivered: list[bytes]
) -> None:
    event = {
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "resources": ["arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/abc"],
        "detail": {"lastStatus": "STOPPED"},
    }
    response = client.invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=json.dumps(event).encode())
    assert response["StatusCode"] == 202
    assert [json.loads(p) for p in delivered] == [event]
    assert fake.invocations == [
        {"function": FUNCTION, "type": "Event", "caller": "local-timeout-sweeper", "resources": event["resources"]}
    ]
    assert fake.counter.by_caller() == {"local-timeout-sweeper": {"lambda": 1}}


@pytest.mark.parametrize("reference", [ARN, f"{FUNCTION}:$LATEST", f"123456789012:function:{FUNCTION}"])
def test_the_function_may_be_named_by_arn_or_with_latest(client: Any, reference: str, delivered: list[bytes]) -> None:
    assert client.invoke(FunctionName=reference, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    assert delivered == [b"{}"]


def test_dry_run_checks_without_delivering(client: Any, delivered: list[bytes]) -> None:
    assert client.invoke(FunctionName=FUNCTION, InvocationType="DryRun")["StatusCode"] == 204
    assert delivered == []


@pytest.mark.parametrize(
    ("request_kwargs", "code"),
    [
        ({"FunctionName": "mm-example-other", "InvocationType": "Event"}, "ResourceNotFoundException"),
        ({"FunctionName": FUNCTION, "InvocationType": "Event", "Qualifier": "7"}, "ResourceNotFoundException"),
        ({"FunctionName": FUNCTION, "InvocationType": "RequestResponse"}, "InvalidParameterValueException"),
        (
            {"FunctionName": FUNCTION, "InvocationType": "Event", "Payload": b"not json"},
            "InvalidRequestContentException",
        ),
        ({"FunctionName": FUNCTION, "InvocationType": "Event", "Payload": b"[" * 300_000}, "RequestTooLargeException"),
    ],
)
def test_what_lambda_refuses_is_refused_with_its_error_code(
    client: Any, request_kwargs: dict[str, Any], code: str, delivered: list[bytes]
) -> None:
    with pytest.raises(ClientError) as raised:
        client.invoke(**request_kwargs)
    assert raised.value.response["Error"]["Code"] == code
    assert delivered == []


def test_function_name_of_every_reference_form() -> None:
    assert {function_name_of(r) for r in (FUNCTION, ARN, f"{ARN}:3", f"{FUNCTION}:prod")} == {FUNCTION}


def test_an_invoke_on_the_emulators_endpoint_reaches_the_fake_lambda(delivered: list[bytes]) -> None:
    """One `--endpoint-url` for every service (the operator tool's): an Invoke of a function the fake Lambda serves
    goes to it, counted once; any other Lambda call is still moto's."""
    from local_pipeline.awsenv import LocalAws

    with LocalAws() as aws:
        fake = FakeLambda(counter=aws.counter).start()
        try:
            fake.register(FUNCTION, delivered.append)
            aws.route_lambda_invocations(fake)
            client = loopback_client("lambda", aws.endpoint, "local-operator")
            response = client.invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=b'{"detail": {}}')
            assert response["StatusCode"] == 202
            assert delivered == [b'{"detail": {}}']
            assert aws.counter.by_caller()["local-operator"] == {"lambda": 1}
            with pytest.raises(ClientError) as missing:
                client.invoke(FunctionName="mm-example-router", InvocationType="Event", Payload=b"{}")
            assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"  # moto: no such function
            aws.unroute_lambda_invocations(fake)
            with pytest.raises(ClientError):
                client.invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=b"{}")
            assert len(delivered) == 1
        finally:
            fake.stop()
