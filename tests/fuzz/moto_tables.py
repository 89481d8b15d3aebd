"""moto for the fuzz: the status and capacity tables, emptied between inputs, and roomy capacity caps.

Usable outside pytest (the long run in `benchmarks/fuzz.py`): `isolated_aws` sets the fake account itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

# The capacity table and caps of the fuzzed functions: roomy, so every valid run is admitted and launched at once
# (admission itself is the capacity tests' subject; here a cap must never hide a launch the input asks for).
CAPACITY_TABLE = "mm-fuzz-capacity"
ROOMY_CAPACITY = {"maxRunningTasks": 5000, "runTaskPerSecond": 100}
ROOMY_CHALLENGE_CAPACITY = {"maxRunningTasks": 1000}


def capacity_parameter() -> str:
    from mm_contracts.names import capacity_parameter_name

    return capacity_parameter_name()


@contextlib.contextmanager
def isolated_aws() -> Iterator[str]:
    """A moto account with the status table; yields its name. Usable outside pytest (the benchmark)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "MMProcessor",
    }.items():
        os.environ.setdefault(name, value)
    from moto import mock_aws

    from mm_adapters import aws as aws_clients
    from mm_capacity.store import capacity_table_definition
    from mm_contracts.tables import status_table_definition

    aws_clients.reset_clients()
    with mock_aws():
        name = "mm-fuzz-status"
        aws_clients.client("dynamodb").create_table(**status_table_definition(name))
        aws_clients.client("dynamodb").create_table(**capacity_table_definition(CAPACITY_TABLE))
        yield name
    aws_clients.reset_clients()


def empty_tables(table: str) -> list[dict[str, Any]]:
    """Every item of the table (wire form), then none: the next input starts from a clean table (and a clean
    capacity table: no slot or queue entry of an earlier input)."""
    from mm_adapters import aws as aws_clients
    from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY, STATUS_TABLE_PARTITION_KEY

    ddb = aws_clients.client("dynamodb")

    items: list[dict[str, Any]] = ddb.scan(TableName=table).get("Items", [])
    for item in items:
        ddb.delete_item(TableName=table, Key={STATUS_TABLE_PARTITION_KEY: item[STATUS_TABLE_PARTITION_KEY]})
    keys = (CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY)
    for item in ddb.scan(TableName=CAPACITY_TABLE).get("Items", []):
        ddb.delete_item(TableName=CAPACITY_TABLE, Key={key: item[key] for key in keys})
    return items
