"""What the capacity table says now: every pool, a challenge's queue (whole, a page, a position), a member's runs."""

from __future__ import annotations

from typing import Any

from mm_capacity.keys import (
    ENV_POOL,
    MEMBER_SORT_KEY,
    POOL_PARTITION,
    member_partition,
    queue_partition,
)
from mm_capacity.records import (
    PoolSnapshot,
    PoolState,
    WaitEntry,
)
from mm_capacity.table import (
    CapacityTable,
    ddb_values,
    plain,
    pool_state_of,
    wait_entry_of,
)
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.names import (
    CAPACITY_TABLE_PARTITION_KEY,
    CAPACITY_TABLE_SORT_KEY,
)


class CapacityReads(CapacityTable):
    """The pools, the queues and a member's runs, read strongly consistently."""

    def pools(self) -> PoolSnapshot:
        """Every pool, from one strongly consistent Query of the POOL partition."""
        env = PoolState.empty(ENV_POOL)
        challenges: dict[str, PoolState] = {}
        phases: dict[tuple[str, ScoringPhase], PoolState] = {}
        expression = f"{CAPACITY_TABLE_PARTITION_KEY} = :pk"
        for item in self._query(
            KeyConditionExpression=expression, ExpressionAttributeValues=ddb_values({":pk": POOL_PARTITION})
        ):
            state = pool_state_of(item)
            kind, _, rest = state.sk.partition("#")
            if state.sk == ENV_POOL:
                env = state
            elif kind == "CHALLENGE":
                challenges[rest] = state
            elif kind == "PHASE":
                challenge_id, _, phase = rest.rpartition("#")
                phases[(challenge_id, ScoringPhase(phase))] = state
        return PoolSnapshot(env=env, challenges=challenges, phases=phases)

    def queue_head(self, challenge_id: str, *, limit: int = 10, after: str | None = None) -> list[WaitEntry]:
        """Up to `limit` entries in queue order, from the front or from just after the entry `after` (a wait
        order): the next page of a queue being read page by page."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": f"{CAPACITY_TABLE_PARTITION_KEY} = :pk",
            "ExpressionAttributeValues": ddb_values({":pk": queue_partition(challenge_id)}),
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = self._key(queue_partition(challenge_id), after)
        response = self.client.query(**request)
        return [wait_entry_of(item) for item in response.get("Items", [])]

    def queue_entries(self, challenge_id: str) -> list[WaitEntry]:
        items = self._query(
            KeyConditionExpression=f"{CAPACITY_TABLE_PARTITION_KEY} = :pk",
            ExpressionAttributeValues=ddb_values({":pk": queue_partition(challenge_id)}),
        )
        return [wait_entry_of(item) for item in items]

    def queue_position(self, challenge_id: str, wait_order: str) -> int:
        """1-based place of the entry `wait_order` in its challenge's queue (entries ahead of it + 1)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": f"{CAPACITY_TABLE_PARTITION_KEY} = :pk AND {CAPACITY_TABLE_SORT_KEY} < :order",
            "ExpressionAttributeValues": ddb_values({":pk": queue_partition(challenge_id), ":order": wait_order}),
            "Select": "COUNT",
        }
        ahead = 0
        while True:
            response = self.client.query(**request)
            ahead += int(response.get("Count", 0))
            last = response.get("LastEvaluatedKey")
            if not last:
                return ahead + 1
            request["ExclusiveStartKey"] = last

    def member_runs(
        self, challenge_id: str, member_id: int
    ) -> tuple[list[tuple[str, ScoringPhase]], list[tuple[str, ScoringPhase]]]:
        """(waiting, holding) runs of a member in a challenge, as (run id, phase); waiting ones in queue order."""
        item = self._get(member_partition(challenge_id, member_id), MEMBER_SORT_KEY) or {}
        waiting: list[tuple[str, str, ScoringPhase]] = []
        holding: list[tuple[str, ScoringPhase]] = []
        for name, value in item.items():
            text = str(plain(value))
            if name.startswith("w#"):
                phase, _, wait_order = text.partition("|")
                waiting.append((wait_order, name[2:], ScoringPhase(phase)))
            elif name.startswith("r#"):
                holding.append((name[2:], ScoringPhase(text)))
        return [(run_id, phase) for _, run_id, phase in sorted(waiting)], sorted(holding)
