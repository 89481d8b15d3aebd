"""A new run launched without waiting (decision 114): when nothing waits in its challenge and every cap has room, the
run goes from "no item" to LAUNCHING (attempt 1, its launch lease) holding its slots in ONE transaction, the state
`enqueue` + `admit` + `claim_launch` reach in three. `new_run_view` is the one BatchGetItem before it.

Every condition of those three writes is in the one transaction: the run's item must not exist (a duplicate
delivery), the member's fair round must be the one read (two new runs of a member never share a round), each pool
below its cap and not yet holding the run, the challenge pool not paused and its queue empty (`waiting` = 0: fairness
is a condition, not a read before it). Any refusal writes nothing (a transaction is all or nothing), and the caller
falls back to `enqueue`: no run is lost, none overtakes a waiting one.
"""

from __future__ import annotations

from typing import Any

from mm_adapters.batch_get import batch_get_all
from mm_adapters.status_store import StatusStore
from mm_capacity.admission import CapacityAdmission
from mm_capacity.keys import (
    ENV_POOL,
    MEMBER_SORT_KEY,
    POOL_PARTITION,
    challenge_pool_key,
    make_wait_order,
    member_partition,
    phase_pool_key,
)
from mm_capacity.records import (
    AdmissionLimits,
    DirectLaunchOutcome,
    DirectLaunchResult,
    NewRunView,
    PoolState,
    WaitEntry,
)
from mm_capacity.table import CONDITION_FAILED, CONFLICT, ddb_values, iso, plain, pool_state_of
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY, STATUS_TABLE_PARTITION_KEY

MEMBER_REFUSED = "MEMBER"  # `refused_by` when the member's fair round moved (another new run of the member)
# The transaction's items, in order (cancellation reasons come back in the same order).
_RUN_ITEM, _MEMBER_ITEM, _FIRST_POOL_ITEM = 0, 1, 2


class CapacityDirectLaunch(CapacityAdmission):
    """The uncontended run's one read (`new_run_view`) and one transaction (`launch_directly`)."""

    def new_run_view(self, submission: RoutedSubmission, phase: ScoringPhase) -> NewRunView:
        """The run's status item, its member and the three pools it would take a slot in: ONE BatchGetItem,
        strongly consistent on both tables ([BatchGetItem](https://docs.aws.amazon.com/amazondynamodb/latest/
        APIReference/API_BatchGetItem.html): `ConsistentRead` per table)."""
        key = RunKey(submission.submission_id, phase)
        challenge_id = submission.challenge_id
        member_pk = member_partition(challenge_id, submission.member_id)
        pools = [ENV_POOL, challenge_pool_key(challenge_id), phase_pool_key(challenge_id, phase)]
        request: dict[str, Any] = {
            self._status_table: {"Keys": [self._run_key(key.run_id)], "ConsistentRead": True},
            self._table: {
                "Keys": [self._key(member_pk, MEMBER_SORT_KEY), *(self._pool_key(sk) for sk in pools)],
                "ConsistentRead": True,
            },
        }
        found = batch_get_all(self.client, request)
        run_items = found[self._status_table]
        capacity_items = {
            (plain(item[CAPACITY_TABLE_PARTITION_KEY]), plain(item[CAPACITY_TABLE_SORT_KEY])): item
            for item in found[self._table]
        }
        member = capacity_items.get((member_pk, MEMBER_SORT_KEY), {})
        run_item = next((item for item in run_items if plain(item[STATUS_TABLE_PARTITION_KEY]) == key.run_id), None)

        def pool(sk: str) -> PoolState:
            item = capacity_items.get((POOL_PARTITION, sk))
            return pool_state_of(item) if item is not None else PoolState.empty(sk)

        return NewRunView(
            record=StatusStore.record_from_item(run_item) if run_item is not None else None,
            last_round=int(plain(member["lastRound"])) if "lastRound" in member else 0,
            member_has_phase_runs=_has_phase_runs(member, key.run_id, phase),
            env=pool(pools[0]),
            challenge=pool(pools[1]),
            phase=pool(pools[2]),
        )

    def launch_directly(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        limits: AdmissionLimits,
        lease_seconds: int,
        view: NewRunView,
        config_version: int | None = None,
    ) -> DirectLaunchResult:
        """The run created LAUNCHING (attempt 1, lease) with its slots, in one transaction (see the module
        docstring). One try: a refusal of any kind falls back to `enqueue`, whose own retries handle races.
        `config_version`: the SSM version of the config this launch uses, recorded as `configVersion` (as the
        launch claim records it)."""
        key = RunKey(submission.submission_id, phase)
        now = self._clock()
        fair_round = max(view.last_round, view.challenge.dispatched_round) + 1
        entry = WaitEntry(
            challenge_id=submission.challenge_id,
            run_id=key.run_id,
            submission_id=key.submission_id,
            phase=phase,
            member_id=submission.member_id,
            wait_order=make_wait_order(priority_rank, fair_round, int(now * 1000), key.run_id),
            enqueued_at=int(now),
            rerun=submission.rerun,
        )
        pools = [(ENV_POOL, limits.env_cap), (challenge_pool_key(entry.challenge_id), limits.challenge_cap)]
        if limits.phase_cap is not None:
            pools.append((phase_pool_key(entry.challenge_id, phase), limits.phase_cap))
        item = self._waiting_item(submission, entry, scorer_type, timeout_seconds, priority_rank, now)
        item.update(self._launching_attributes(now, lease_seconds, [sk for sk, _ in pools], limits.cpu_units))
        if config_version is not None:
            item["configVersion"] = config_version
        codes = self._transact(
            [
                {
                    "Put": {
                        "TableName": self._status_table,
                        "Item": ddb_values(item),
                        "ConditionExpression": f"attribute_not_exists({STATUS_TABLE_PARTITION_KEY})",
                    }
                },
                self._member_op(
                    entry.challenge_id,
                    entry.member_id,
                    "SET #r = :phase, lastRound = :round, updatedAt = :now",
                    {":phase": phase.value, ":round": fair_round, ":observed_round": view.last_round, ":now": iso(now)},
                    {"#r": f"r#{entry.run_id}"},
                    condition="attribute_not_exists(lastRound) OR lastRound = :observed_round",
                ),
                *(
                    self._acquire_op(
                        sk,
                        entry.run_id,
                        limits.cpu_units,
                        now,
                        cap=cap,
                        cpu_cap=limits.env_cpu_cap_units if sk == ENV_POOL else None,
                        refuse_paused=sk == pools[1][0],
                        refuse_waiting=sk == pools[1][0],
                        dispatched_round=fair_round if sk == pools[1][0] else None,
                    )
                    for sk, cap in pools
                ),
            ]
        )
        if codes is None:
            return DirectLaunchResult(
                DirectLaunchOutcome.CLAIMED, record=StatusStore.record_from_item(ddb_values(item))
            )
        if codes and codes[_RUN_ITEM] == CONDITION_FAILED:
            return DirectLaunchResult(DirectLaunchOutcome.RUN_EXISTS)
        return DirectLaunchResult(DirectLaunchOutcome.NOT_NOW, refused_by=_refused_by(codes, pools))

    def _launching_attributes(self, now: float, lease_seconds: int, pools: list[str], cpu_units: int) -> dict[str, Any]:
        """What `admit` then `claim_launch` write over `enqueue`'s WAITING item (its wait order and rank stay: a
        throttled launch goes back to WAITING in exactly that place): the slots, LAUNCHING, attempt 1, the lease
        and the sweeper's `deadlineAt` at its end (as a claim sets them), the TTL, the history of both."""
        lease = int(now) + lease_seconds
        return {
            "history": [
                *self._history(now, SubmissionState.ADMITTED, f"slot reserved ({cpu_units} CPU), nothing waiting"),
                *self._history(now, SubmissionState.LAUNCHING, "claimed for launch, attempt 1"),
            ],
            "state": SubmissionState.LAUNCHING.value,
            "admittedAt": int(now),
            "slotPools": pools,
            "slotCpu": cpu_units,
            "launchAttempt": 1,
            "leaseUntil": lease,
            "deadlineAt": lease,
            "expiresAt": int(now) + self._ttl_seconds,
        }


def _has_phase_runs(member: dict[str, Any], run_id: str, phase: ScoringPhase) -> bool:
    """The member waits for (`w#` = "PHASE|order") or holds (`r#` = "PHASE") another run of `phase`."""
    return any(
        name[:2] in ("w#", "r#") and name[2:] != run_id and str(plain(value)).partition("|")[0] == phase.value
        for name, value in member.items()
    )


def _refused_by(codes: list[str], pools: list[tuple[str, int]]) -> str:
    if len(codes) > _MEMBER_ITEM and codes[_MEMBER_ITEM] == CONDITION_FAILED:
        return MEMBER_REFUSED
    for index, (sk, _) in enumerate(pools, start=_FIRST_POOL_ITEM):
        if index < len(codes) and codes[index] == CONDITION_FAILED:
            return sk
    return CONFLICT if CONFLICT in codes else ",".join(codes)
