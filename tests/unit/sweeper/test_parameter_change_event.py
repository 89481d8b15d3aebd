"""Decision 121: a Parameter Store change event (the environment's parameter-change rule) makes the sweeper run only
the config versions pass, so the new version is stamped on the pool items within seconds; any other `aws.ssm`
event is logged with its reason and does nothing. Moto for SSM and the capacity table; everything a full sweep
would touch (ECS, the status table, Lambda, SQS, metrics) refuses to be used.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mm_capacity.keys import ENV_POOL, challenge_pool_key
from mm_capacity.store import CapacityStore
from sweeper_lambda import handler as sweeper
from sweeper_lambda.observability import logger
from sweeper_lambda.wiring import SweeperDependencies, use_dependencies
from tests.unit.challenge.helpers import config_document
from tests.unit.sweeper.test_config_versions_pass import (
    CAPS,
    CHALLENGE_A,
    CHALLENGE_B,
    CONFIGS,
    config_name,
    put,
    put_pool,
    settings,
    sync,
    versions,
)


class NotForAStampPass:
    """What only a full sweep uses: any use fails the test."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"a parameter change event used {self._name}.{attribute}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a parameter change event called {self._name}")


def change_event(name: str, operation: str = "Update", **overrides: Any) -> dict[str, Any]:
    """The event as Parameter Store sends it to EventBridge (the AWS user guide's example, with our names)."""
    return {
        "version": "0",
        "id": "9547ef2d-3b7e-4057-b6cb-5fdf09ee7c8f",
        "detail-type": "Parameter Store Change",
        "source": "aws.ssm",
        "account": "123456789012",
        "time": "2026-12-02T07:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:ssm:us-east-1:123456789012:parameter{name}"],
        "detail": {"operation": operation, "name": name, "type": "String", "description": ""},
    } | overrides


@pytest.fixture
def stamped_pools(capacity_table: str) -> Iterator[str]:
    """Pool items stamped by a sweep, then the caps and challenge A's config changed (a deploy, the console)."""
    put_pool(capacity_table, ENV_POOL, used=1)
    put_pool(capacity_table, challenge_pool_key(CHALLENGE_A), used=1, waiting=2)
    put_pool(capacity_table, challenge_pool_key(CHALLENGE_B), waiting=1)
    put(CAPS, {"maxRunningTasks": 5})
    put(config_name(CHALLENGE_A), config_document(challengeId=CHALLENGE_A))
    put(config_name(CHALLENGE_B), config_document(challengeId=CHALLENGE_B))
    sync(capacity_table)
    use_dependencies(
        SweeperDependencies(
            settings(capacity_table),
            capacity_store=CapacityStore(capacity_table, "mm-test-status"),  # the table's client, nothing else
            store=NotForAStampPass("the status table"),  # type: ignore[arg-type]
            ecs=NotForAStampPass("ECS"),
            lambda_client=NotForAStampPass("Lambda"),
            metrics_sink=NotForAStampPass("metrics"),
            sqs=NotForAStampPass("SQS"),
        )
    )
    yield capacity_table
    use_dependencies(None)


@pytest.fixture
def sweeper_logs() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def logged(buffer: io.StringIO, level: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, buffer.getvalue().splitlines()) if line.get("level") == level]


def test_a_caps_change_event_stamps_the_new_version_on_every_pool_item_and_runs_nothing_else(
    stamped_pools: str, lambda_context: Any
) -> None:
    # Given pool items stamped with the caps' version 1, then the caps changed outside `caps set`
    caps = put(CAPS, {"maxRunningTasks": 9})
    # When Parameter Store's change event reaches the sweeper
    summary = sweeper.handler(change_event(CAPS), lambda_context)
    # Then every pool item carries the new caps version at once (not at the next sweep)
    assert {key: stamp[0] for key, stamp in versions(stamped_pools).items()} == {
        ENV_POOL: caps,
        challenge_pool_key(CHALLENGE_A): caps,
        challenge_pool_key(CHALLENGE_B): caps,
    }
    assert summary == {
        "parameterChanged": CAPS,
        "operation": "Update",
        "capsVersion": caps,
        "stamped": 3,
        "raced": 0,
    }
    # (and ECS, the status table, Lambda, SQS and the metrics were never used: the fixture's stand-ins refuse)


def test_a_config_change_event_stamps_that_challenges_pool_item(stamped_pools: str, lambda_context: Any) -> None:
    config_a = put(config_name(CHALLENGE_A), config_document(challengeId=CHALLENGE_A, name="renamed"))
    summary = sweeper.handler(change_event(config_name(CHALLENGE_A)), lambda_context)
    assert versions(stamped_pools)[challenge_pool_key(CHALLENGE_A)] == (1, config_a)
    assert versions(stamped_pools)[challenge_pool_key(CHALLENGE_B)] == (1, 1)
    assert summary["stamped"] == 1


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            change_event(CAPS, detail={"operation": "Update"}),
            "not a Parameter Store Change event (detail.name: Field required)",
        ),
        (
            change_event(CAPS, **{"detail-type": "Parameter Store Policy Action"}),
            "not a Parameter Store Change event (detail-type: Input should be 'Parameter Store Change')",
        ),
        (
            change_event("/mm-processor/test/auth0/scorer-token"),
            "parameter /mm-processor/test/auth0/scorer-token is neither the caps nor a challenge config of this "
            "environment",
        ),
        (
            change_event(f"{CONFIGS}-other/{CHALLENGE_A}/config"),
            f"parameter {CONFIGS}-other/{CHALLENGE_A}/config is neither the caps nor a challenge config of this "
            "environment",
        ),
    ],
    ids=["malformed", "another-detail-type", "a-token-parameter", "another-prefix"],
)
def test_another_ssm_event_is_logged_with_its_reason_and_does_nothing(
    stamped_pools: str,
    lambda_context: Any,
    sweeper_logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    event: dict[str, Any],
    reason: str,
) -> None:
    # Given a change no stamp has followed yet, and an SSM client that must not be used
    put(CAPS, {"maxRunningTasks": 9})
    before = versions(stamped_pools)
    monkeypatch.setattr(SweeperDependencies, "ssm", NotForAStampPass("SSM"))
    # When an aws.ssm event that is not a change of this environment's caps or configs arrives
    summary = sweeper.handler(event, lambda_context)
    # Then it is answered (no exception, so nothing is retried) with its reason, logged as a warning
    assert summary == {"ignored": reason}
    (warning,) = logged(sweeper_logs, "WARNING")
    assert (warning["message"], warning["reason"]) == ("aws.ssm event ignored", reason)
    # And nothing was stamped
    assert versions(stamped_pools) == before
