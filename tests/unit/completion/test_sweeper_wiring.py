"""The sweeper's settings as the wiring plan derives them, and the report-lease check at synth (decision 080)."""

from __future__ import annotations

import pytest

from infrastructure.config import EnvironmentConfigError, FunctionSizing, load_environment
from infrastructure.wiring import (
    LEASE_MARGIN_SECONDS,
    MAX_RECEIVE_COUNT,
    VISIBILITY_TIMEOUT_FACTOR,
    ResourceRefs,
    WiringPlan,
)
from mm_adapters.status_store import DEFAULT_LIVENESS_CHECK_SECONDS
from mm_contracts.settings import LAMBDA_ASYNC_RETRY_WINDOW_SECONDS, TimeoutSweeperSettings

REFS = ResourceRefs("arn:aws:sns:us-east-1:123456789012:ref", "ref", "ref", "https://ref")


@pytest.fixture
def plan() -> WiringPlan:
    return WiringPlan(load_environment("example"))


def test_the_sweeper_gets_the_cluster_and_timings_derived_from_the_queue_and_lease(plan: WiringPlan) -> None:
    settings = plan.sweeper_settings(REFS)
    processor_timeout = plan.config.challenge_processor.timeout_seconds
    assert settings.ecs_cluster_arns == (plan.config.ecs.cluster_arn,)
    # an untracked task is judged only after a launch lease could have recorded it
    assert settings.orphan_settle_seconds == processor_timeout + LEASE_MARGIN_SECONDS + 60
    # a LAUNCHING item is stuck once every receive of its message is over
    visibility = VISIBILITY_TIMEOUT_FACTOR * processor_timeout
    assert settings.launch_stuck_after_seconds == visibility * MAX_RECEIVE_COUNT + 60
    assert settings.liveness_check_seconds == DEFAULT_LIVENESS_CHECK_SECONDS
    # and what the function reads back from its environment is what the plan set
    assert TimeoutSweeperSettings.from_env(settings.to_env()) == settings


def test_a_report_lease_longer_than_the_async_retry_window_cannot_be_deployed(plan: WiringPlan) -> None:
    slow_commit_window = 60  # CompletionSettings.report_slow_commit_seconds (decision 074)
    longest = LAMBDA_ASYNC_RETRY_WINDOW_SECONDS - LEASE_MARGIN_SECONDS - slow_commit_window
    too_slow = plan.config.model_copy(update={"completion": FunctionSizing(memory_mb=256, timeout_seconds=longest + 1)})
    with pytest.raises(EnvironmentConfigError, match=r"completion\.timeoutSeconds=91 .*report lease of 121 s"):
        WiringPlan(too_slow).completion_settings(REFS)
    assert plan.report_lease_seconds() == plan.config.completion.timeout_seconds + LEASE_MARGIN_SECONDS
