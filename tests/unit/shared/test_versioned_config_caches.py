"""Decision 121: the caps and challenge-config loaders cache by SSM parameter version (moto keeps real versions).

A version observed in a pool item decides: the cached document of that version is used whatever its age, another
version is read once, by its version; without a recent observation the TTL decides, as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_capacity.config import (
    CAPS_VERSION_ATTRIBUTE,
    CONFIG_VERSION_ATTRIBUTE,
    EnvironmentCapacityLoader,
    SnapshotObserver,
    observed_versions,
)
from mm_contracts.names import challenge_config_parameter_name
from tests.conftest import Clock
from tests.unit.challenge.helpers import CHALLENGE_ID, PARAMETER_NAME, config_document

CAPS = "/mm-processor/test/capacity"


class CountingSsm:
    """moto's SSM client, with the names `get_parameter` was called with."""

    def __init__(self) -> None:
        self._client = aws_clients.client("ssm")
        self.reads: list[str] = []

    def get_parameter(self, **kwargs: Any) -> Any:
        self.reads.append(kwargs["Name"])
        return self._client.get_parameter(**kwargs)

    def put(self, name: str, document: dict[str, Any]) -> int:
        response = self._client.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)
        return int(response["Version"])


@pytest.fixture
def ssm(aws: None) -> CountingSsm:
    return CountingSsm()


def caps_loader(ssm: CountingSsm, clock: Clock) -> EnvironmentCapacityLoader:
    return EnvironmentCapacityLoader(CAPS, 60, ssm, clock=clock)


def test_the_caps_of_the_observed_version_are_used_whatever_their_age(ssm: CountingSsm) -> None:
    clock = Clock(0)
    loader = caps_loader(ssm, clock)
    version = ssm.put(CAPS, {"maxRunningTasks": 10})
    assert loader.get(observed_version=version).max_running_tasks == 10
    for _ in range(20):  # 20 minutes of warm runs, each observing the same version: no SSM read
        clock.advance(59)
        assert loader.get(observed_version=version).max_running_tasks == 10
    assert ssm.reads == [f"{CAPS}:{version}"]
    assert loader.cached_version == version


def test_a_new_caps_version_observed_is_read_once_by_its_version(ssm: CountingSsm) -> None:
    clock = Clock(0)
    loader = caps_loader(ssm, clock)
    first = ssm.put(CAPS, {"maxRunningTasks": 10})
    loader.get(observed_version=first)
    second = ssm.put(CAPS, {"maxRunningTasks": 3})
    clock.advance(1)
    assert loader.get(observed_version=first).max_running_tasks == 10  # the pool item still names the first
    loader.observe(second)  # the sweeper (or `caps set`) stamped the pool item; a dispatch read it
    assert loader.get().max_running_tasks == 3
    assert loader.get().max_running_tasks == 3
    assert ssm.reads == [f"{CAPS}:{first}", f"{CAPS}:{second}"]


def test_without_a_recent_observation_the_caps_expire_as_before(ssm: CountingSsm) -> None:
    clock = Clock(0)
    loader = caps_loader(ssm, clock)
    version = ssm.put(CAPS, {"maxRunningTasks": 10})
    loader.get(observed_version=version)
    ssm.put(CAPS, {"maxRunningTasks": 4})
    clock.advance(61)  # the observation is as old as the TTL: it no longer vouches for the cache
    assert loader.get().max_running_tasks == 4
    assert ssm.reads == [f"{CAPS}:{version}", CAPS]


def test_an_item_without_a_version_keeps_the_ttl(ssm: CountingSsm) -> None:
    clock = Clock(0)
    loader = caps_loader(ssm, clock)
    ssm.put(CAPS, {"maxRunningTasks": 10})
    loader.observe(None)
    loader.get()
    clock.advance(61)
    loader.get(observed_version=None)
    assert ssm.reads == [CAPS, CAPS]


def test_a_version_ssm_no_longer_has_falls_back_to_the_latest(ssm: CountingSsm) -> None:
    loader = caps_loader(ssm, Clock(0))
    ssm.put(CAPS, {"maxRunningTasks": 7})
    assert loader.get(observed_version=99).max_running_tasks == 7
    assert ssm.reads == [f"{CAPS}:99", CAPS]


def test_a_forced_read_newer_than_the_pool_item_is_kept_while_young(ssm: CountingSsm) -> None:
    clock = Clock(0)
    loader = caps_loader(ssm, clock)
    first = ssm.put(CAPS, {"maxRunningTasks": 10})
    loader.get(observed_version=first)
    ssm.put(CAPS, {"maxRunningTasks": 2})
    assert loader.get(force_refresh=True, observed_version=first).max_running_tasks == 2  # latest, not `first`
    clock.advance(30)
    assert loader.get(observed_version=first).max_running_tasks == 2  # the pool item lags: no flip back
    assert ssm.reads == [f"{CAPS}:{first}", CAPS]


def test_a_config_of_the_observed_version_is_used_whatever_its_age(ssm: CountingSsm) -> None:
    clock = Clock(0)
    loader = ChallengeConfigLoader(challenge_config_parameter_name, 300, ssm, clock=clock)
    first = ssm.put(PARAMETER_NAME, config_document(timeoutSeconds=900))
    assert loader.get(CHALLENGE_ID, observed_version=first).timeout_seconds == 900
    clock.advance(3600)
    loader.observe(CHALLENGE_ID, first)
    assert loader.get(CHALLENGE_ID).timeout_seconds == 900
    second = ssm.put(PARAMETER_NAME, config_document(timeoutSeconds=600))
    assert loader.get(CHALLENGE_ID, observed_version=second).timeout_seconds == 600
    assert loader.version_of(CHALLENGE_ID) == second
    assert ssm.reads == [f"{PARAMETER_NAME}:{first}", f"{PARAMETER_NAME}:{second}"]


def test_observed_versions_reads_raw_and_plain_items() -> None:
    raw = {CAPS_VERSION_ATTRIBUTE: {"N": "4"}, CONFIG_VERSION_ATTRIBUTE: {"N": "12"}, "used": {"N": "1"}}
    assert observed_versions(raw) == (4, 12)
    assert observed_versions({CAPS_VERSION_ATTRIBUTE: 5}) == (5, None)
    assert observed_versions({}) == (None, None)


class _Pool:
    def __init__(self, caps_version: int | None = None, config_version: int | None = None) -> None:
        self.caps_version = caps_version
        self.config_version = config_version


class _Snapshot:
    def __init__(self, env: Any, challenges: dict[str, Any]) -> None:
        self.env = env
        self.challenges = challenges


def test_the_snapshot_observer_hands_both_versions_to_the_loaders(ssm: CountingSsm) -> None:
    clock = Clock(0)
    caps = caps_loader(ssm, clock)
    configs = ChallengeConfigLoader(challenge_config_parameter_name, 300, ssm, clock=clock)
    caps_version = ssm.put(CAPS, {"maxRunningTasks": 10})
    config_version = ssm.put(PARAMETER_NAME, config_document())
    SnapshotObserver(caps, configs)(
        _Snapshot(_Pool(caps_version), {CHALLENGE_ID: _Pool(config_version=config_version)})
    )
    caps.get()
    configs.get(CHALLENGE_ID)
    assert ssm.reads == [f"{CAPS}:{caps_version}", f"{PARAMETER_NAME}:{config_version}"]
    SnapshotObserver(caps, configs)(_Snapshot(object(), {CHALLENGE_ID: object()}))  # pool states without versions
