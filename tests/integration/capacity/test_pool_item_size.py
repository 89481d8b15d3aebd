"""The capacity pool items as the store writes them on moto, measured by DynamoDB's size rules: what decision 125's
write bound assumes of them (`pool_item_bytes_bound`) holds for the environment's, a challenge's and a phase's pool
item, full of the longest holders a run can have, with every counter and version stamp written."""

from __future__ import annotations

from mm_adapters import aws as aws_clients
from mm_capacity.config import CAPS_VERSION_ATTRIBUTE, CONFIG_VERSION_ATTRIBUTE, VersionStamps
from mm_capacity.store import (
    ENV_POOL,
    CapacityStore,
    DirectLaunchOutcome,
    challenge_pool_key,
    phase_pool_key,
)
from mm_contracts.dynamodb_item_size import item_bytes
from mm_contracts.models.capacity import (
    POOL_HOLDER_BYTES_BOUND,
    POOL_ITEM_BASE_BYTES_BOUND,
    pool_item_bytes_bound,
)
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY
from tests.integration.capacity.conftest import CHALLENGE_A, PHASE, limits, raw_item, submission

HOLDERS = 12
LARGEST_TASK_CPU = 16_384  # Fargate's 16 vCPU


def _pool_items(capacity_table: str) -> dict[str, dict]:
    key = {CAPACITY_TABLE_PARTITION_KEY: {"S": "POOL"}}
    return {
        sk: raw_item(capacity_table, {**key, CAPACITY_TABLE_SORT_KEY: {"S": sk}})
        for sk in (ENV_POOL, challenge_pool_key(CHALLENGE_A), phase_pool_key(CHALLENGE_A, PHASE))
    }


def test_full_pool_items_stay_within_the_bound_the_write_guard_assumes(
    capacity: CapacityStore, capacity_table: str
) -> None:
    for n in range(HOLDERS):
        sub = submission(member_id=2000 + n)  # a canonical UUID: the longest submission id a run can have
        result = capacity.launch_directly(
            sub,
            phase=PHASE,  # PROVISIONAL: the longest phase name
            scorer_type="java",
            timeout_seconds=600,
            priority_rank=1,
            limits=limits(100, env_cap=100, phase_cap=100, cpu_units=LARGEST_TASK_CPU),
            lease_seconds=120,
            view=capacity.new_run_view(sub, PHASE),
        )
        assert result.outcome is DirectLaunchOutcome.CLAIMED
    # Every stamp the sweeper and `caps set` write (decision 121), at versions of five digits.
    stamps = VersionStamps(capacity_table, lambda: aws_clients.client("dynamodb"))
    stamps.stamp_forward([ENV_POOL, challenge_pool_key(CHALLENGE_A)], CAPS_VERSION_ATTRIBUTE, 99_999)
    stamps.stamp_forward([challenge_pool_key(CHALLENGE_A)], CONFIG_VERSION_ATTRIBUTE, 99_999)

    for sk, item in _pool_items(capacity_table).items():
        holders = {name: value for name, value in item.items() if name.startswith("h#")}
        assert len(holders) == HOLDERS, sk
        assert item_bytes(item) <= pool_item_bytes_bound(HOLDERS), sk
        # Each holder: `h#` + a 48-byte run id (50) + 16,384 (4); the bound allows CPU units of 8 digits (55).
        assert {item_bytes({name: value}) for name, value in holders.items()} == {54}
        assert 54 <= POOL_HOLDER_BYTES_BOUND <= 55
        # The rest (keys, used, cpuUsed, cap, updatedAt, dispatchedRound, the stamps): within the base, not far off.
        rest = item_bytes({name: value for name, value in item.items() if name not in holders})
        assert 60 <= rest <= POOL_ITEM_BASE_BYTES_BOUND, (sk, rest)
