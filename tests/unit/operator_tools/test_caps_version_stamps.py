"""`caps set` stamps the version it wrote on the capacity pool items (decision 121): the functions compare their
cached caps and configs with those stamps, so the change is applied at their next run, not when a cache ages out."""

from __future__ import annotations

from typing import Any

import pytest

from mm_capacity.config import VersionStamps, observed_versions
from mm_capacity.keys import ENV_POOL, POOL_PARTITION, challenge_pool_key
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY, capacity_parameter_name
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import NAMES, cli, output_json, waiting_run


def pool_item(deployed: Deployed, sort_key: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        deployed.client("dynamodb")
        .get_item(
            TableName=NAMES.capacity_table,
            Key={CAPACITY_TABLE_PARTITION_KEY: {"S": POOL_PARTITION}, CAPACITY_TABLE_SORT_KEY: {"S": sort_key}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return item


def test_a_challenge_caps_change_stamps_its_config_version_on_the_challenge_pool_item(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting_run(deployed, ROUTE_PLANNER, 1)  # the challenge pool item exists once a run waits
    assert cli("caps", "set", ROUTE_PLANNER, "--max-running", "3", "--yes", "--reason", "r", "--json") == 0
    document = output_json(capsys)
    item = pool_item(deployed, challenge_pool_key(ROUTE_PLANNER))
    assert item is not None
    assert observed_versions(item)[1] == document["version"]
    assert (document["stampedPoolItems"], document["stampError"]) == (1, None)


def test_an_environment_caps_change_stamps_every_existing_pool_item_and_creates_none(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting_run(deployed, ROUTE_PLANNER, 1)
    assert pool_item(deployed, ENV_POOL) is None  # no run admitted yet: no ENV item
    assert cli("caps", "set", "--environment", "--max-running", "9", "--yes", "--reason", "r") == 0
    assert "at their next run" in capsys.readouterr().out
    version = int(
        deployed.client("ssm").get_parameter(Name=capacity_parameter_name(deployed.plan.config.ssm_prefix))[
            "Parameter"
        ]["Version"]
    )
    item = pool_item(deployed, challenge_pool_key(ROUTE_PLANNER))
    assert item is not None
    assert observed_versions(item)[0] == version
    assert pool_item(deployed, ENV_POOL) is None  # a stamp never creates a half pool item


def test_a_forward_stamp_never_lowers_a_newer_version(deployed: Deployed) -> None:
    waiting_run(deployed, ROUTE_PLANNER, 1)
    stamps = VersionStamps(NAMES.capacity_table, lambda: deployed.client("dynamodb"))
    key = challenge_pool_key(ROUTE_PLANNER)
    assert stamps.stamp_forward([key], "configVersion", 5) == 1
    assert stamps.stamp_forward([key], "configVersion", 4) == 0  # a slower concurrent `caps set`
    assert stamps.pool_versions()[key] == (None, 5)
