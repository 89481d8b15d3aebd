"""EnvironmentCapacityLoader: the caps parameter from SSM (moto), cached; a failure names the parameter."""

from __future__ import annotations

import json

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.challenge_config import ConfigErrorReason
from mm_capacity.config import CapacityConfigError, EnvironmentCapacityLoader
from tests.conftest import Clock

NAME = "/mm-processor/test/capacity"


def put(value: str) -> None:
    aws_clients.client("ssm").put_parameter(Name=NAME, Value=value, Type="String", Overwrite=True)


def test_the_caps_are_read_and_cached_until_they_expire(aws: None) -> None:
    clock = Clock(0)
    loader = EnvironmentCapacityLoader(NAME, 60, clock=clock)
    put(json.dumps({"maxRunningTasks": 10, "maxRunningVcpu": 8}))
    assert loader.get().max_running_tasks == 10
    put(json.dumps({"maxRunningTasks": 3}))
    clock.advance(59)
    assert loader.get().max_running_tasks == 10  # cached
    assert loader.get(force_refresh=True).max_running_tasks == 3
    put(json.dumps({"maxRunningTasks": 4}))
    clock.advance(60)
    assert loader.get().max_running_tasks == 4  # changed at run time, no redeploy


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, ConfigErrorReason.PARAMETER_MISSING),
        ("not json", ConfigErrorReason.NOT_JSON),
        ("[1]", ConfigErrorReason.NOT_JSON),
        (json.dumps({"maxRunningTasks": -1}), ConfigErrorReason.INVALID_FIELDS),
        (json.dumps({"maxRunningTask": 3}), ConfigErrorReason.INVALID_FIELDS),
    ],
    ids=["missing", "not-json", "not-an-object", "negative", "misspelt-field"],
)
def test_an_unusable_parameter_raises_naming_it(aws: None, value: str | None, reason: ConfigErrorReason) -> None:
    if value is not None:
        put(value)
    loader = EnvironmentCapacityLoader(NAME, 60, clock=Clock(0))
    with pytest.raises(CapacityConfigError) as raised:
        loader.get()
    assert raised.value.reason is reason
    assert raised.value.parameter_name == NAME
    assert NAME in str(raised.value)


def test_a_failed_refresh_drops_the_cached_caps(aws: None) -> None:
    clock = Clock(0)
    loader = EnvironmentCapacityLoader(NAME, 60, clock=clock)
    put(json.dumps({"maxRunningTasks": 10}))
    loader.get()
    put("broken")
    clock.advance(61)
    with pytest.raises(CapacityConfigError):
        loader.get()
    with pytest.raises(CapacityConfigError):
        loader.get()  # never served stale after a failure
