"""Shared fixtures: an isolated fake AWS account (moto) and no real credentials or network, ever."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.clock import VirtualClock as Clock  # the one test clock (tests/fakes); `Clock` for its importers

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


CAPACITY_TABLE = "mm-test-capacity"


def create_capacity_table(name: str = CAPACITY_TABLE) -> str:
    """The capacity table (decision 093: `pk` + `sk`, TTL `expiresAt`), in moto, as the stacks define it."""
    from mm_adapters import aws as aws_clients
    from mm_capacity.store import CAPACITY_TABLE_TTL, capacity_table_definition

    ddb = aws_clients.client("dynamodb")
    ddb.create_table(**capacity_table_definition(name))
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=CAPACITY_TABLE_TTL)
    return name


@pytest.fixture
def capacity_table(aws: None) -> str:
    """The capacity table beside the status table (the same moto account)."""
    return create_capacity_table()


@pytest.fixture
def challenge_table(aws: None) -> str:
    from mm_adapters import aws as aws_clients
    from mm_contracts.tables import challenge_table_definition

    name = "mm-test-challenges"
    aws_clients.client("dynamodb").create_table(**challenge_table_definition(name))
    return name


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lambda_context() -> Any:
    from tests.builders import FakeLambdaContext

    return FakeLambdaContext()
