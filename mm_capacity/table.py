"""The capacity table's plumbing (`CapacityTable`): DynamoDB operation builders for pools, queue entries and members,
consistent reads, and the transaction helpers every slot transition uses (`_transact`, `_transact_run_change`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from mm_adapters import aws
from mm_adapters.dynamodb_types import TypeDeserializer, TypeSerializer
from mm_adapters.status_store import StatusStore
from mm_capacity.config import observed_versions
from mm_capacity.keys import (
    MEMBER_SORT_KEY,
    POOL_PARTITION,
    challenge_pool_key,
    member_partition,
    queue_partition,
)
from mm_capacity.records import PoolState, WaitEntry
from mm_contracts.models.audit_names import OPERATOR_HISTORY_STATE
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.names import (
    CAPACITY_TABLE_PARTITION_KEY,
    CAPACITY_TABLE_SORT_KEY,
    STATUS_TABLE_PARTITION_KEY,
)
from mm_contracts.ports import Clock

if TYPE_CHECKING:
    from mm_contracts.models.audit import OperatorChange

MAX_RACE_RETRIES = 3
MAX_DETAIL = 500
CONDITION_FAILED = "ConditionalCheckFailed"
CONFLICT = "TransactionConflict"
# The wait reason of a run that starts waiting while its challenge is paused (decision 105).
PAUSED_WAIT_REASON = "challenge paused by an operator"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def ddb_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def plain(value: Any) -> Any:
    plain = _deserializer.deserialize(value)
    return int(plain) if hasattr(plain, "to_integral_value") else plain


def operator_entry(change: OperatorChange) -> list[dict[str, str]]:
    """The one-entry history list of an operator's change (state OPERATOR, at the change's time)."""
    return [{"at": iso(change.at.timestamp()), "state": OPERATOR_HISTORY_STATE, "detail": change.history_detail()}]


def error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def cancellation_codes(error: ClientError) -> list[str] | None:
    """The per-item codes of a cancelled transaction, or None for any other error."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    return [str(reason.get("Code") or "None") for reason in error.response.get("CancellationReasons", [])]


def pool_state_of(item: dict[str, Any]) -> PoolState:
    def number(name: str) -> int:
        return int(plain(item[name])) if name in item else 0

    holders = {name[2:]: int(plain(value)) for name, value in item.items() if name.startswith("h#")}
    caps_version, config_version = observed_versions(item)
    return PoolState(
        sk=str(plain(item[CAPACITY_TABLE_SORT_KEY])),
        used=number("used"),
        cpu_used=number("cpuUsed"),
        waiting=number("waiting"),
        holders=holders,
        cap=int(plain(item["cap"])) if "cap" in item else None,
        dispatched_round=number("dispatchedRound"),
        paused="paused" in item,
        caps_version=caps_version,
        config_version=config_version,
    )


def wait_entry_of(item: dict[str, Any]) -> WaitEntry:
    values = {name: plain(value) for name, value in item.items()}
    return WaitEntry(
        challenge_id=str(values["challengeId"]),
        run_id=str(values["runId"]),
        submission_id=str(values["submissionId"]),
        phase=ScoringPhase(values["phase"]),
        member_id=int(values["memberId"]),
        wait_order=str(values[CAPACITY_TABLE_SORT_KEY]),
        enqueued_at=int(values["enqueuedAt"]),
        rerun=bool(values.get("rerun", False)),
    )


class CapacityTable:
    """The capacity table's plumbing that every job of `CapacityStore` shares: keys, operation builders, reads, and
    the transaction helpers."""

    def __init__(
        self,
        capacity_table_name: str,
        status_table_name: str,
        *,
        ttl_days: int = 90,
        clock: Clock = time.time,
        dynamodb_client: Any | None = None,
    ) -> None:
        self._table = capacity_table_name
        self._status_table = status_table_name
        self._ttl_seconds = ttl_days * 86_400
        self._clock = clock
        self._client = dynamodb_client
        self._status = StatusStore(status_table_name, ttl_days=ttl_days, clock=clock, dynamodb_client=dynamodb_client)

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    def now(self) -> float:
        return self._clock()

    def run(self, run_id: str) -> LifecycleRecord | None:
        """The run's status item (strongly consistent), as `StatusStore.get` reads it."""
        return self._status.get(run_id)

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {CAPACITY_TABLE_PARTITION_KEY: {"S": pk}, CAPACITY_TABLE_SORT_KEY: {"S": sk}}

    def _pool_key(self, sk: str) -> dict[str, Any]:
        return self._key(POOL_PARTITION, sk)

    def _run_key(self, run_id: str) -> dict[str, Any]:
        return {STATUS_TABLE_PARTITION_KEY: {"S": run_id}}

    def _history(self, now: float, state: str, detail: str) -> list[dict[str, str]]:
        return [{"at": iso(now), "state": state, "detail": detail[:MAX_DETAIL]}]

    def _update_op(
        self,
        table: str,
        key: dict[str, Any],
        update: str,
        values: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {"TableName": table, "Key": key, "UpdateExpression": update}
        if values:
            op["ExpressionAttributeValues"] = ddb_values(values)
        if condition:
            op["ConditionExpression"] = condition
        if names:
            op["ExpressionAttributeNames"] = names
        return {"Update": op}

    def _update_if(self, **request: Any) -> dict[str, Any] | None:
        """UpdateItem; None when its condition failed (nothing was written)."""
        try:
            response: dict[str, Any] = self.client.update_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return response

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """TransactWriteItems; None when it committed, else the per-item cancellation codes."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            codes = cancellation_codes(error)
            if codes is None:
                raise
            return codes
        return None

    def _transact_run_change(
        self,
        build: Callable[[float], list[dict[str, Any]] | None],
        *,
        attempts: int = MAX_RACE_RETRIES,
        exhausted: str | None = None,
    ) -> bool:
        """A change of one run and its capacity items, as ONE transaction whose first item is the run's conditional
        update: True when it committed; False when the run moved on (its condition failed, nothing written) or
        `build(now)` found nothing to do (None). Any other cancellation (a holder or member entry that vanished in
        between, a conflict) builds the items afresh and tries again, `attempts` times in all; then False, or
        `RuntimeError(exhausted)` when given."""
        for _ in range(attempts):
            items = build(self._clock())
            if items is None:
                return False
            codes = self._transact(items)
            if codes is None:
                return True
            if codes and codes[0] == CONDITION_FAILED:
                return False
        if exhausted is not None:
            raise RuntimeError(exhausted)
        return False

    def _acquire_op(
        self,
        sk: str,
        run_id: str,
        cpu: int,
        now: float,
        *,
        cap: int | None,
        waiting_delta: int = 0,
        cpu_cap: int | None = None,
        refuse_paused: bool = False,
        dispatched_round: int | None = None,
        refuse_waiting: bool = False,
    ) -> dict[str, Any]:
        """Take a slot of pool `sk` for `run_id` (below `cap`, None: ignore caps) if it does not hold one yet;
        with `refuse_paused`, only while the pool carries no operator's `paused` flag (decision 105);
        `dispatched_round`: the challenge's fair-queuing virtual time set to it in the same write;
        `refuse_waiting`: only while the challenge's queue is empty (`waiting` moves with every queue entry in the
        same transaction, so 0 proves no run waits: a run admitted without waiting never overtakes one)."""
        values: dict[str, Any] = {":cpu": cpu, ":one": 1, ":now": iso(now)}
        update_set = "SET #h = :cpu, updatedAt = :now"
        if dispatched_round is not None:
            values[":round"] = dispatched_round
            update_set += ", dispatchedRound = :round"
        adds = "ADD used :one, cpuUsed :cpu"
        if waiting_delta:
            values[":waiting_delta"] = waiting_delta
            adds += ", waiting :waiting_delta"
        condition = "attribute_not_exists(#h)"
        if cap is not None:
            values[":cap"] = cap
            values[":cap_minus_1"] = cap - 1
            update_set += ", cap = :cap"
            condition = f"(attribute_not_exists(used) OR used <= :cap_minus_1) AND {condition}"
        if cpu_cap is not None:
            values[":cpu_cap_minus_c"] = cpu_cap - cpu
            condition += " AND (attribute_not_exists(cpuUsed) OR cpuUsed <= :cpu_cap_minus_c)"
        if refuse_paused:
            condition += " AND attribute_not_exists(paused)"
        if refuse_waiting:
            values[":no_waiting"] = 0
            condition += " AND (attribute_not_exists(waiting) OR waiting = :no_waiting)"
        return self._update_op(
            self._table,
            self._pool_key(sk),
            f"{update_set} {adds}",
            values,
            condition=condition,
            names={"#h": f"h#{run_id}"},
        )

    def _release_op(self, sk: str, run_id: str, cpu: int, now: float, *, waiting_delta: int = 0) -> dict[str, Any]:
        values: dict[str, Any] = {":minus_one": -1, ":minus_cpu": -cpu, ":now": iso(now)}
        adds = "ADD used :minus_one, cpuUsed :minus_cpu"
        if waiting_delta:
            values[":waiting_delta"] = waiting_delta
            adds += ", waiting :waiting_delta"
        return self._update_op(
            self._table,
            self._pool_key(sk),
            f"REMOVE #h SET updatedAt = :now {adds}",
            values,
            condition="attribute_exists(#h)",
            names={"#h": f"h#{run_id}"},
        )

    def _waiting_op(self, challenge_id: str, delta: int, now: float) -> dict[str, Any]:
        return self._update_op(
            self._table,
            self._pool_key(challenge_pool_key(challenge_id)),
            "SET updatedAt = :now ADD waiting :delta",
            {":delta": delta, ":now": iso(now)},
        )

    def _queue_put_op(self, entry: WaitEntry) -> dict[str, Any]:
        item = {
            CAPACITY_TABLE_PARTITION_KEY: queue_partition(entry.challenge_id),
            CAPACITY_TABLE_SORT_KEY: entry.wait_order,
            "challengeId": entry.challenge_id,
            "runId": entry.run_id,
            "submissionId": entry.submission_id,
            "phase": entry.phase.value,
            "memberId": entry.member_id,
            "enqueuedAt": entry.enqueued_at,
            "rerun": entry.rerun,
        }
        return {"Put": {"TableName": self._table, "Item": ddb_values(item)}}

    def _queue_delete_op(self, challenge_id: str, wait_order: str) -> dict[str, Any]:
        return {"Delete": {"TableName": self._table, "Key": self._key(queue_partition(challenge_id), wait_order)}}

    def _member_op(
        self,
        challenge_id: str,
        member_id: int,
        update: str,
        values: dict[str, Any],
        names: dict[str, str],
        condition: str | None = None,
    ) -> dict[str, Any]:
        return self._update_op(
            self._table,
            self._key(member_partition(challenge_id, member_id), MEMBER_SORT_KEY),
            update,
            values,
            condition=condition,
            names=names,
        )

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.client.get_item(
            TableName=self._table, Key=self._key(pk, sk), ConsistentRead=True
        ).get("Item")
        return item

    def _query(self, **request: Any) -> Iterator[dict[str, Any]]:
        request = {"TableName": self._table, "ConsistentRead": True, **request}
        while True:
            response = self.client.query(**request)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _release_ops_for(self, run: LifecycleRecord, now: float) -> list[dict[str, Any]]:
        """Transaction items freeing the slots `run` still holds and removing its member `r#` (each conditioned
        on being there, so only what exists now is included: read just before)."""
        cpu = run.slot_cpu or 0
        items = [
            self._release_op(sk, run.run_id, cpu, now)
            for sk in run.slot_pools
            if f"h#{run.run_id}" in (self._get(POOL_PARTITION, sk) or {})
        ]
        if run.member_id is not None:
            member = self._get(member_partition(run.challenge_id, run.member_id), MEMBER_SORT_KEY) or {}
            if f"r#{run.run_id}" in member:
                items.append(
                    self._member_op(
                        run.challenge_id,
                        run.member_id,
                        "REMOVE #r",
                        {},
                        {"#r": f"r#{run.run_id}"},
                        condition="attribute_exists(#r)",
                    )
                )
        return items
