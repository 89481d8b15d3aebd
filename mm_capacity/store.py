"""The capacity table: slots, the durable queue of waiting runs, fair rounds and the RunTask pace (093, 094).

Every transition of a run and its capacity is ONE `TransactWriteItems` over the run's status item and its capacity
items, so a crash never leaves half of one: a run is WAITING with a queue entry, or ADMITTED holding its slots, never
neither. Items of the table (`pk`, `sk`):

    POOL / ENV | CHALLENGE#<id> | PHASE#<id>#<PHASE>   used, cpuUsed, waiting (challenge), h#<runId> = CPU units
                                                       per holder, dispatchedRound (challenge), cap, updatedAt
    QUEUE#<challengeId> / <waitOrder>                  one per waiting run; the queue's order is the sort key
    MEMBER#<challengeId>#<memberId> / -                lastRound, w#<runId> (waiting), r#<runId> (holding)
    PACE / <epochSecond>                               n: RunTask tokens spent in that second (TTL)

A pool condition admits a run only below the cap and only if the run is not a holder yet; a release removes the
holder and decrements in one conditional UpdateItem, so a second release is a no-op (never a double free).
`TransactWriteItems` reports which item's condition failed in `CancellationReasons` (one per item, in order):
that is how `admit` names the full pool or sees that the run is no longer waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mm_adapters import aws
from mm_adapters.status_store import REPORT_ATTRIBUTES, StatusStore
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import TestStatus
from mm_contracts.models.phase import Platform, RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import (
    CAPACITY_TABLE_PARTITION_KEY,
    CAPACITY_TABLE_SORT_KEY,
    CAPACITY_TABLE_TTL_ATTRIBUTE,
    STATUS_TABLE_PARTITION_KEY,
)

# An ADMITTED run whose message has not started its launch by then is re-sent by the sweeper (`deadlineAt`).
ADMISSION_RESEND_SECONDS = 300
ENV_POOL = "ENV"
POOL_PARTITION = "POOL"
PACE_PARTITION = "PACE"
MEMBER_SORT_KEY = "-"
_PACE_TTL_SECONDS = 3600
_MAX_RACE_RETRIES = 3
_MAX_DETAIL = 500
_CONDITION_FAILED = "ConditionalCheckFailed"
_CONFLICT = "TransactionConflict"
_serializer = TypeSerializer()
_logger = logging.getLogger(__name__)
_deserializer = TypeDeserializer()


def challenge_pool_key(challenge_id: str) -> str:
    return f"CHALLENGE#{challenge_id}"


def phase_pool_key(challenge_id: str, phase: ScoringPhase) -> str:
    return f"PHASE#{challenge_id}#{phase.value}"


def queue_partition(challenge_id: str) -> str:
    return f"QUEUE#{challenge_id}"


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


@dataclass(frozen=True)
class WaitEntry:
    challenge_id: str
    run_id: str
    submission_id: str
    phase: ScoringPhase
    member_id: int
    wait_order: str
    enqueued_at: int
    rerun: bool


class AdmitOutcome(StrEnum):
    ADMITTED = "admitted"
    FULL = "full"  # a pool is at its cap: `full_pool` names it
    GONE = "gone"  # the run is no longer waiting (cancelled, admitted by another dispatcher)


@dataclass(frozen=True)
class AdmitResult:
    outcome: AdmitOutcome
    full_pool: str | None = None  # "ENV", "CHALLENGE#..", "PHASE#.."
    # The ADMITTED run; None if it could not be re-read after the admission committed (it is admitted all the same)
    record: LifecycleRecord | None = None


@dataclass(frozen=True)
class EnqueueResult:
    created: bool  # False: the run already had an item (a duplicate delivery); nothing was written
    wait_order: str | None
    record: LifecycleRecord | None  # the WAITING run, or the existing item of a duplicate


@dataclass(frozen=True)
class PoolState:
    sk: str
    used: int
    cpu_used: int
    waiting: int
    holders: dict[str, int]  # run id -> CPU units held
    cap: int | None
    dispatched_round: int

    @classmethod
    def empty(cls, sk: str) -> PoolState:
        return cls(sk=sk, used=0, cpu_used=0, waiting=0, holders={}, cap=None, dispatched_round=0)


@dataclass(frozen=True)
class PoolSnapshot:
    env: PoolState
    challenges: dict[str, PoolState]
    phases: dict[tuple[str, ScoringPhase], PoolState]

    def all_pools(self) -> list[PoolState]:
        return [self.env, *self.challenges.values(), *self.phases.values()]

    def challenge(self, challenge_id: str) -> PoolState:
        return self.challenges.get(challenge_id) or PoolState.empty(challenge_pool_key(challenge_id))


@dataclass(frozen=True)
class AdmissionLimits:
    challenge_cap: int
    phase_cap: int | None
    env_cap: int
    env_cpu_cap_units: int | None
    cpu_units: int  # the run's weight


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _plain(value: Any) -> Any:
    plain = _deserializer.deserialize(value)
    return int(plain) if hasattr(plain, "to_integral_value") else plain


def _error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _cancellation_codes(error: ClientError) -> list[str] | None:
    """The per-item codes of a cancelled transaction, or None for any other error."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    return [str(reason.get("Code") or "None") for reason in error.response.get("CancellationReasons", [])]


class CapacityStore:
    def __init__(
        self,
        capacity_table_name: str,
        status_table_name: str,
        *,
        ttl_days: int = 90,
        clock: Callable[[], float] = time.time,
        dynamodb_client: Any | None = None,
    ) -> None:
        self._table = capacity_table_name
        self._status_table = status_table_name
        self._ttl_seconds = ttl_days * 86_400
        self._clock = clock
        self._client = dynamodb_client
        self._status = StatusStore(status_table_name, ttl_days=ttl_days, clock=clock, dynamodb_client=dynamodb_client)

    # ------------------------------------------------------------------ plumbing
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
        return [{"at": _iso(now), "state": state, "detail": detail[:_MAX_DETAIL]}]

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
            op["ExpressionAttributeValues"] = _values(values)
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
            codes = _cancellation_codes(error)
            if codes is None:
                raise
            return codes
        return None

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
    ) -> dict[str, Any]:
        """Take a slot of pool `sk` for `run_id` (below `cap`, None: ignore caps) if it does not hold one yet."""
        values: dict[str, Any] = {":cpu": cpu, ":one": 1, ":now": _iso(now)}
        update_set = "SET #h = :cpu, updatedAt = :now"
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
        return self._update_op(
            self._table,
            self._pool_key(sk),
            f"{update_set} {adds}",
            values,
            condition=condition,
            names={"#h": f"h#{run_id}"},
        )

    def _release_op(self, sk: str, run_id: str, cpu: int, now: float, *, waiting_delta: int = 0) -> dict[str, Any]:
        values: dict[str, Any] = {":minus_one": -1, ":minus_cpu": -cpu, ":now": _iso(now)}
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
            {":delta": delta, ":now": _iso(now)},
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
        return {"Put": {"TableName": self._table, "Item": _values(item)}}

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

    # ------------------------------------------------------------------ waiting
    def enqueue(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        wait_reason: str = "",
    ) -> EnqueueResult:
        """The run's item created WAITING (never over an existing item), its queue entry, the challenge's waiting
        count and the member's fair round, in one transaction. `created=False` (nothing written): a duplicate."""
        key = RunKey(submission.submission_id, phase)
        challenge_id = submission.challenge_id
        for _ in range(_MAX_RACE_RETRIES):
            now = self._clock()
            member = self._get(member_partition(challenge_id, submission.member_id), MEMBER_SORT_KEY) or {}
            last_round = int(_plain(member["lastRound"])) if "lastRound" in member else 0
            pool = self._get(POOL_PARTITION, challenge_pool_key(challenge_id)) or {}
            virtual_time = int(_plain(pool["dispatchedRound"])) if "dispatchedRound" in pool else 0
            # Start-time fair queuing: a member's next run is one round after their previous one or after the
            # round being dispatched now, whichever is later; so members take turns whatever their queue length.
            fair_round = max(last_round, virtual_time) + 1
            entry = WaitEntry(
                challenge_id=challenge_id,
                run_id=key.run_id,
                submission_id=key.submission_id,
                phase=phase,
                member_id=submission.member_id,
                wait_order=make_wait_order(priority_rank, fair_round, int(now * 1000), key.run_id),
                enqueued_at=int(now),
                rerun=submission.rerun,
            )
            item: dict[str, Any] = {
                STATUS_TABLE_PARTITION_KEY: key.run_id,
                "submissionId": key.submission_id,
                "phase": phase.value,
                "platform": submission.platform.value,
                "challengeId": challenge_id,
                "state": SubmissionState.WAITING.value,
                "correlationId": submission.correlation_id,
                "memberId": submission.member_id,
                "scorerType": scorer_type,
                "launchAttempt": 0,
                "launchAmbiguous": False,
                "routedMessage": submission.to_json(),
                "waitOrder": entry.wait_order,
                "enqueuedAt": entry.enqueued_at,
                "priorityRank": priority_rank,
                "rerun": submission.rerun,
                "createdAt": _iso(now),
                "updatedAt": _iso(now),
                # No expiresAt: a TTL must never delete a waiting run. Admission sets it.
                "history": self._history(now, SubmissionState.WAITING, wait_reason or "waiting for a slot"),
            }
            if wait_reason:
                item["waitReason"] = wait_reason[:_MAX_DETAIL]
            if timeout_seconds is not None:
                item["timeoutSeconds"] = timeout_seconds
            member_values: dict[str, Any] = {
                ":w": f"{phase.value}|{entry.wait_order}",
                ":round": fair_round,
                ":observed_round": last_round,
                ":now": _iso(now),
            }
            codes = self._transact(
                [
                    {
                        "Put": {
                            "TableName": self._status_table,
                            "Item": _values(item),
                            "ConditionExpression": f"attribute_not_exists({STATUS_TABLE_PARTITION_KEY})",
                        }
                    },
                    self._queue_put_op(entry),
                    self._waiting_op(challenge_id, 1, now),
                    # Two enqueues of one member at once must not share a round: the second one retries.
                    self._member_op(
                        challenge_id,
                        submission.member_id,
                        "SET #w = :w, lastRound = :round, updatedAt = :now",
                        member_values,
                        {"#w": f"w#{key.run_id}"},
                        condition="attribute_not_exists(lastRound) OR lastRound = :observed_round",
                    ),
                ]
            )
            if codes is None:
                return EnqueueResult(True, entry.wait_order, StatusStore.record_from_item(_values(item)))
            if codes and codes[0] == _CONDITION_FAILED:
                return EnqueueResult(False, None, self._status.get(key.run_id))
            if _CONDITION_FAILED not in codes and _CONFLICT not in codes:
                raise RuntimeError(f"enqueue of {key.run_id} cancelled: {codes}")
        raise RuntimeError(f"enqueue of {key.run_id}: lost the race {_MAX_RACE_RETRIES} times")

    def admit(self, entry: WaitEntry, limits: AdmissionLimits) -> AdmitResult:
        """WAITING -> ADMITTED with its slots in every pool (below each cap), in one transaction."""
        challenge_pool = challenge_pool_key(entry.challenge_id)
        pools: list[tuple[str, int]] = [(ENV_POOL, limits.env_cap), (challenge_pool, limits.challenge_cap)]
        if limits.phase_cap is not None:
            pools.append((phase_pool_key(entry.challenge_id, entry.phase), limits.phase_cap))
        # A cap of 0, or a task heavier than the CPU cap, admits nothing: a pool that does not exist yet would pass
        # `attribute_not_exists(used)`, so these never reach the transaction.
        for sk, cap in pools:
            if cap <= 0:
                return AdmitResult(AdmitOutcome.FULL, sk)
        if limits.env_cpu_cap_units is not None and limits.cpu_units > limits.env_cpu_cap_units:
            return AdmitResult(AdmitOutcome.FULL, ENV_POOL)
        for _ in range(_MAX_RACE_RETRIES):
            now = self._clock()
            run_update = self._update_op(
                self._status_table,
                self._run_key(entry.run_id),
                "SET #state = :admitted, admittedAt = :now_epoch, deadlineAt = :deadline, slotPools = :pools, "
                "slotCpu = :cpu, expiresAt = :expires, updatedAt = :now, "
                "history = list_append(if_not_exists(history, :empty), :entry) REMOVE waitReason",
                {
                    ":admitted": SubmissionState.ADMITTED.value,
                    ":waiting": SubmissionState.WAITING.value,
                    ":wait_order": entry.wait_order,
                    ":now_epoch": int(now),
                    ":deadline": int(now) + ADMISSION_RESEND_SECONDS,
                    ":pools": [sk for sk, _ in pools],
                    ":cpu": limits.cpu_units,
                    ":expires": int(now) + self._ttl_seconds,
                    ":now": _iso(now),
                    ":empty": [],
                    ":entry": self._history(now, SubmissionState.ADMITTED, f"slot reserved ({limits.cpu_units} CPU)"),
                },
                condition="#state = :waiting AND waitOrder = :wait_order",
                names={"#state": "state"},
            )
            items = [run_update, self._queue_delete_op(entry.challenge_id, entry.wait_order)]
            for sk, cap in pools:
                items.append(
                    self._acquire_op(
                        sk,
                        entry.run_id,
                        limits.cpu_units,
                        now,
                        cap=cap,
                        waiting_delta=-1 if sk == challenge_pool else 0,
                        cpu_cap=limits.env_cpu_cap_units if sk == ENV_POOL else None,
                    )
                )
            items.append(
                self._member_op(
                    entry.challenge_id,
                    entry.member_id,
                    "SET #r = :phase, updatedAt = :now REMOVE #w",
                    {":phase": entry.phase.value, ":now": _iso(now)},
                    {"#r": f"r#{entry.run_id}", "#w": f"w#{entry.run_id}"},
                )
            )
            codes = self._transact(items)
            if codes is None:
                return self._admitted(entry)
            if codes and codes[0] == _CONDITION_FAILED:
                return AdmitResult(AdmitOutcome.GONE)
            for index, (sk, _) in enumerate(pools, start=2):
                if index < len(codes) and codes[index] == _CONDITION_FAILED:
                    return AdmitResult(AdmitOutcome.FULL, sk)
            if _CONFLICT not in codes:
                raise RuntimeError(f"admission of {entry.run_id} cancelled: {codes}")
        raise RuntimeError(f"admission of {entry.run_id}: conflicting transactions {_MAX_RACE_RETRIES} times")

    def _admitted(self, entry: WaitEntry) -> AdmitResult:
        """After the admission committed the run IS admitted, holding its slots, whatever fails next: nothing
        here may turn it back into "still waiting" for the caller (it would then neither send nor launch it)."""
        try:
            self._raise_dispatched_round(entry)
        except Exception as error:
            # e.g. TransactionConflict on the busy challenge pool; the round guards nothing (see below).
            _logger.warning("dispatched round not raised", extra={"runId": entry.run_id, "error": _error_text(error)})
        try:
            record = self._status.get(entry.run_id)
        except Exception as error:
            # The caller re-reads it; failing that, the sweeper re-sends the run past its `deadlineAt`.
            _logger.warning("admitted run not re-read", extra={"runId": entry.run_id, "error": _error_text(error)})
            record = None
        return AdmitResult(AdmitOutcome.ADMITTED, record=record)

    def _raise_dispatched_round(self, entry: WaitEntry) -> None:
        """The challenge's virtual time only moves forward. Outside the admission transaction: it orders new runs
        fairly but guards nothing, and a crash that skips it only leaves the next runs a round earlier."""
        fair_round = wait_order_round(entry.wait_order)
        self._update_if(
            TableName=self._table,
            Key=self._pool_key(challenge_pool_key(entry.challenge_id)),
            UpdateExpression="SET dispatchedRound = :round",
            ConditionExpression="attribute_not_exists(dispatchedRound) OR dispatchedRound < :round",
            ExpressionAttributeValues=_values({":round": fair_round}),
        )  # a failed condition: nothing to do

    # ------------------------------------------------------------------ releasing
    def release_holder(self, pool_sk: str, run_id: str, cpu_units: int) -> bool:
        """Free one pool's slot of `run_id`; a no-op (False) when it holds none there (never a double free)."""
        op = self._release_op(pool_sk, run_id, cpu_units, self._clock())["Update"]
        return self._update_if(**op) is not None

    def release_holder_if(
        self,
        pool_sk: str,
        run_id: str,
        cpu_units: int,
        observed_state: SubmissionState | None,
        *,
        member: tuple[str, int] | None = None,
    ) -> bool:
        """The reconciler's release: free one pool's slot of `run_id` only while its run is still in the state the
        plan read (`observed_state`; None: the run item still absent), in one transaction with a ConditionCheck on
        the status item, so a run re-admitted since the snapshot keeps the slot it legitimately holds again.
        `member` (challenge id, member id): its `r#<runId>` goes too (if there). False: nothing freed."""
        if observed_state is None:
            check: dict[str, Any] = {
                "TableName": self._status_table,
                "Key": self._run_key(run_id),
                "ConditionExpression": f"attribute_not_exists({STATUS_TABLE_PARTITION_KEY})",
            }
        else:
            check = {
                "TableName": self._status_table,
                "Key": self._run_key(run_id),
                "ConditionExpression": "#state = :observed_state",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": _values({":observed_state": observed_state.value}),
            }
        for _ in range(_MAX_RACE_RETRIES):
            items = [{"ConditionCheck": check}, self._release_op(pool_sk, run_id, cpu_units, self._clock())]
            if member is not None:
                challenge_id, member_id = member
                held = self._get(member_partition(challenge_id, member_id), MEMBER_SORT_KEY) or {}
                if f"r#{run_id}" in held:
                    items.append(
                        self._member_op(
                            challenge_id,
                            member_id,
                            "REMOVE #r",
                            {},
                            {"#r": f"r#{run_id}"},
                            condition="attribute_exists(#r)",
                        )
                    )
            codes = self._transact(items)
            if codes is None:
                return True
            if _CONDITION_FAILED in codes[:2]:
                return False  # the run moved on, or the slot is free already
            if _CONDITION_FAILED not in codes and _CONFLICT not in codes:
                raise RuntimeError(f"release of {run_id} from {pool_sk} cancelled: {codes}")
            # The member's r# vanished in between, or a conflict: read again.
        return False

    def release(self, run: LifecycleRecord) -> bool:
        """Free every slot the run holds (`slot_pools`); True if any was freed. Idempotent: a repeat frees none."""
        freed = False
        for sk in run.slot_pools:
            freed = self.release_holder(sk, run.run_id, run.slot_cpu or 0) or freed
        if run.member_id is not None:
            self._update_if(
                TableName=self._table,
                Key=self._key(member_partition(run.challenge_id, run.member_id), MEMBER_SORT_KEY),
                UpdateExpression="REMOVE #r",
                ConditionExpression="attribute_exists(#r)",  # never create an empty member item
                ExpressionAttributeNames={"#r": f"r#{run.run_id}"},
            )  # a failed condition: nothing to do
        return freed

    def requeue(self, run: LifecycleRecord, *, reason: str) -> bool:
        """A slot-holding run that did not start goes back to WAITING with its ORIGINAL wait order (it keeps its
        place), its slots released, in one transaction. `launchAttempt` and `launchAmbiguous` stay (the clientToken
        rules are unchanged); the lease goes. Conditioned on the state and attempt of `run` (pass it as it is now).
        False: the run moved on (nothing written)."""
        requeueable = {
            SubmissionState.ADMITTED,
            SubmissionState.LAUNCHING,
            SubmissionState.LAUNCH_FAILED,
            SubmissionState.DEAD_LETTERED,
        }
        if run.state not in requeueable or run.member_id is None:
            return False
        phase = run.phase
        for _ in range(_MAX_RACE_RETRIES):
            now = self._clock()
            # A run dead-lettered before capacity existed has no wait order: it goes to the front of its rank.
            rank = run.priority_rank if run.priority_rank is not None else 0
            wait_order = run.wait_order or make_wait_order(rank, 0, int(now * 1000), run.run_id)
            held = {sk for sk in run.slot_pools if f"h#{run.run_id}" in (self._get(POOL_PARTITION, sk) or {})}
            values: dict[str, Any] = {
                ":waiting": SubmissionState.WAITING.value,
                ":observed_state": run.state.value,
                ":observed_attempt": run.launch_attempt,
                ":wait_order": wait_order,
                ":reason": reason[:_MAX_DETAIL],
                ":now_epoch": int(now),
                ":rank": rank,
                ":now": _iso(now),
                ":empty": [],
                ":entry": self._history(now, SubmissionState.WAITING, f"back in the queue: {reason}"),
            }
            removes = ["leaseUntil", "deadlineAt", "slotPools", "slotCpu", "admittedAt", "expiresAt", "relaunchPending"]
            condition = "#state = :observed_state AND launchAttempt = :observed_attempt"
            if run.state is SubmissionState.DEAD_LETTERED:
                # A redrive starts the run afresh (as `claim_launch` does): a dead-letter report still pending is
                # forgotten, never while it is being sent (decision 086).
                removes.extend(REPORT_ATTRIBUTES)
                condition += " AND (attribute_not_exists(reportLeaseUntil) OR reportLeaseUntil < :now_epoch)"
            run_update = self._update_op(
                self._status_table,
                self._run_key(run.run_id),
                "SET #state = :waiting, waitOrder = :wait_order, waitReason = :reason, updatedAt = :now, "
                "enqueuedAt = if_not_exists(enqueuedAt, :now_epoch), "
                "priorityRank = if_not_exists(priorityRank, :rank), "
                "history = list_append(if_not_exists(history, :empty), :entry) REMOVE " + ", ".join(removes),
                values,
                condition=condition,
                names={"#state": "state"},
            )
            enqueued_at = run.enqueued_at if run.enqueued_at is not None else int(now)
            entry = WaitEntry(
                run.challenge_id,
                run.run_id,
                run.submission_id,
                phase,
                run.member_id,
                wait_order,
                enqueued_at,
                run.rerun,
            )
            challenge_pool = challenge_pool_key(run.challenge_id)
            items = [run_update, self._queue_put_op(entry)]
            cpu = run.slot_cpu or 0
            if challenge_pool in held:
                items.append(self._release_op(challenge_pool, run.run_id, cpu, now, waiting_delta=1))
            else:
                items.append(self._waiting_op(run.challenge_id, 1, now))
            items.extend(self._release_op(sk, run.run_id, cpu, now) for sk in sorted(held - {challenge_pool}))
            items.append(
                self._member_op(
                    run.challenge_id,
                    run.member_id,
                    "SET #w = :w, updatedAt = :now REMOVE #r",
                    {":w": f"{phase.value}|{wait_order}", ":now": _iso(now)},
                    {"#w": f"w#{run.run_id}", "#r": f"r#{run.run_id}"},
                )
            )
            codes = self._transact(items)
            if codes is None:
                return True
            if codes and codes[0] == _CONDITION_FAILED:
                return False
            # A pool's holder vanished in between (a concurrent release): read the holders again.
        return False

    # ------------------------------------------------------------------ superseding
    def cancel_waiting(self, run_id: str, *, reason: str, report_due_in_seconds: int = 0) -> LifecycleRecord | None:
        """WAITING -> CANCELLED (final), its queue entry gone, in one transaction. v6: the report is due (PENDING,
        `testStatus` CANCELLED, `deadlineAt` now + `report_due_in_seconds`); v5: NOT_REQUIRED (decision 095).
        None: the run was not waiting (nothing written)."""
        record = self._status.get(run_id)
        if record is None or record.state is not SubmissionState.WAITING or not record.wait_order:
            return None
        now = self._clock()
        report_due = record.platform is Platform.V6
        values: dict[str, Any] = {
            ":cancelled": SubmissionState.CANCELLED.value,
            ":waiting": SubmissionState.WAITING.value,
            ":wait_order": record.wait_order,
            ":reason": reason[:_MAX_DETAIL],
            ":test_status": TestStatus.CANCELLED.value,
            ":report": (ReportStatus.PENDING if report_due else ReportStatus.NOT_REQUIRED).value,
            ":expires": int(now) + self._ttl_seconds,
            ":now": _iso(now),
            ":empty": [],
            ":entry": self._history(now, SubmissionState.CANCELLED, reason),
        }
        update = (
            "SET #state = :cancelled, reason = :reason, testStatus = :test_status, reportStatus = :report, "
            "stoppedAt = :now, updatedAt = :now, expiresAt = :expires, "
            "history = list_append(if_not_exists(history, :empty), :entry)"
        )
        if report_due:
            values[":deadline"] = int(now) + report_due_in_seconds
            update += ", deadlineAt = :deadline"
        items = [
            self._update_op(
                self._status_table,
                self._run_key(run_id),
                update + " REMOVE waitReason",
                values,
                condition="#state = :waiting AND waitOrder = :wait_order",
                names={"#state": "state"},
            ),
            self._queue_delete_op(record.challenge_id, record.wait_order),
            self._waiting_op(record.challenge_id, -1, now),
        ]
        if record.member_id is not None:
            items.append(self._member_op(record.challenge_id, record.member_id, "REMOVE #w", {}, {"#w": f"w#{run_id}"}))
        if self._transact(items) is not None:
            return None
        return self._status.get(run_id)

    def request_cancel_running(self, run_id: str) -> LifecycleRecord | None:
        """LAUNCHED: `cancelRequested` = true (the caller stops the task; its STOPPED event records CANCELLED)."""
        now = self._clock()
        response = self._update_if(
            TableName=self._status_table,
            Key=self._run_key(run_id),
            UpdateExpression="SET cancelRequested = :true, updatedAt = :now, "
            "history = list_append(if_not_exists(history, :empty), :entry)",
            ConditionExpression="#state = :launched",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=_values(
                {
                    ":true": True,
                    ":launched": SubmissionState.LAUNCHED.value,
                    ":now": _iso(now),
                    ":empty": [],
                    ":entry": self._history(now, "CANCEL_REQUESTED", "superseded by a newer submission"),
                }
            ),
            ReturnValues="ALL_NEW",
        )
        if response is None:
            return None
        return StatusStore.record_from_item(response["Attributes"])

    def member_runs(
        self, challenge_id: str, member_id: int
    ) -> tuple[list[tuple[str, ScoringPhase]], list[tuple[str, ScoringPhase]]]:
        """(waiting, holding) runs of a member in a challenge, as (run id, phase); waiting ones in queue order."""
        item = self._get(member_partition(challenge_id, member_id), MEMBER_SORT_KEY) or {}
        waiting: list[tuple[str, str, ScoringPhase]] = []
        holding: list[tuple[str, ScoringPhase]] = []
        for name, value in item.items():
            text = str(_plain(value))
            if name.startswith("w#"):
                phase, _, wait_order = text.partition("|")
                waiting.append((wait_order, name[2:], ScoringPhase(phase)))
            elif name.startswith("r#"):
                holding.append((name[2:], ScoringPhase(text)))
        return [(run_id, phase) for _, run_id, phase in sorted(waiting)], sorted(holding)

    # ------------------------------------------------------------------ reconciler
    def force_hold(self, run: LifecycleRecord, *, cpu_units: int) -> bool:
        """A running task that holds no slot takes one in its challenge and the environment (and its phase pool
        when that phase is capped), ignoring the caps: the task runs whatever the count says. Only while the run
        is still in the state it was read in. False: nothing to take, or the run moved on."""
        pools = [ENV_POOL, challenge_pool_key(run.challenge_id)]
        phase_sk = phase_pool_key(run.challenge_id, run.phase)
        if self._get(POOL_PARTITION, phase_sk) is not None:
            pools.append(phase_sk)
        for _ in range(_MAX_RACE_RETRIES):
            now = self._clock()
            missing = [sk for sk in pools if f"h#{run.run_id}" not in (self._get(POOL_PARTITION, sk) or {})]
            if not missing:
                return False
            items = [
                self._update_op(
                    self._status_table,
                    self._run_key(run.run_id),
                    "SET slotPools = :pools, slotCpu = :cpu, updatedAt = :now, "
                    "history = list_append(if_not_exists(history, :empty), :entry)",
                    {
                        ":pools": pools,
                        ":cpu": cpu_units,
                        ":observed_state": run.state.value,
                        ":now": _iso(now),
                        ":empty": [],
                        ":entry": self._history(now, "SLOT_RECONCILED", "a running task took its slot"),
                    },
                    condition="#state = :observed_state",
                    names={"#state": "state"},
                ),
                *(self._acquire_op(sk, run.run_id, cpu_units, now, cap=None) for sk in missing),
            ]
            if run.member_id is not None:
                items.append(
                    self._member_op(
                        run.challenge_id,
                        run.member_id,
                        "SET #r = :phase",
                        {":phase": run.phase.value},
                        {"#r": f"r#{run.run_id}"},
                    )
                )
            codes = self._transact(items)
            if codes is None:
                return True
            if codes and codes[0] == _CONDITION_FAILED:
                return False
        return False

    def correct_count(self, pool: PoolState) -> bool:
        """Set a pool's `used` / `cpuUsed` to what its holders add up to, if they are still what was read."""
        values: dict[str, Any] = {
            ":used": len(pool.holders),
            ":cpu_used": sum(pool.holders.values()),
            ":observed_used": pool.used,
            ":observed_cpu": pool.cpu_used,
        }
        return (
            self._update_if(
                TableName=self._table,
                Key=self._pool_key(pool.sk),
                UpdateExpression="SET used = :used, cpuUsed = :cpu_used",
                ConditionExpression="(attribute_not_exists(used) OR used = :observed_used) AND "
                "(attribute_not_exists(cpuUsed) OR cpuUsed = :observed_cpu)",
                ExpressionAttributeValues=_values(values),
            )
            is not None
        )

    # ------------------------------------------------------------------ reading
    def pools(self) -> PoolSnapshot:
        """Every pool, from one strongly consistent Query of the POOL partition."""
        env = PoolState.empty(ENV_POOL)
        challenges: dict[str, PoolState] = {}
        phases: dict[tuple[str, ScoringPhase], PoolState] = {}
        expression = f"{CAPACITY_TABLE_PARTITION_KEY} = :pk"
        for item in self._query(
            KeyConditionExpression=expression, ExpressionAttributeValues=_values({":pk": POOL_PARTITION})
        ):
            state = _pool_state(item)
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
            "ExpressionAttributeValues": _values({":pk": queue_partition(challenge_id)}),
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = self._key(queue_partition(challenge_id), after)
        response = self.client.query(**request)
        return [_wait_entry(item) for item in response.get("Items", [])]

    def queue_entries(self, challenge_id: str) -> list[WaitEntry]:
        items = self._query(
            KeyConditionExpression=f"{CAPACITY_TABLE_PARTITION_KEY} = :pk",
            ExpressionAttributeValues=_values({":pk": queue_partition(challenge_id)}),
        )
        return [_wait_entry(item) for item in items]

    def queue_position(self, challenge_id: str, wait_order: str) -> int:
        """1-based place of the entry `wait_order` in its challenge's queue (entries ahead of it + 1)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": f"{CAPACITY_TABLE_PARTITION_KEY} = :pk AND {CAPACITY_TABLE_SORT_KEY} < :order",
            "ExpressionAttributeValues": _values({":pk": queue_partition(challenge_id), ":order": wait_order}),
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

    def mark_admission_resent(self, run_id: str, *, observed_deadline: int) -> bool:
        """The sweeper re-sent an ADMITTED run's message: look again `ADMISSION_RESEND_SECONDS` later, and count
        the re-send (`admissionResends`: the sweeper dead-letters a run whose message is never processed)."""
        now = self._clock()
        return (
            self._update_if(
                TableName=self._status_table,
                Key=self._run_key(run_id),
                UpdateExpression="SET deadlineAt = :deadline, updatedAt = :now, "
                "history = list_append(if_not_exists(history, :empty), :entry) ADD admissionResends :one",
                ConditionExpression="#state = :admitted AND deadlineAt = :observed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=_values(
                    {
                        ":deadline": int(now) + ADMISSION_RESEND_SECONDS,
                        ":admitted": SubmissionState.ADMITTED.value,
                        ":observed": observed_deadline,
                        ":one": 1,
                        ":now": _iso(now),
                        ":empty": [],
                        ":entry": self._history(now, "ADMISSION_RESENT", "admitted run's message sent again"),
                    }
                ),
            )
            is not None
        )

    def dead_letter_admission(self, run: LifecycleRecord, *, reason: str) -> LifecycleRecord | None:
        """An ADMITTED run whose message was re-sent and never processed -> DEAD_LETTERED with `reason`, its
        slots released and the member's `r#` removed, in one transaction (conditioned on the state and attempt of
        `run`). It never called RunTask for this admission, so its launch is definite: a v6 run that is not
        `launchAmbiguous` from an earlier attempt has its terminal report due now (PENDING, FAILED, as StatusStore's
        definite dead-letter writes it, decision 086); otherwise no deadline (an operator's redrive requeues it).
        `launchAmbiguous` stays as it is. None: the run moved on (nothing written)."""
        if run.state is not SubmissionState.ADMITTED:
            return None
        report_due = run.platform is Platform.V6 and not run.launch_ambiguous
        for _ in range(_MAX_RACE_RETRIES):
            now = self._clock()
            values: dict[str, Any] = {
                ":dead": SubmissionState.DEAD_LETTERED.value,
                ":admitted": SubmissionState.ADMITTED.value,
                ":observed_attempt": run.launch_attempt,
                ":reason": reason[:_MAX_DETAIL],
                ":now": _iso(now),
                ":empty": [],
                ":entry": self._history(now, SubmissionState.DEAD_LETTERED, reason),
            }
            sets = (
                "#state = :dead, reason = :reason, updatedAt = :now, "
                "history = list_append(if_not_exists(history, :empty), :entry)"
            )
            removes = "leaseUntil"
            if report_due:
                values.update(
                    {
                        ":pending": ReportStatus.PENDING.value,
                        ":failed": TestStatus.FAILED.value,
                        ":report_deadline": int(now),
                    }
                )
                sets += ", reportStatus = :pending, testStatus = :failed, deadlineAt = :report_deadline"
            else:
                removes += ", deadlineAt"  # in the DLQ: an operator's redrive is the next step, not the sweeper
            items = [
                self._update_op(
                    self._status_table,
                    self._run_key(run.run_id),
                    f"SET {sets} REMOVE {removes}",
                    values,
                    condition="#state = :admitted AND launchAttempt = :observed_attempt",
                    names={"#state": "state"},
                ),
                *self._release_ops_for(run, now),
            ]
            codes = self._transact(items)
            if codes is None:
                return self._status.get(run.run_id)
            if codes and codes[0] == _CONDITION_FAILED:
                return None
            # A holder (or the member's r#) vanished in between (a concurrent release): read them again.
        raise RuntimeError(f"dead-letter of admitted {run.run_id}: lost the race {_MAX_RACE_RETRIES} times")

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

    # ------------------------------------------------------------------ pace
    def pace(self, per_second: int) -> bool:
        """Take one RunTask token of the current second, environment-wide; False when that second's are spent."""
        second = int(self._clock())
        return (
            self._update_if(
                TableName=self._table,
                Key=self._key(PACE_PARTITION, str(second)),
                UpdateExpression="SET expiresAt = :expires ADD n :one",
                ConditionExpression="attribute_not_exists(n) OR n < :per_second",
                ExpressionAttributeValues=_values(
                    {":one": 1, ":per_second": per_second, ":expires": second + _PACE_TTL_SECONDS}
                ),
            )
            is not None
        )


def _pool_state(item: dict[str, Any]) -> PoolState:
    def number(name: str) -> int:
        return int(_plain(item[name])) if name in item else 0

    holders = {name[2:]: int(_plain(value)) for name, value in item.items() if name.startswith("h#")}
    return PoolState(
        sk=str(_plain(item[CAPACITY_TABLE_SORT_KEY])),
        used=number("used"),
        cpu_used=number("cpuUsed"),
        waiting=number("waiting"),
        holders=holders,
        cap=int(_plain(item["cap"])) if "cap" in item else None,
        dispatched_round=number("dispatchedRound"),
    )


def _wait_entry(item: dict[str, Any]) -> WaitEntry:
    plain = {name: _plain(value) for name, value in item.items()}
    return WaitEntry(
        challenge_id=str(plain["challengeId"]),
        run_id=str(plain["runId"]),
        submission_id=str(plain["submissionId"]),
        phase=ScoringPhase(plain["phase"]),
        member_id=int(plain["memberId"]),
        wait_order=str(plain[CAPACITY_TABLE_SORT_KEY]),
        enqueued_at=int(plain["enqueuedAt"]),
        rerun=bool(plain.get("rerun", False)),
    )


__all__ = [
    "ADMISSION_RESEND_SECONDS",
    "CAPACITY_TABLE_TTL",
    "ENV_POOL",
    "AdmissionLimits",
    "AdmitOutcome",
    "AdmitResult",
    "CapacityStore",
    "EnqueueResult",
    "PoolSnapshot",
    "PoolState",
    "WaitEntry",
    "capacity_table_definition",
    "challenge_pool_key",
    "make_wait_order",
    "phase_pool_key",
]
