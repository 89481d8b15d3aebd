"""`mm-processor dlq replay-router`: the router failure bucket's records into the router (decisions 055, 110), each
object tagged `mm-replayed` once its events went in; the router's synchronous invoke stubbed (moto runs Lambda
code only in Docker)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.response import StreamingBody

from operator_tools import dlq
from operator_tools.clients import AwsClients
from operator_tools.context import EXIT_FAILED, EXIT_OK
from operator_tools.dead_letters.router_failures import INVOKE_TIMEOUT_MARGIN_SECONDS, REPLAYED_TAG, router_client
from tests.unit.operator_tools.conftest import Deployed
from tests.unit.operator_tools.dead_letter_helpers import StubbedClients, run_command
from tests.unit.router.test_failure_records import msk_event, s3_failure_object

REASON = ["--reason", "SNS access fixed", "--yes"]


def _replay(deployed: Deployed, capsys: pytest.CaptureFixture[str], clients: Any, *argv: str) -> tuple[int, Any]:
    return run_command(dlq.add_arguments, dlq.run, capsys, ["replay-router", *argv, *REASON], clients)


def _put(deployed: Deployed, key: str, body: str) -> None:
    deployed.client("s3").put_object(Bucket=deployed.resources.router_failure_bucket, Key=key, Body=body.encode())


def _tags(deployed: Deployed, key: str) -> dict[str, str]:
    tags = deployed.client("s3").get_object_tagging(Bucket=deployed.resources.router_failure_bucket, Key=key)
    return {t["Key"]: t["Value"] for t in tags["TagSet"]}


def _router_answers(clients: StubbedClients, deployed: Deployed, event: dict[str, Any], **response: Any) -> None:
    payload = StreamingBody(io.BytesIO(b"null"), 4)
    clients.stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": payload, **response},
        {
            "FunctionName": deployed.plan.names.router_function,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(event).encode(),
        },
    )


def test_each_record_goes_into_the_router_once_and_every_object_is_marked(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    event = msk_event(1000, 1001)
    _put(deployed, "aws/lambda/a-1", s3_failure_object(event))
    _put(deployed, "aws/lambda/a-2", s3_failure_object(event))  # the same batch stored twice
    clients = StubbedClients(deployed, "lambda", {"invoke"})
    _router_answers(clients, deployed, event)  # one invoke: the second object's records already went in
    status, document = _replay(deployed, capsys, clients)
    assert status == EXIT_OK
    clients.stubber.assert_no_pending_responses()
    assert (document["replayedObjects"], document["events"], document["records"]) == (2, 1, 2)
    assert REPLAYED_TAG in _tags(deployed, "aws/lambda/a-1")
    assert REPLAYED_TAG in _tags(deployed, "aws/lambda/a-2")
    # A second replay finds nothing left to do
    status, again = _replay(deployed, capsys, StubbedClients(deployed, "lambda", {"invoke"}))
    assert status == EXIT_OK
    assert (again["objects"], again["skippedObjects"], again["events"]) == (0, 2, 0)


def test_an_object_the_router_failed_on_or_without_its_payload_stays_unmarked(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    event = msk_event(2000)
    _put(deployed, "aws/lambda/b-1", s3_failure_object(event))
    _put(deployed, "aws/lambda/b-2", s3_failure_object(None, condition="MaximumPayloadSizeExceeded"))
    clients = StubbedClients(deployed, "lambda", {"invoke"})
    _router_answers(clients, deployed, event, FunctionError="Unhandled")
    status, document = _replay(deployed, capsys, clients)
    assert status == EXIT_FAILED
    assert (document["replayedObjects"], document["failedObjects"]) == (0, 2)
    assert "the router failed: Unhandled" in document["errors"][0]
    assert "from Kafka" in document["errors"][1]
    assert REPLAYED_TAG not in _tags(deployed, "aws/lambda/b-1")
    assert REPLAYED_TAG not in _tags(deployed, "aws/lambda/b-2")


def test_a_prefix_and_a_limit_bound_the_replay(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    _put(deployed, "aws/lambda/x/1", s3_failure_object(msk_event(1)))
    _put(deployed, "aws/lambda/x/2", s3_failure_object(msk_event(2)))
    _put(deployed, "aws/lambda/y/1", s3_failure_object(msk_event(3)))
    clients = StubbedClients(deployed, "lambda", {"invoke"})
    _router_answers(clients, deployed, msk_event(1))
    status, document = _replay(deployed, capsys, clients, "--prefix", "aws/lambda/x/", "--limit", "1")
    assert status == EXIT_OK
    assert document["replayedObjects"] == 1
    assert REPLAYED_TAG in _tags(deployed, "aws/lambda/x/1")
    assert REPLAYED_TAG not in _tags(deployed, "aws/lambda/x/2")


def test_an_object_that_cannot_be_tagged_is_counted_failed_and_the_replay_goes_on(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    full, other = "aws/lambda/c-1", "aws/lambda/c-2"
    _put(deployed, full, s3_failure_object(msk_event(3000)))
    _put(deployed, other, s3_failure_object(msk_event(3001)))
    bucket = deployed.resources.router_failure_bucket
    ten = [{"Key": f"team-{i}", "Value": str(i)} for i in range(10)]  # S3's most tags per object
    deployed.client("s3").put_object_tagging(Bucket=bucket, Key=full, Tagging={"TagSet": ten})
    deployed.client("s3").put_object_tagging(Bucket=bucket, Key=other, Tagging={"TagSet": ten[:2]})
    clients = StubbedClients(deployed, "lambda", {"invoke"})
    _router_answers(clients, deployed, msk_event(3000))
    _router_answers(clients, deployed, msk_event(3001))
    status, document = _replay(deployed, capsys, clients)
    assert status == EXIT_FAILED  # not 2: the replay went on past the object it could not mark
    assert (document["replayedObjects"], document["failedObjects"], document["events"]) == (1, 1, 2)
    assert document["errors"][0].startswith(f"{full}: replayed but not marked")
    clients.stubber.assert_no_pending_responses()
    assert _tags(deployed, full) == {t["Key"]: t["Value"] for t in ten}  # untouched
    kept = _tags(deployed, other)
    assert kept.pop(REPLAYED_TAG)  # marked, and its own tags kept
    assert kept == {"team-0": "0", "team-1": "1"}


def test_the_router_is_invoked_once_with_a_read_timeout_beyond_its_own(deployed: Deployed) -> None:
    plan = deployed.plan
    client = router_client(plan, AwsClients(region=plan.config.region))
    assert client.meta.config.read_timeout == plan.config.router.timeout_seconds + INVOKE_TIMEOUT_MARGIN_SECONDS
    assert client.meta.config.read_timeout > plan.config.router.timeout_seconds
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}  # sent once, never retried
    # the tools' other clients keep their defaults
    assert AwsClients(region=plan.config.region).client("lambda").meta.config.read_timeout == 20
