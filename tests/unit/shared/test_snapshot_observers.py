"""Decision 121: the completion function's and the sweeper's dispatch hand their pool snapshot to their own loaders,
so after a stamped snapshot their caps and configs are served by version, with no SSM read per run."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from completion_lambda.wiring import CompletionDependencies
from mm_adapters import aws as aws_clients
from mm_capacity.records import PoolState
from mm_capacity.store import ENV_POOL, PoolSnapshot, challenge_pool_key
from mm_contracts.settings import CompletionSettings, TimeoutSweeperSettings
from sweeper_lambda.wiring import SweeperDependencies
from tests.conftest import Clock
from tests.unit.challenge.helpers import config_document

CAPS = "/mm-processor/test/capacity"
PREFIX = "/mm-processor/test/challenges"
CHALLENGE = "11111111-1111-4111-8111-111111111111"


def stamped_snapshot(caps_version: int, config_version: int) -> PoolSnapshot:
    env = replace(PoolState.empty(ENV_POOL), caps_version=caps_version)
    pool = PoolState.empty(challenge_pool_key(CHALLENGE))
    pool = replace(pool, caps_version=caps_version, config_version=config_version)
    return PoolSnapshot(env=env, challenges={CHALLENGE: pool}, phases={})


class CountingSsm:
    def __init__(self) -> None:
        self._client = aws_clients.client("ssm")
        self.reads: list[str] = []

    def get_parameter(self, **kwargs: Any) -> Any:
        self.reads.append(kwargs["Name"])
        return self._client.get_parameter(**kwargs)


def put(name: str, document: dict[str, Any]) -> int:
    response = aws_clients.client("ssm").put_parameter(
        Name=name, Value=json.dumps(document), Type="String", Overwrite=True
    )
    return int(response["Version"])


COMMON = {
    "environment_name": "test",
    "status_table_name": "mm-test-status",
    "capacity_table_name": "mm-test-capacity",
    "capacity_parameter_name": CAPS,
    "challenge_config_parameter_prefix": PREFIX,
}


def completion_deps() -> Any:
    return CompletionDependencies(CompletionSettings(**COMMON, submission_api_url="https://api.example/v5"))


def sweeper_deps() -> Any:
    return SweeperDependencies(
        TimeoutSweeperSettings(
            **COMMON, completion_function_name="mm-test-completion", challenge_queue_name_template="q-{challenge_id}"
        )
    )


@pytest.mark.parametrize("deps", [completion_deps, sweeper_deps], ids=["completion", "sweeper"])
def test_a_stamped_snapshot_serves_the_caps_and_the_config_by_version(aws: None, deps: Any, monkeypatch: Any) -> None:
    built = deps()
    ssm = CountingSsm()
    clock = Clock(0)
    caps_loader = built.environment_capacity.__self__
    configs = built.config_source
    for loader in (caps_loader, configs):
        monkeypatch.setattr(loader, "_client", ssm)
        monkeypatch.setattr(loader, "_clock", clock)
    caps_version = put(CAPS, {"maxRunningTasks": 5})
    config_version = put(f"{PREFIX}/{CHALLENGE}/config", config_document(challengeId=CHALLENGE))
    for _ in range(10):  # ten dispatches ten minutes apart, each after its pool Query
        built.snapshot_observer(stamped_snapshot(caps_version, config_version))
        built.environment_capacity()
        configs.get(CHALLENGE)
        clock.advance(600)
    assert ssm.reads == [f"{CAPS}:{caps_version}", f"{PREFIX}/{CHALLENGE}/config:{config_version}"]
