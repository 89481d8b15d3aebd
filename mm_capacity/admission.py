"""Waiting and admission (decisions 093, 094): `enqueue` creates a run WAITING with its queue entry and fair round,
`admit` makes it ADMITTED holding a slot in every pool below its cap, each ONE transaction; `pace` spends a RunTask
token of the current second."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mm_adapters.status_store import StatusStore
from mm_capacity.keys import (
    ADMISSION_RESEND_SECONDS,
    ENV_POOL,
    MEMBER_SORT_KEY,
    PACE_PARTITION,
    POOL_PARTITION,
    challenge_pool_key,
    make_wait_order,
    member_partition,
    phase_pool_key,
    wait_order_round,
)
from mm_capacity.records import (
    AdmissionLimits,
    AdmitOutcome,
    AdmitResult,
    EnqueueResult,
    NewRunView,
    WaitEntry,
)
from mm_capacity.table import (
    CONDITION_FAILED,
    CONFLICT,
    MAX_DETAIL,
    MAX_RACE_RETRIES,
    PAUSED_WAIT_REASON,
    CapacityTable,
    ddb_values,
    error_text,
    iso,
    operator_entry,
    plain,
)
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import (
    STATUS_TABLE_PARTITION_KEY,
)

if TYPE_CHECKING:
    from mm_contracts.models.audit import OperatorChange

_PACE_TTL_SECONDS = 3600
# One logger name for the whole capacity store, whichever of its modules logs (the store is split by job).
_logger = logging.getLogger("mm_capacity.store")


class CapacityAdmission(CapacityTable):
    """Waiting and admission: a run enqueued WAITING, admitted with its slots below every cap, and the RunTask pace."""

    def enqueue(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        wait_reason: str = "",
        change: OperatorChange | None = None,
        observed: NewRunView | None = None,
    ) -> EnqueueResult:
        """The run's item created WAITING (never over an existing item), its queue entry, the challenge's waiting
        count and the member's fair round, in one transaction. `created=False` (nothing written): a duplicate.
        `change`: an operator's change that created the run (a rerun of a phase that had none): its audit entry
        comes first in the run's history. A run of a paused challenge waits "challenge paused by an operator".
        `observed`: the member and challenge pool as the caller just read them (`new_run_view`): the first try
        starts from them (the member's round condition catches a stale one; a retry reads afresh)."""
        key = RunKey(submission.submission_id, phase)
        challenge_id = submission.challenge_id
        for _ in range(MAX_RACE_RETRIES):
            now = self._clock()
            if observed is not None:
                last_round, virtual_time, paused = (
                    observed.last_round,
                    observed.challenge.dispatched_round,
                    observed.challenge.paused,
                )
                observed = None
            else:
                last_round, virtual_time, paused = self._fair_round_inputs(challenge_id, submission.member_id)
            reason = wait_reason or (PAUSED_WAIT_REASON if paused else "")
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
            item = self._waiting_item(submission, entry, scorer_type, timeout_seconds, priority_rank, now)
            history = self._history(now, SubmissionState.WAITING, reason or "waiting for a slot")
            if change is not None:
                history = operator_entry(change) + history
            item["history"] = history
            if reason:
                item["waitReason"] = reason[:MAX_DETAIL]
            codes = self._transact(
                [
                    {
                        "Put": {
                            "TableName": self._status_table,
                            "Item": ddb_values(item),
                            "ConditionExpression": f"attribute_not_exists({STATUS_TABLE_PARTITION_KEY})",
                        }
                    },
                    *self._waiting_ops(entry, fair_round, last_round, now),
                ]
            )
            if codes is None:
                return EnqueueResult(True, entry.wait_order, StatusStore.record_from_item(ddb_values(item)))
            if codes and codes[0] == CONDITION_FAILED:
                return EnqueueResult(False, None, self._status.get(key.run_id))
            if CONDITION_FAILED not in codes and CONFLICT not in codes:
                raise RuntimeError(f"enqueue of {key.run_id} cancelled: {codes}")
        raise RuntimeError(f"enqueue of {key.run_id}: lost the race {MAX_RACE_RETRIES} times")

    def _fair_round_inputs(self, challenge_id: str, member_id: int) -> tuple[int, int, bool]:
        """The member's last round, the challenge's virtual time and its pause flag, read now."""
        member = self._get(member_partition(challenge_id, member_id), MEMBER_SORT_KEY) or {}
        last_round = int(plain(member["lastRound"])) if "lastRound" in member else 0
        pool = self._get(POOL_PARTITION, challenge_pool_key(challenge_id)) or {}
        virtual_time = int(plain(pool["dispatchedRound"])) if "dispatchedRound" in pool else 0
        return last_round, virtual_time, "paused" in pool

    @staticmethod
    def _waiting_item(
        submission: RoutedSubmission,
        entry: WaitEntry,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        now: float,
    ) -> dict[str, Any]:
        """A new WAITING status item (without its history)."""
        item: dict[str, Any] = {
            STATUS_TABLE_PARTITION_KEY: entry.run_id,
            "submissionId": entry.submission_id,
            "phase": entry.phase.value,
            "platform": submission.platform.value,
            "challengeId": entry.challenge_id,
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
            "createdAt": iso(now),
            "updatedAt": iso(now),
            # No expiresAt: a TTL must never delete a waiting run. Admission sets it.
        }
        if timeout_seconds is not None:
            item["timeoutSeconds"] = timeout_seconds
        return item

    def _waiting_ops(self, entry: WaitEntry, fair_round: int, last_round: int, now: float) -> list[dict[str, Any]]:
        """The capacity side of a run that starts waiting: its queue entry, the challenge's waiting count + 1, the
        member's waiting mark and fair round (conditioned on the round read: two enqueues of one member at once
        must not share a round, the second one retries)."""
        member_values: dict[str, Any] = {
            ":w": f"{entry.phase.value}|{entry.wait_order}",
            ":round": fair_round,
            ":observed_round": last_round,
            ":now": iso(now),
        }
        return [
            self._queue_put_op(entry),
            self._waiting_op(entry.challenge_id, 1, now),
            self._member_op(
                entry.challenge_id,
                entry.member_id,
                "SET #w = :w, lastRound = :round, updatedAt = :now",
                member_values,
                {"#w": f"w#{entry.run_id}"},
                condition="attribute_not_exists(lastRound) OR lastRound = :observed_round",
            ),
        ]

    def admit(
        self, entry: WaitEntry, limits: AdmissionLimits, *, waiting: LifecycleRecord | None = None
    ) -> AdmitResult:
        """WAITING -> ADMITTED with its slots in every pool (below each cap), in one transaction.

        `waiting`: the run's WAITING item as the caller holds it (the challenge processor's own run): the admitted
        record is then what the transaction wrote onto it, not a read after it (decision 114)."""
        pools = _admission_pools(entry, limits)
        refused = _refused_before_trying(pools, limits)
        if refused is not None:
            return refused
        for _ in range(MAX_RACE_RETRIES):
            now = self._clock()
            codes = self._transact(self._admission_items(entry, limits, pools, now))
            if codes is None:
                if limits.dispatched_round is None:
                    self._raise_dispatched_round(entry)
                return self._admitted(entry, _as_admitted(waiting, entry, limits, pools, now, self._ttl_seconds))
            if codes and codes[0] == CONDITION_FAILED:
                return AdmitResult(AdmitOutcome.GONE)
            for index, (sk, _) in enumerate(pools, start=2):
                if index < len(codes) and codes[index] == CONDITION_FAILED:
                    return AdmitResult(AdmitOutcome.FULL, sk)
            if CONFLICT not in codes:
                raise RuntimeError(f"admission of {entry.run_id} cancelled: {codes}")
        raise RuntimeError(f"admission of {entry.run_id}: conflicting transactions {MAX_RACE_RETRIES} times")

    def _admission_items(
        self, entry: WaitEntry, limits: AdmissionLimits, pools: list[tuple[str, int]], now: float
    ) -> list[dict[str, Any]]:
        """The run's update (conditioned on its wait), its queue entry's delete, a slot in each pool, the member's
        holding mark: item 0 is the run, items 2.. the pools (what `admit` reads the cancellation codes by)."""
        challenge_pool = challenge_pool_key(entry.challenge_id)
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
                ":now": iso(now),
                ":empty": [],
                ":entry": self._history(now, SubmissionState.ADMITTED, f"slot reserved ({limits.cpu_units} CPU)"),
            },
            condition="#state = :waiting AND waitOrder = :wait_order",
            names={"#state": "state"},
        )
        items = [run_update, self._queue_delete_op(entry.challenge_id, entry.wait_order)]
        fair_round = wait_order_round(entry.wait_order)
        raise_round = limits.dispatched_round is not None and fair_round > limits.dispatched_round
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
                    # Pause holds in the admission itself (decision 105): a paused challenge pool admits nothing.
                    refuse_paused=sk == challenge_pool,
                    dispatched_round=fair_round if raise_round and sk == challenge_pool else None,
                )
            )
        items.append(
            self._member_op(
                entry.challenge_id,
                entry.member_id,
                "SET #r = :phase, updatedAt = :now REMOVE #w",
                {":phase": entry.phase.value, ":now": iso(now)},
                {"#r": f"r#{entry.run_id}", "#w": f"w#{entry.run_id}"},
            )
        )
        return items

    def _admitted(self, entry: WaitEntry, known: LifecycleRecord | None) -> AdmitResult:
        """After the admission committed the run IS admitted, holding its slots, whatever fails next: nothing
        here may turn it back into "still waiting" for the caller (it would then neither send nor launch it)."""
        if known is not None:
            return AdmitResult(AdmitOutcome.ADMITTED, record=known)
        try:
            record = self._status.get(entry.run_id)
        except Exception as error:
            # The caller re-reads it; failing that, the sweeper re-sends the run past its `deadlineAt`.
            _logger.warning("admitted run not re-read", extra={"runId": entry.run_id, "error": error_text(error)})
            record = None
        return AdmitResult(AdmitOutcome.ADMITTED, record=record)

    def _raise_dispatched_round(self, entry: WaitEntry) -> None:
        """The challenge's virtual time only moves forward, for a caller that did not say which round the pool is
        at (with `AdmissionLimits.dispatched_round` it is set in the admission transaction). Outside it: it orders
        new runs fairly but guards nothing, and a crash that skips it only leaves the next runs a round earlier."""
        fair_round = wait_order_round(entry.wait_order)
        try:
            self._update_if(
                TableName=self._table,
                Key=self._pool_key(challenge_pool_key(entry.challenge_id)),
                UpdateExpression="SET dispatchedRound = :round",
                ConditionExpression="attribute_not_exists(dispatchedRound) OR dispatchedRound < :round",
                ExpressionAttributeValues=ddb_values({":round": fair_round}),
            )  # a failed condition: nothing to do
        except Exception as error:
            # e.g. TransactionConflict on the busy challenge pool; the round guards nothing (see above).
            _logger.warning("dispatched round not raised", extra={"runId": entry.run_id, "error": error_text(error)})

    def pace(self, per_second: int) -> bool:
        """Take one RunTask token of the current second, environment-wide; False when that second's are spent."""
        second = int(self._clock())
        return (
            self._update_if(
                TableName=self._table,
                Key=self._key(PACE_PARTITION, str(second)),
                UpdateExpression="SET expiresAt = :expires ADD n :one",
                ConditionExpression="attribute_not_exists(n) OR n < :per_second",
                ExpressionAttributeValues=ddb_values(
                    {":one": 1, ":per_second": per_second, ":expires": second + _PACE_TTL_SECONDS}
                ),
            )
            is not None
        )


def _as_admitted(
    waiting: LifecycleRecord | None,
    entry: WaitEntry,
    limits: AdmissionLimits,
    pools: list[tuple[str, int]],
    now: float,
    ttl_seconds: int,
) -> LifecycleRecord | None:
    """The caller's WAITING item with what the admission's run update wrote (`_admission_items`), or None when
    the caller holds no such item (the admitted run is then read back)."""
    if waiting is None or waiting.run_id != entry.run_id or waiting.wait_order != entry.wait_order:
        return None
    if waiting.state is not SubmissionState.WAITING:
        return None
    return waiting.model_copy(
        update={
            "state": SubmissionState.ADMITTED,
            "admitted_at": int(now),
            "deadline_at": int(now) + ADMISSION_RESEND_SECONDS,
            "slot_pools": [sk for sk, _ in pools],
            "slot_cpu": limits.cpu_units,
            "expires_at": int(now) + ttl_seconds,
            "wait_reason": None,
        }
    )


def _admission_pools(entry: WaitEntry, limits: AdmissionLimits) -> list[tuple[str, int]]:
    """(pool, cap) of every pool the run takes a slot in: the environment, its challenge, its phase if capped."""
    pools = [(ENV_POOL, limits.env_cap), (challenge_pool_key(entry.challenge_id), limits.challenge_cap)]
    if limits.phase_cap is not None:
        pools.append((phase_pool_key(entry.challenge_id, entry.phase), limits.phase_cap))
    return pools


def _refused_before_trying(pools: list[tuple[str, int]], limits: AdmissionLimits) -> AdmitResult | None:
    """A cap of 0, or a task heavier than the CPU cap, admits nothing: a pool that does not exist yet would pass
    `attribute_not_exists(used)`, so these never reach the transaction."""
    for sk, cap in pools:
        if cap <= 0:
            return AdmitResult(AdmitOutcome.FULL, sk)
    if limits.env_cpu_cap_units is not None and limits.cpu_units > limits.env_cpu_cap_units:
        return AdmitResult(AdmitOutcome.FULL, ENV_POOL)
    return None
