"""Capacity vocabulary: priority classes, the challenge's and the environment's caps (decisions 093, 094).

`ChallengeCapacity` is part of the challenge config (SSM, `capacity`); `EnvironmentCapacity` is the SSM parameter
`<ssmPrefix>/capacity`. Both are read at run time (cached), so a cap changes without a redeploy.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from mm_contracts import dynamodb_item_size
from mm_contracts.models.base import ContractModel

# The challenge's part lives with the challenge config (which embeds it) so that importing this module first
# cannot start an import cycle through `mm_contracts.models`; it is re-exported here.
from mm_contracts.models.challenge import (
    DEFAULT_PRIORITY_ORDER,
    ChallengeCapacity,
    PriorityClass,
    SupersedePolicy,
)
from mm_contracts.models.phase import RUN_ID_SEPARATOR, ScoringPhase

# CPU units per vCPU (ECS task CPU is given in units).
CPU_UNITS_PER_VCPU = 1024

# The capacity pool items (decision 125). A pool item holds one attribute per run holding a slot in it (`h#<runId>`:
# its CPU units), so it grows with its pool's cap; every run rewrites the environment's pool item twice (its slot
# taken, then released), each time in a transaction; and one item takes at most 1,000 write units a second.
# Everything but the holders: keys, counters, cap, version stamps (82-159 bytes measured with 12 holders); a paused
# pool's pause fields (up to ~2.5 KB) come only while it admits nothing.
POOL_ITEM_BASE_BYTES_BOUND = 256
# `h#` + the longest run id (a canonical UUID, `#`, the longest phase) + CPU units of up to 8 digits (5 bytes).
POOL_HOLDER_BYTES_BOUND = len("h#") + 36 + len(RUN_ID_SEPARATOR) + max(len(p.value) for p in ScoringPhase) + 5
POOL_WRITES_PER_RUN = 2  # the slot taken (admission or direct launch), the slot released


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

    def pool_write_units_per_second(self) -> int:
        """Write units a second the environment's pool item takes with every slot held and runs starting (and
        ending) at the RunTask pace: the hottest item of the capacity table (decision 125)."""
        return environment_pool_write_units_per_second(self.max_running_tasks, self.run_task_per_second)

    def pool_write_refusal(self) -> str | None:
        """Why these caps cannot run at this pace on DynamoDB (None: they can). Refused where a deploy or
        `mm-processor caps set` writes them; the functions apply a document they find either way."""
        needed = self.pool_write_units_per_second()
        if needed <= dynamodb_item_size.PARTITION_WRITE_UNITS_PER_SECOND:
            return None
        return (
            f"maxRunningTasks {self.max_running_tasks} at runTaskPerSecond {self.run_task_per_second}: the "
            f"environment's capacity pool item would take {needed:,} DynamoDB write units a second with every slot "
            f"held, over the {dynamodb_item_size.PARTITION_WRITE_UNITS_PER_SECOND:,} one item can take; at this "
            f"pace maxRunningTasks can be at most {largest_cap_at_pace(self.run_task_per_second):,} "
            "(decision 125)"
        )


def pool_item_bytes_bound(holders: int) -> int:
    """The most bytes a capacity pool item with `holders` slots held can have (not paused)."""
    return POOL_ITEM_BASE_BYTES_BOUND + holders * POOL_HOLDER_BYTES_BOUND


def environment_pool_write_units_per_second(max_running_tasks: int, run_task_per_second: int) -> int:
    """The environment's pool item full (`max_running_tasks` holders), taken and released transactionally by
    `run_task_per_second` runs a second."""
    per_write = dynamodb_item_size.write_units(pool_item_bytes_bound(max_running_tasks), transactional=True)
    return POOL_WRITES_PER_RUN * run_task_per_second * per_write


def largest_cap_at_pace(run_task_per_second: int) -> int:
    """The largest `maxRunningTasks` whose full pool item stays within one item's write units at this pace."""
    units_per_write = dynamodb_item_size.PARTITION_WRITE_UNITS_PER_SECOND // (
        POOL_WRITES_PER_RUN * run_task_per_second * dynamodb_item_size.TRANSACTIONAL_WRITE_FACTOR
    )
    largest_item = units_per_write * dynamodb_item_size.WRITE_UNIT_BYTES
    return max(0, (largest_item - POOL_ITEM_BASE_BYTES_BOUND) // POOL_HOLDER_BYTES_BOUND)


__all__ = [
    "CPU_UNITS_PER_VCPU",
    "DEFAULT_PRIORITY_ORDER",
    "POOL_HOLDER_BYTES_BOUND",
    "POOL_ITEM_BASE_BYTES_BOUND",
    "ChallengeCapacity",
    "EnvironmentCapacity",
    "PriorityClass",
    "SupersedePolicy",
    "environment_pool_write_units_per_second",
    "largest_cap_at_pace",
    "pool_item_bytes_bound",
]
