"""Slots freed and repaired: `release` after a final outcome (a repeat frees nothing), the reconciler's conditional
`release_holder_if`, `force_hold` for a running task that holds no slot, and `correct_count` for a drifted pool."""

from __future__ import annotations

from typing import Any

from mm_capacity.keys import (
    ENV_POOL,
    MEMBER_SORT_KEY,
    POOL_PARTITION,
    challenge_pool_key,
    member_partition,
    phase_pool_key,
)
from mm_capacity.records import (
    PoolState,
)
from mm_capacity.table import (
    CONDITION_FAILED,
    CONFLICT,
    MAX_RACE_RETRIES,
    CapacityTable,
    ddb_values,
    iso,
)
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, SubmissionState
from mm_contracts.names import (
    STATUS_TABLE_PARTITION_KEY,
)

# A run in one of these states has ended: no task of its current admission runs, its slot is free to release.
ENDED_STATES = FINAL_STATES | {SubmissionState.DEAD_LETTERED}


class CapacitySlots(CapacityTable):
    """Slots freed (idempotently), taken by a running task that holds none, and pool counts corrected."""

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
            check = self._state_check(run_id, frozenset({observed_state}))
        return self._checked_release(check, pool_sk, run_id, cpu_units, member)

    def _state_check(self, run_id: str, states: frozenset[SubmissionState]) -> dict[str, Any]:
        """A ConditionCheck: the run's item is in one of `states`."""
        names = {f":observed_state{i}": state.value for i, state in enumerate(sorted(states))}
        return {
            "TableName": self._status_table,
            "Key": self._run_key(run_id),
            "ConditionExpression": f"#state IN ({', '.join(names)})",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": ddb_values(names),
        }

    def _checked_release(
        self,
        check: dict[str, Any],
        pool_sk: str | None,
        run_id: str,
        cpu_units: int,
        member: tuple[str, int] | None,
    ) -> bool:
        """Free the pool's slot (and the member's `r#`, if there) in one transaction with `check`. False: nothing
        freed (the check failed, or nothing was held)."""
        for _ in range(MAX_RACE_RETRIES):
            items: list[dict[str, Any]] = [{"ConditionCheck": check}]
            if pool_sk is not None:
                items.append(self._release_op(pool_sk, run_id, cpu_units, self._clock()))
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
            if len(items) == 1:
                return False  # nothing held
            codes = self._transact(items)
            if codes is None:
                return True
            if CONDITION_FAILED in codes[:2]:
                return False  # the run moved on, or the slot is free already
            if CONDITION_FAILED not in codes and CONFLICT not in codes:
                raise RuntimeError(f"release of {run_id} from {pool_sk} cancelled: {codes}")
            # The member's r# vanished in between, or a conflict: read again.
        return False

    def release(self, run: LifecycleRecord) -> bool:
        """Free every slot the run holds (`slot_pools`); True if any was freed. Idempotent: a repeat frees none.

        A run read as ended (final, or dead-lettered) is released only while its item still is: each pool's
        release is one transaction with a ConditionCheck on the run's state, so a late release (after the run
        was reopened by a rerun and admitted again) never frees the slot its new admission holds."""
        if run.state in ENDED_STATES:
            return self._release_ended(run)
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

    def _release_ended(self, run: LifecycleRecord) -> bool:
        check = self._state_check(run.run_id, ENDED_STATES)
        member = (run.challenge_id, run.member_id) if run.member_id is not None else None
        at_once = self._release_all_at_once(check, run, member)
        if at_once is not None:
            return at_once
        freed = False
        for sk in run.slot_pools:
            freed = self._checked_release(check, sk, run.run_id, run.slot_cpu or 0, member) or freed
        if member is not None:  # an r# a pool's release left (its slot was free already): only while still ended
            self._checked_release(check, None, run.run_id, 0, member)
        return freed

    def _release_all_at_once(
        self, check: dict[str, Any], run: LifecycleRecord, member: tuple[str, int] | None
    ) -> bool | None:
        """The usual release of an ended run, unread: ONE transaction of the state check, every pool's release and
        the member's `r#` removal, each conditioned on being held (decision 114). True: all freed. False: the run
        is no longer ended (nothing freed, as the per-pool path would find). None: something was free already or
        a conflict; the caller frees what is still held pool by pool, reading first."""
        if not run.slot_pools:
            return None
        now = self._clock()
        cpu = run.slot_cpu or 0
        items: list[dict[str, Any]] = [{"ConditionCheck": check}]
        items += [self._release_op(sk, run.run_id, cpu, now) for sk in run.slot_pools]
        if member is not None:
            challenge_id, member_id = member
            items.append(
                self._member_op(
                    challenge_id,
                    member_id,
                    "REMOVE #r",
                    {},
                    {"#r": f"r#{run.run_id}"},
                    condition="attribute_exists(#r)",
                )
            )
        codes = self._transact(items)
        if codes is None:
            return True
        if codes and codes[0] == CONDITION_FAILED:
            return False
        return None

    def force_hold(self, run: LifecycleRecord, *, cpu_units: int) -> bool:
        """A running task that holds no slot takes one in its challenge and the environment (and its phase pool
        when that phase is capped), ignoring the caps: the task runs whatever the count says. Only while the run
        is still in the state it was read in. False: nothing to take, or the run moved on."""
        pools = [ENV_POOL, challenge_pool_key(run.challenge_id)]
        phase_sk = phase_pool_key(run.challenge_id, run.phase)
        if self._get(POOL_PARTITION, phase_sk) is not None:
            pools.append(phase_sk)
        return self._transact_run_change(lambda now: self._force_hold_items(run, pools, cpu_units, now))

    def _force_hold_items(
        self, run: LifecycleRecord, pools: list[str], cpu_units: int, now: float
    ) -> list[dict[str, Any]] | None:
        """The pools the run does not hold yet, read now; None when it holds them all (nothing to take)."""
        missing = [sk for sk in pools if f"h#{run.run_id}" not in (self._get(POOL_PARTITION, sk) or {})]
        if not missing:
            return None
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
                    ":now": iso(now),
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
        return items

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
                ExpressionAttributeValues=ddb_values(values),
            )
            is not None
        )
