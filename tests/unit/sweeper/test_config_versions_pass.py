"""Decision 121: the sweeper stamps the SSM versions of the caps and of each challenge's config on the capacity pool
items (moto), and a loader that observes them reads SSM only when a version changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from mm_adapters import aws as aws_clients
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_capacity.config import EnvironmentCapacityLoader, VersionStamps, observed_versions
from mm_capacity.keys import ENV_POOL, POOL_PARTITION, challenge_pool_key
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda.config_versions import ConfigVersionsPass
from sweeper_lambda.result import SweepResult
from sweeper_lambda.wiring import SweeperDependencies
from tests.conftest import Clock
from tests.unit.challenge.helpers import config_document

CAPS = "/mm-processor/test/capacity"
CONFIGS = "/mm-processor/test/challenges"
CHALLENGE_A = "11111111-1111-4111-8111-111111111111"
CHALLENGE_B = "22222222-2222-4222-8222-222222222222"


def config_name(challenge_id: str) -> str:
    return f"{CONFIGS}/{challenge_id}/config"


def put(name: str, document: dict[str, Any]) -> int:
    response = aws_clients.client("ssm").put_parameter(
        Name=name, Value=json.dumps(document), Type="String", Overwrite=True
    )
    return int(response["Version"])


def put_pool(table: str, sort_key: str, **numbers: int) -> None:
    item = {CAPACITY_TABLE_PARTITION_KEY: {"S": POOL_PARTITION}, CAPACITY_TABLE_SORT_KEY: {"S": sort_key}}
    item |= {name: {"N": str(value)} for name, value in numbers.items()}
    aws_clients.client("dynamodb").put_item(TableName=table, Item=item)


def versions(table: str) -> dict[str, tuple[int | None, int | None]]:
    return stamps(table).pool_versions()


def stamps(table: str) -> VersionStamps:
    return VersionStamps(table, lambda: aws_clients.client("dynamodb"))


def sync(table: str) -> Any:
    return stamps(table).sync(aws_clients.client("ssm"), CAPS, config_name)


@pytest.fixture
def pools(capacity_table: str) -> str:
    put_pool(capacity_table, ENV_POOL, used=1)
    put_pool(capacity_table, challenge_pool_key(CHALLENGE_A), used=1, waiting=2)
    put_pool(capacity_table, challenge_pool_key(CHALLENGE_B), waiting=1)
    put_pool(capacity_table, f"PHASE#{CHALLENGE_A}#SYSTEM", used=1)
    return capacity_table


def test_a_sweep_stamps_the_versions_on_the_env_and_challenge_pool_items_only(pools: str) -> None:
    caps = put(CAPS, {"maxRunningTasks": 5})
    config_a = put(config_name(CHALLENGE_A), config_document(challengeId=CHALLENGE_A))
    put(config_name(CHALLENGE_A), config_document(challengeId=CHALLENGE_A, timeoutSeconds=900))
    result = sync(pools)
    assert (result.stamped, result.raced) == (3, 0)
    assert versions(pools) == {
        ENV_POOL: (caps, None),
        challenge_pool_key(CHALLENGE_A): (caps, config_a + 1),
        challenge_pool_key(CHALLENGE_B): (caps, None),  # no config parameter: no stamp (its loader keeps the TTL)
    }
    assert sync(pools).stamped == 0  # nothing changed: nothing written
    phase = aws_clients.client("dynamodb").get_item(
        TableName=pools,
        Key={
            CAPACITY_TABLE_PARTITION_KEY: {"S": POOL_PARTITION},
            CAPACITY_TABLE_SORT_KEY: {"S": f"PHASE#{CHALLENGE_A}#SYSTEM"},
        },
    )["Item"]
    assert observed_versions(phase) == (None, None)


def test_a_change_is_stamped_by_the_next_sweep_and_a_deleted_parameter_unstamped(pools: str) -> None:
    put(CAPS, {"maxRunningTasks": 5})
    put(config_name(CHALLENGE_A), config_document(challengeId=CHALLENGE_A))
    sync(pools)
    caps = put(CAPS, {"maxRunningTasks": 2})  # a deploy or a console edit
    aws_clients.client("ssm").delete_parameter(Name=config_name(CHALLENGE_A))
    sync(pools)
    assert versions(pools)[challenge_pool_key(CHALLENGE_A)] == (caps, None)


def test_a_parameter_created_again_is_followed_though_its_version_restarts(pools: str) -> None:
    put_pool(pools, challenge_pool_key(CHALLENGE_A), configVersion=7)  # stamped before the parameter was deleted
    again = put(config_name(CHALLENGE_A), config_document(challengeId=CHALLENGE_A))
    sync(pools)
    assert versions(pools)[challenge_pool_key(CHALLENGE_A)][1] == again == 1


def test_a_concurrent_stamp_is_never_undone_by_the_sweep(pools: str, monkeypatch: pytest.MonkeyPatch) -> None:
    put(CAPS, {"maxRunningTasks": 5})
    sweep_stamps = stamps(pools)
    read = sweep_stamps.pool_versions

    def read_then_caps_set_stamps() -> dict[str, tuple[int | None, int | None]]:
        seen = read()
        stamps(pools).stamp_forward([challenge_pool_key(CHALLENGE_B)], "capsVersion", 9)  # `caps set` meanwhile
        return seen

    monkeypatch.setattr(sweep_stamps, "pool_versions", read_then_caps_set_stamps)
    result = sweep_stamps.sync(aws_clients.client("ssm"), CAPS, config_name)
    assert result.raced == 1
    assert versions(pools)[challenge_pool_key(CHALLENGE_B)][0] == 9


def test_no_stamp_creates_a_pool_item(capacity_table: str) -> None:
    put(CAPS, {"maxRunningTasks": 5})
    assert stamps(capacity_table).stamp_forward([challenge_pool_key(CHALLENGE_A)], "capsVersion", 1) == 0
    assert versions(capacity_table) == {}


def test_after_a_sweep_a_warm_loader_reads_ssm_only_when_a_version_changes(pools: str) -> None:
    """What the processor does with its pool item: observe, then get: one read per version, none per run."""
    reads: list[str] = []
    ssm = aws_clients.client("ssm")

    class Counting:
        def get_parameter(self, **kwargs: Any) -> Any:
            reads.append(kwargs["Name"])
            return ssm.get_parameter(**kwargs)

    clock = Clock(0)
    loader = EnvironmentCapacityLoader(CAPS, 60, Counting(), clock=clock)
    put(CAPS, {"maxRunningTasks": 5})
    sync(pools)
    for _ in range(30):  # 30 minutes of runs a minute apart
        caps_version, _ = versions(pools)[challenge_pool_key(CHALLENGE_A)]
        assert loader.get(observed_version=caps_version).max_running_tasks == 5
        clock.advance(60)
    changed = put(CAPS, {"maxRunningTasks": 8})
    sync(pools)
    caps_version, _ = versions(pools)[challenge_pool_key(CHALLENGE_A)]
    assert loader.get(observed_version=caps_version).max_running_tasks == 8
    assert reads == [f"{CAPS}:{changed - 1}", f"{CAPS}:{changed}"]


def settings(capacity_table: str, status_table: str = "mm-test-status") -> TimeoutSweeperSettings:
    return TimeoutSweeperSettings(
        environment_name="test",
        status_table_name=status_table,
        completion_function_name="mm-test-completion",
        capacity_table_name=capacity_table,
        capacity_parameter_name=CAPS,
        challenge_config_parameter_prefix=CONFIGS,
        challenge_queue_name_template="mm-test-ch-{challenge_id}",
    )


def test_the_sweepers_pass_stamps_and_its_own_loaders_observe(pools: str) -> None:
    caps = put(CAPS, {"maxRunningTasks": 5})
    config_a = put(config_name(CHALLENGE_A), config_document(challengeId=CHALLENGE_A))
    deps = SweeperDependencies(settings(pools))
    deps.config_versions().run(0.0, SweepResult())
    assert versions(pools)[challenge_pool_key(CHALLENGE_A)] == (caps, config_a)
    caps_loader = deps.environment_capacity.__self__  # type: ignore[attr-defined]
    assert isinstance(caps_loader, EnvironmentCapacityLoader)
    assert isinstance(deps.config_source, ChallengeConfigLoader)
    caps_loader.get()
    deps.config_source.get(CHALLENGE_A)
    assert (caps_loader.cached_version, deps.config_source.version_of(CHALLENGE_A)) == (caps, config_a)


def test_a_pass_with_plain_callables_observes_nothing_and_still_stamps(pools: str) -> None:
    put(CAPS, {"maxRunningTasks": 5})
    ConfigVersionsPass(
        stamps(pools),
        ssm=lambda: aws_clients.client("ssm"),
        caps_parameter=CAPS,
        config_name_for=config_name,
        logger=Logger(service="test"),
        caps_loader=lambda: None,
        config_loader=object(),
    ).run(0.0, SweepResult())
    assert versions(pools)[ENV_POOL][0] == 1


def test_the_scheduled_sweep_stamps_before_its_capacity_passes(pools: str, status_table: str) -> None:
    caps = put(CAPS, {"maxRunningTasks": 5})
    config_b = put(config_name(CHALLENGE_B), config_document(challengeId=CHALLENGE_B))
    result = SweeperDependencies(settings(pools, status_table), ecs=object()).sweeper().sweep()
    assert "pass: config versions" not in result.failed
    assert versions(pools)[challenge_pool_key(CHALLENGE_B)] == (caps, config_b)
