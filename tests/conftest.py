"""Shared fixtures: an isolated fake AWS account (moto) and no real credentials or network, ever."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# Before anything imports boto3: a fake account, a fixed region, no credential lookups, and no
# endpoint overrides leaking in from a developer's shell.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "MMProcessor",
        "POWERTOOLS_DEV": "false",
    }
)
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL") or n == "AWS_PROFILE"]:
    del os.environ[_name]


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto account for one test; cached boto3 clients are dropped before and after."""
    from moto import mock_aws

    from mm_adapters import aws as aws_clients

    aws_clients.reset_clients()
    with mock_aws():
        yield
    aws_clients.reset_clients()


@pytest.fixture
def status_table(aws: None) -> str:
    from mm_adapters import aws as aws_clients
    from mm_contracts.tables import STATUS_TABLE_TTL, status_table_definition

    name = "mm-test-status"
    ddb = aws_clients.client("dynamodb")
    ddb.create_table(**status_table_definition(name))
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=STATUS_TABLE_TTL)
    return name


@pytest.fixture
def challenge_table(aws: None) -> str:
    from mm_adapters import aws as aws_clients
    from mm_contracts.tables import challenge_table_definition

    name = "mm-test-challenges"
    aws_clients.client("dynamodb").create_table(**challenge_table_definition(name))
    return name


class Clock:
    """A controllable clock for leases, TTLs and token expiry."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lambda_context() -> Any:
    from tests.builders import FakeLambdaContext

    return FakeLambdaContext()
