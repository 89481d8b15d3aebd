"""An operator's controls of a challenge (decision 105): pause and resume its admissions, and the audit log of every
challenge-scoped change (pause, resume, set-caps).

Pause is a `paused` flag (with `pausedBy`, `pausedAt`, `pauseReason`) on the challenge's pool item (POOL /
CHALLENGE#<id>, created if absent). The admission transaction's challenge-pool item is conditioned on
`attribute_not_exists(paused)`, so a pause holds from the moment it commits, in every function, with no cache: every
admission of the challenge is refused (FULL at its challenge pool) and its new submissions and reruns wait. Runs
already ADMITTED or running hold their slots and go on. Resume removes the flag; the caller then triggers a dispatch.

The audit log: one item per change, pk `AUDIT#<challengeId>`, sk `<iso at>#<requestId>` (so a Query newest first
reads the latest changes), holding the change (JSON) and its detail. No TTL: operator changes are few, and the trail
must outlive the runs it explains (status items expire after 90 days). Pause and resume write the flag and the audit
item in one transaction, so neither exists without the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mm_capacity.keys import POOL_PARTITION, audit_partition, challenge_pool_key
from mm_capacity.table import CONDITION_FAILED, MAX_DETAIL, CapacityTable, ddb_values, iso, plain
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY

if TYPE_CHECKING:
    from mm_contracts.models.audit import OperatorChange

_MAX_AUDIT_PAGE = 200


@dataclass(frozen=True)
class ChallengeControls:
    """What an operator set on a challenge: paused or not, by whom, when and why."""

    challenge_id: str
    paused: bool
    paused_by: str | None
    paused_at: str | None
    pause_reason: str | None


class CapacityControls(CapacityTable):
    """`pause`, `resume`, `controls` and the challenge's audit log (`record_challenge_change`, `challenge_changes`)."""

    def pause(self, challenge_id: str, change: OperatorChange) -> bool:
        """Set the challenge's `paused` flag and its audit item in one transaction. True: now paused; False: it
        already was (nothing written, the first pause's who/why stay)."""
        now = self._clock()
        flag = self._update_op(
            self._table,
            self._pool_key(challenge_pool_key(challenge_id)),
            "SET paused = :true, pausedBy = :by, pausedAt = :at, pauseReason = :reason, updatedAt = :now",
            {
                ":true": True,
                ":by": change.actor,
                ":at": change.at.isoformat(),
                ":reason": change.reason[:MAX_DETAIL],
                ":now": iso(now),
            },
            condition="attribute_not_exists(paused)",
        )
        detail = f"paused: admissions refused ({change.reason})"
        return self._flag_change(flag, challenge_id, change, detail)

    def resume(self, challenge_id: str, change: OperatorChange) -> bool:
        """Remove the challenge's `paused` flag, with its audit item, in one transaction. True: it was paused and is
        not now; False: it was not paused (nothing written). The caller triggers a dispatch: waiting runs are
        admitted by the next dispatch, not by this write."""
        now = self._clock()
        flag = self._update_op(
            self._table,
            self._pool_key(challenge_pool_key(challenge_id)),
            "SET updatedAt = :now REMOVE paused, pausedBy, pausedAt, pauseReason",
            {":now": iso(now)},
            condition="attribute_exists(paused)",
        )
        detail = f"resumed: admissions allowed again ({change.reason})"
        return self._flag_change(flag, challenge_id, change, detail)

    def _flag_change(self, flag: dict[str, Any], challenge_id: str, change: OperatorChange, detail: str) -> bool:
        codes = self._transact([flag, self._audit_put_op(challenge_id, change, detail)])
        if codes is None:
            return True
        if codes and codes[0] == CONDITION_FAILED:
            return False
        raise RuntimeError(f"{change.action} of challenge {challenge_id} cancelled: {codes}")

    def controls(self, challenge_id: str) -> ChallengeControls:
        """The challenge's controls now (strongly consistent read of its pool item)."""
        item = self._get(POOL_PARTITION, challenge_pool_key(challenge_id)) or {}
        values = {name: plain(value) for name, value in item.items()}

        def text(name: str) -> str | None:
            return str(values[name]) if name in values else None

        return ChallengeControls(
            challenge_id=challenge_id,
            paused="paused" in values,
            paused_by=text("pausedBy"),
            paused_at=text("pausedAt"),
            pause_reason=text("pauseReason"),
        )

    def record_challenge_change(self, challenge_id: str, change: OperatorChange, detail: str) -> None:
        """An audit item for a challenge-scoped change made elsewhere (e.g. set-caps: "before -> after"). A repeated
        request id at the same instant overwrites its own item only."""
        self.client.put_item(**self._audit_put_op(challenge_id, change, detail)["Put"])

    def challenge_changes(self, challenge_id: str, limit: int = 50) -> list[tuple[OperatorChange, str]]:
        """The challenge's audit log, newest first: (change, detail), at most `limit`."""
        # Imported here: only the operator tools read the log, so no function builds the model on its cold start.
        from mm_contracts.models.audit import OperatorChange

        request: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": f"{CAPACITY_TABLE_PARTITION_KEY} = :pk",
            "ExpressionAttributeValues": ddb_values({":pk": audit_partition(challenge_id)}),
            "ScanIndexForward": False,
        }
        changes: list[tuple[OperatorChange, str]] = []
        while len(changes) < limit:
            request["Limit"] = min(limit - len(changes), _MAX_AUDIT_PAGE)
            response = self.client.query(**request)
            for item in response.get("Items", []):
                change = OperatorChange.model_validate(json.loads(str(plain(item["change"]))))
                changes.append((change, str(plain(item.get("detail", {"S": ""})))))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return changes[:limit]

    def _audit_put_op(self, challenge_id: str, change: OperatorChange, detail: str) -> dict[str, Any]:
        item = {
            CAPACITY_TABLE_PARTITION_KEY: audit_partition(challenge_id),
            CAPACITY_TABLE_SORT_KEY: audit_sort_key(change),
            "challengeId": challenge_id,
            "action": change.action,
            "actor": change.actor,
            "requestId": change.request_id,
            "change": change.to_json(),
            "detail": detail[:MAX_DETAIL],
        }
        return {"Put": {"TableName": self._table, "Item": ddb_values(item)}}


def audit_sort_key(change: OperatorChange) -> str:
    """`<iso at>#<requestId>`: in time order (UTC, fixed width), unique per command invocation and instant."""
    at = datetime.fromtimestamp(change.at.timestamp(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{at}#{change.request_id}"


__all__ = ["CapacityControls", "ChallengeControls", "audit_sort_key"]
