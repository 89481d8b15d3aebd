"""The throughput benchmark's caps (`local_pipeline.capacity_ceiling`): Fargate's limits in place of the
environment's caps, and nothing else of the environment changed."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.config import load_environment
from local_pipeline.capacity_ceiling import (
    FARGATE_LAUNCH_BURST,
    FARGATE_SUSTAINED_LAUNCHES_PER_SECOND,
    at_fargate_ceiling,
    pace_floor_seconds,
)

ENVIRONMENTS = ["example", "dev", "staging", "production"]


def _without_caps(document: dict[str, Any]) -> dict[str, Any]:
    """The config document with every field the ceiling may change taken out."""
    for key in ("runTaskPerSecond", "maxRunningTasks", "maxRunningVcpu"):
        document["capacity"].pop(key, None)
    for challenge in [document.get("challengeDefaults") or {}, *document["challenges"]]:
        for key in ("maxRunningTasks", "maxRunningTasksPerPhase"):
            (challenge.get("capacity") or {}).pop(key, None)
    return document


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_ceiling_sets_every_cap_to_fargates_limits(environment: str) -> None:
    config = load_environment(environment)

    raised = at_fargate_ceiling(config)

    assert raised.capacity.run_task_per_second == FARGATE_SUSTAINED_LAUNCHES_PER_SECOND == 20
    assert raised.capacity.max_running_tasks == FARGATE_LAUNCH_BURST == 100
    assert raised.capacity.max_running_vcpu is None
    for before, after in zip(config.challenges, raised.challenges, strict=True):
        assert after.capacity.max_running_tasks == FARGATE_LAUNCH_BURST
        assert set(after.capacity.max_running_tasks_per_phase) == set(before.capacity.max_running_tasks_per_phase)
        assert set(after.capacity.max_running_tasks_per_phase.values()) <= {FARGATE_LAUNCH_BURST}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_ceiling_changes_nothing_but_the_caps(environment: str) -> None:
    config = load_environment(environment)

    raised = at_fargate_ceiling(config)

    def document(c: Any) -> dict[str, Any]:
        return _without_caps(c.model_dump(by_alias=True, mode="json", exclude_none=True))

    assert document(raised) == document(config)
    # The processors' Lambda concurrency is the environment's: the benchmark measures the functions as deployed.
    assert [c.max_concurrency for c in raised.challenges] == [c.max_concurrency for c in config.challenges]


def test_the_pace_floor_is_the_calls_over_the_pace() -> None:
    example = load_environment("example")

    assert example.capacity.run_task_per_second == 10
    assert pace_floor_seconds(1000, example) == 100.0  # why the example's own caps cannot give 1,000 in 60 s
    assert pace_floor_seconds(1000, at_fargate_ceiling(example)) == 50.0
