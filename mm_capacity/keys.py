"""The capacity table's keys: its definition, the item keys of pools, queues and members, and the wait order."""

from __future__ import annotations

from typing import Any

from mm_contracts.models.phase import ScoringPhase
from mm_contracts.names import (
    CAPACITY_TABLE_PARTITION_KEY,
    CAPACITY_TABLE_SORT_KEY,
    CAPACITY_TABLE_TTL_ATTRIBUTE,
)

# An ADMITTED run whose message has not started its launch by then is re-sent by the sweeper (`deadlineAt`).
ADMISSION_RESEND_SECONDS = 300
ENV_POOL = "ENV"
POOL_PARTITION = "POOL"
PACE_PARTITION = "PACE"
DISPATCH_PARTITION = "DISPATCH"  # the env-wide dispatch turn (decision 124)
MEMBER_SORT_KEY = "-"


def challenge_pool_key(challenge_id: str) -> str:
    return f"CHALLENGE#{challenge_id}"


def phase_pool_key(challenge_id: str, phase: ScoringPhase) -> str:
    return f"PHASE#{challenge_id}#{phase.value}"


def queue_partition(challenge_id: str) -> str:
    return f"QUEUE#{challenge_id}"


def audit_partition(challenge_id: str) -> str:
    """The partition of a challenge's audit log of operator changes (decision 105)."""
    return f"AUDIT#{challenge_id}"


def member_partition(challenge_id: str, member_id: int) -> str:
    return f"MEMBER#{challenge_id}#{member_id}"


def make_wait_order(rank: int, fair_round: int, enqueued_ms: int, run_id: str) -> str:
    """The queue's sort key: priority rank, then the member's fair round, then enqueue time (then the run)."""
    return f"{rank:02d}#{fair_round:012d}#{enqueued_ms:013d}#{run_id}"


def wait_order_round(wait_order: str) -> int:
    return int(wait_order.split("#", 3)[1])


def capacity_table_definition(table_name: str) -> dict[str, Any]:
    """`create_table` kwargs of the capacity table (tests, the local pipeline; the CDK construct declares the same)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": CAPACITY_TABLE_SORT_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": CAPACITY_TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": CAPACITY_TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
    }


CAPACITY_TABLE_TTL = {"AttributeName": CAPACITY_TABLE_TTL_ATTRIBUTE, "Enabled": True}
