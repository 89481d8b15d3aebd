"""An environment's capacity raised to what AWS Fargate itself allows: what the throughput benchmark runs under.

A run cannot start faster than its environment's RunTask pace (`runTaskPerSecond`, decision 094): the example
environment's 10 a second (the default, kept below Fargate's sustained 20) puts 1,000 runs at 100 s or more
however fast the pipeline is. To measure the pipeline rather than that setting, `at_fargate_ceiling` sets the pace
to Fargate's documented sustained rate and every running-task cap to Fargate's burst, so the account's own limits
are the only ones left. Everything else (challenges, phases, the
processors' Lambda concurrency, the faults, the report) is the environment's. Decision 116 says why.

Fargate launches tasks from a token bucket of 100 with a refill of 20 a second per account and Region, and
throttles RunTask at 20 calls a second: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html
"""

from __future__ import annotations

from typing import Any

from infrastructure.config.environment import EnvironmentConfig

FARGATE_SUSTAINED_LAUNCHES_PER_SECOND = 20  # the bucket's refill rate, and RunTask's call rate
FARGATE_LAUNCH_BURST = 100  # the bucket's size: the most tasks that can start at once


def at_fargate_ceiling(config: EnvironmentConfig) -> EnvironmentConfig:
    """`config` with the RunTask pace at Fargate's sustained rate and every running-task cap (environment,
    challenge defaults, each challenge, each phase) at Fargate's burst; validated again like a loaded config."""
    document: dict[str, Any] = config.model_dump(by_alias=True, mode="json", exclude_none=True)
    capacity = document["capacity"]
    capacity["runTaskPerSecond"] = FARGATE_SUSTAINED_LAUNCHES_PER_SECOND
    capacity["maxRunningTasks"] = FARGATE_LAUNCH_BURST
    capacity.pop("maxRunningVcpu", None)
    for challenge in [document.get("challengeDefaults") or {}, *document["challenges"]]:
        caps = challenge.get("capacity")
        if caps:
            caps["maxRunningTasks"] = FARGATE_LAUNCH_BURST
            phases = caps.get("maxRunningTasksPerPhase") or {}
            caps["maxRunningTasksPerPhase"] = dict.fromkeys(phases, FARGATE_LAUNCH_BURST)
    return EnvironmentConfig.model_validate(document)


def pace_floor_seconds(run_task_calls: int, config: EnvironmentConfig) -> float:
    """The least time `run_task_calls` RunTask calls take under `config`'s pace: a second per `runTaskPerSecond`
    calls (the pace counts calls per epoch second, so a run may gain at most the part of its first second)."""
    return run_task_calls / config.capacity.run_task_per_second
