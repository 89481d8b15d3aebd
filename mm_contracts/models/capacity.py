"""Capacity vocabulary: priority classes, the challenge's and the environment's caps (decisions 093, 094).

`ChallengeCapacity` is part of the challenge config (SSM, `capacity`); `EnvironmentCapacity` is the SSM parameter
`<ssmPrefix>/capacity`. Both are read at run time (cached), so a cap changes without a redeploy.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from mm_contracts.models.base import ContractModel

# The challenge's part lives with the challenge config (which embeds it) so that importing this module first
# cannot start an import cycle through `mm_contracts.models`; it is re-exported here.
from mm_contracts.models.challenge import (
    DEFAULT_PRIORITY_ORDER,
    ChallengeCapacity,
    PriorityClass,
    SupersedePolicy,
)

# CPU units per vCPU (ECS task CPU is given in units).
CPU_UNITS_PER_VCPU = 1024


class EnvironmentCapacity(ContractModel):
    """The SSM parameter `<ssmPrefix>/capacity` (JSON): the environment's caps and RunTask pace."""

    # inf passes `ge=0.25` and NaN compares false to every bound; neither is a cap, and JSON cannot hold either
    # (a value written as Infinity makes every admission's arithmetic raise): refused as a value.
    model_config = ConfigDict(allow_inf_nan=False)

    max_running_tasks: int = Field(default=20, ge=0, le=5000)
    # Optional cap in vCPU over every running task of the environment (the account's Fargate vCPU quota).
    max_running_vcpu: float | None = Field(default=None, ge=0.25)
    # The CPU a task weighs when its challenge config names no `cpu` (its task definition's CPU).
    default_task_cpu: int = Field(default=1024, ge=256)
    # The pipeline's own RunTask calls per second, environment-wide (ECS throttles Fargate RunTask near 20/s).
    run_task_per_second: int = Field(default=10, ge=1, le=100)

    @property
    def max_running_cpu_units(self) -> int | None:
        if self.max_running_vcpu is None:
            return None
        return int(self.max_running_vcpu * CPU_UNITS_PER_VCPU)


__all__ = [
    "CPU_UNITS_PER_VCPU",
    "DEFAULT_PRIORITY_ORDER",
    "ChallengeCapacity",
    "EnvironmentCapacity",
    "PriorityClass",
    "SupersedePolicy",
]
