"""Environment settings that protect an account shared with other workloads (decisions 051, 052): no CDK.

Reserved concurrency for the core functions, validated against the account's concurrency with an error that
names the numbers; per-environment SSM paths.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.config import CONFIG_DIR, EnvironmentConfigError, load_environment, parse_environment
from infrastructure.wiring import ResourceRefs, WiringPlan

REFS = ResourceRefs(
    sns_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
    challenge_table_name="c",
    status_table_name="s",
    audit_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/q",
)


def example(**settings: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((CONFIG_DIR / "example.json").read_text())
    raw.update(settings)
    return raw


def with_challenges(raw: dict[str, Any], count: int, max_concurrency: int) -> dict[str, Any]:
    template = raw["challenges"][0]
    raw["challenges"] = [
        {
            **template,
            "challengeId": f"7c000000-0000-4000-8000-{i:012x}",
            "name": f"MM {i}",
            "maxConcurrency": max_concurrency,
        }
        for i in range(count)
    ]
    return raw


# ------------------------------------------------------------------ reserved concurrency
def test_router_completion_and_sweeper_reserve_concurrency_by_default() -> None:
    config = load_environment("example")

    assert config.router.reserved_concurrency == 10
    assert config.completion.reserved_concurrency == 20
    assert config.timeout_sweeper.reserved_concurrency == 1  # also: never two sweeps at once
    assert config.certificate_monitor.reserved_concurrency == 1
    assert config.challenge_processor.reserved_concurrency is None  # bounded by each queue's maxConcurrency
    assert config.reserved_concurrency() == {"router": 10, "completion": 20, "timeoutSweeper": 1}
    assert config.account_concurrency_limit == 1000


def test_a_sizing_block_overrides_only_what_it_names() -> None:
    config = parse_environment(example(router={"memoryMb": 1024}, completion={"reservedConcurrency": None}))

    assert (config.router.memory_mb, config.router.timeout_seconds, config.router.reserved_concurrency) == (
        1024,
        60,
        10,
    )
    assert config.completion.reserved_concurrency is None  # an explicit null gives the reservation up
    assert config.completion.timeout_seconds == 60


def test_reservations_beyond_the_account_limit_minus_the_unreserved_100_are_refused_with_the_numbers() -> None:
    # Given an account limit of 120: 20 may be reserved, the defaults reserve 31
    with pytest.raises(EnvironmentConfigError) as error:
        parse_environment(example(accountConcurrencyLimit=120))

    message = str(error.value)
    assert "reservations add up to 31 (router 10, completion 20, timeoutSweeper 1)" in message
    assert "more than the 20" in message
    assert "accountConcurrencyLimit 120" in message
    assert "100" in message


def test_challenge_queues_that_could_use_the_reserved_concurrency_are_refused_with_the_numbers() -> None:
    # Given 200 challenges at the default maxConcurrency of 5: 1000 > 1000 - 31
    raw = with_challenges(example(challengesPerStack=30), 200, 5)

    with pytest.raises(EnvironmentConfigError) as error:
        parse_environment(raw)

    message = str(error.value)
    assert "maxConcurrency adds up to 1000 (200 challenges)" in message
    assert "more than the 969" in message
    assert "accountConcurrencyLimit 1000 minus 31 reserved" in message


def test_challenge_queues_may_use_exactly_what_the_reservations_leave() -> None:
    # 969 = 1000 - 31: 161 challenges at 6 and one at 3
    raw = with_challenges(example(challengesPerStack=30, challengeShards=16), 162, 6)
    raw["challenges"][-1]["maxConcurrency"] = 3

    config = parse_environment(raw)

    assert sum(c.max_concurrency for c in config.challenges) == 969


def test_without_reservations_a_small_account_only_bounds_the_queues() -> None:
    none = {"reservedConcurrency": None}
    raw = example(accountConcurrencyLimit=50, router=none, completion=none, timeoutSweeper=none)

    config = parse_environment(raw)

    assert config.reserved_concurrency() == {}


def test_a_router_reservation_below_what_the_kafka_pollers_invoke_is_refused() -> None:
    raw = example()
    raw["kafka"]["maximumPollers"] = 3  # up to 15 concurrent invocations, 10 reserved

    with pytest.raises(EnvironmentConfigError, match=r"router.reservedConcurrency=10 is less than the 15"):
        parse_environment(raw)


# ------------------------------------------------------------------ SSM paths
def test_ssm_paths_default_to_the_environment() -> None:
    plan = WiringPlan(load_environment("example"))
    challenge = plan.config.challenges[0]

    assert plan.config.ssm_prefix == "/mm-processor/example"
    assert plan.challenge_config_parameter(challenge.challenge_id) == (
        f"/mm-processor/example/challenges/{challenge.challenge_id}/config"
    )
    assert plan.challenge_settings(challenge, REFS).token_parameter_name == "/mm-processor/example/auth0/token"
    assert plan.completion_settings(REFS).challenge_config_parameter_prefix == "/mm-processor/example/challenges"
    assert WiringPlan(load_environment("dev")).config.ssm_prefix == "/mm-processor/dev"


def test_an_explicit_ssm_prefix_still_wins() -> None:
    config = parse_environment(example(ssmPrefix="/platform/mm"))

    assert config.ssm_prefix == "/platform/mm"
    with pytest.raises(EnvironmentConfigError, match="ssmPrefix"):
        parse_environment(example(ssmPrefix="/trailing/"))
