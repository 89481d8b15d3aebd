"""An operator's rerun (decision 106): a new run of the same item. The run's identity stays (submission, phase) with
one status item per run: a final run is reopened WAITING in its challenge's capacity queue, in ONE transaction like
`enqueue` (the status item's update conditioned on the state and `updatedAt` it was read with, its queue entry, the
challenge's waiting count + 1, the member's waiting mark and fair round, and the release of any slot it still holds).

The reopened run waits under the same caps, pacing and priorities as any other (rank of the caller's choice: the
challenge's RERUN class, or its phase's own class for a SYSTEM dispatch). `launchAttempt` is kept, so the claim that
launches the rerun advances it (`claim_launch` from ADMITTED) and its RunTask clientToken differs from every earlier
attempt's; `launchAmbiguous` is false (the earlier task is known: it stopped). The previous outcome and report fields
go (the history keeps them), `rerunCount` + 1, and the operator's audit entry and a WAITING entry are appended. A
STOPPED event of an earlier task never settles the reopened run: `record_outcome` matches the task ARN (removed here)
or the attempt (advanced by the claim). A phase that had no run is enqueued afresh with the audit entry first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mm_capacity.admission import CapacityAdmission
from mm_capacity.keys import (
    MEMBER_SORT_KEY,
    POOL_PARTITION,
    challenge_pool_key,
    make_wait_order,
    member_partition,
)
from mm_capacity.records import WaitEntry
from mm_capacity.table import (
    CONDITION_FAILED,
    CONFLICT,
    MAX_DETAIL,
    MAX_RACE_RETRIES,
    PAUSED_WAIT_REASON,
    iso,
    operator_entry,
    plain,
)
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.models.routed import RoutedSubmission

if TYPE_CHECKING:
    from mm_contracts.models.audit import OperatorChange

# What a reopened run forgets of its previous attempt (the history keeps it): the task, its outcome and report, and
# every lease, deadline and TTL (a TTL must never delete a waiting run).
RERUN_REMOVED_ATTRIBUTES = (
    "taskArn",
    "clusterArn",
    "exitCode",
    "stopCode",
    "reason",
    "reportStatus",
    "reportResponse",
    "reportLeaseUntil",
    "reportAmbiguousAt",
    "reportedAt",
    "testStatus",
    "stopRequestedAt",
    "deadlineAt",
    "timeoutAt",
    "expiresAt",
    "launchedAt",
    "stoppedAt",
    "leaseUntil",
    "cancelRequested",
    "relaunchPending",
    "slotPools",
    "slotCpu",
    "admittedAt",
)
# Counters of the previous attempt, back to 0 (`launchAttempt` is NOT among them: it stays monotonic).
RERUN_RESET_COUNTERS = (
    "reportAttempt",
    "reportRetryAttempt",
    "reconcileAttempt",
    "startRelaunches",
    "admissionResends",
)


class RerunOutcome(StrEnum):
    QUEUED = "queued"  # a final run reopened WAITING (a new run of the same item)
    CREATED = "created"  # the phase had no run: created WAITING
    IN_PROGRESS = "in_progress"  # refused: the run is not final (waiting, launching, running, reporting)
    CHANGED = "changed"  # the run changed since it was read: read it again (the caller retries once)


@dataclass(frozen=True)
class RerunResult:
    outcome: RerunOutcome
    record: LifecycleRecord | None  # the WAITING run (QUEUED, CREATED), else the run as it is now (or was read)


class CapacityReruns(CapacityAdmission):
    """`queue_rerun`: a final run reopened WAITING, or a missing one created, with the operator's audit entry."""

    def queue_rerun(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        change: OperatorChange,
        observed: LifecycleRecord | None,
    ) -> RerunResult:
        """Queue a rerun of (submission, phase), conditioned on `observed` (the run as the caller read it; None: it
        had no item). Two reruns at once, or a repeated command, reopen it once: the second finds it CHANGED or,
        read again, IN_PROGRESS."""
        if observed is None:
            created = self.enqueue(
                submission,
                phase=phase,
                scorer_type=scorer_type,
                timeout_seconds=timeout_seconds,
                priority_rank=priority_rank,
                change=change,
            )
            if created.created:
                return RerunResult(RerunOutcome.CREATED, created.record)
            return RerunResult(RerunOutcome.CHANGED, created.record)
        if observed.challenge_id != submission.challenge_id or observed.phase is not phase:
            raise ValueError(f"rerun of {observed.run_id}: the submission names another challenge or phase")
        if observed.state not in FINAL_STATES or self._report_in_flight(observed):
            return RerunResult(RerunOutcome.IN_PROGRESS, observed)
        return self._reopen(submission, observed, scorer_type, timeout_seconds, priority_rank, change)

    def _report_in_flight(self, run: LifecycleRecord) -> bool:
        """A report being sent under a live lease: the run is not done yet (its reporting would race the rerun)."""
        lease = run.report_lease_until
        return run.report_status is ReportStatus.REPORTING and lease is not None and lease >= self._clock()

    def _reopen(
        self,
        submission: RoutedSubmission,
        observed: LifecycleRecord,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        change: OperatorChange,
    ) -> RerunResult:
        for _ in range(MAX_RACE_RETRIES):
            items = self._reopen_items(submission, observed, scorer_type, timeout_seconds, priority_rank, change)
            codes = self._transact(items)
            if codes is None:
                return RerunResult(RerunOutcome.QUEUED, self._status.get(observed.run_id))
            if codes and codes[0] == CONDITION_FAILED:
                return RerunResult(RerunOutcome.CHANGED, self._status.get(observed.run_id))
            if CONDITION_FAILED not in codes and CONFLICT not in codes:
                raise RuntimeError(f"rerun of {observed.run_id} cancelled: {codes}")
            # The member's round moved, or a slot holder vanished in between: read them again.
        raise RuntimeError(f"rerun of {observed.run_id}: lost the race {MAX_RACE_RETRIES} times")

    def _reopen_items(
        self,
        submission: RoutedSubmission,
        observed: LifecycleRecord,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        change: OperatorChange,
    ) -> list[dict[str, Any]]:
        """The reopening transaction, from the member's round, the challenge pool and the holders read now: item 0
        is the run's update (what `_reopen` reads the cancellation codes by)."""
        now = self._clock()
        challenge_id = observed.challenge_id
        member_id = submission.member_id
        member = self._get(member_partition(challenge_id, member_id), MEMBER_SORT_KEY) or {}
        last_round = int(plain(member["lastRound"])) if "lastRound" in member else 0
        pool = self._get(POOL_PARTITION, challenge_pool_key(challenge_id)) or {}
        virtual_time = int(plain(pool["dispatchedRound"])) if "dispatchedRound" in pool else 0
        fair_round = max(last_round, virtual_time) + 1
        entry = WaitEntry(
            challenge_id=challenge_id,
            run_id=observed.run_id,
            submission_id=observed.submission_id,
            phase=observed.phase,
            member_id=member_id,
            wait_order=make_wait_order(priority_rank, fair_round, int(now * 1000), observed.run_id),
            enqueued_at=int(now),
            rerun=submission.rerun,
        )
        wait_reason = PAUSED_WAIT_REASON if "paused" in pool else ""
        run_update = self._reopen_update(
            submission, observed, entry, scorer_type, timeout_seconds, priority_rank, change, wait_reason, now
        )
        return [run_update, self._queue_put_op(entry), *self._reopen_capacity_ops(observed, entry, pool, member, now)]

    def _reopen_update(
        self,
        submission: RoutedSubmission,
        observed: LifecycleRecord,
        entry: WaitEntry,
        scorer_type: str,
        timeout_seconds: int | None,
        priority_rank: int,
        change: OperatorChange,
        wait_reason: str,
        now: float,
    ) -> dict[str, Any]:
        """The status item's update: WAITING afresh, conditioned on the state and `updatedAt` read (and on no report
        being sent under a live lease)."""
        values: dict[str, Any] = {
            ":waiting": SubmissionState.WAITING.value,
            ":observed_state": observed.state.value,
            ":observed_updated": observed.updated_at.isoformat(),
            ":wait_order": entry.wait_order,
            ":enqueued": entry.enqueued_at,
            ":rank": priority_rank,
            ":rerun": submission.rerun,
            ":routed": submission.to_json(),
            ":scorer": scorer_type,
            ":member": submission.member_id,
            ":false": False,
            ":zero": 0,
            ":one": 1,
            ":now_epoch": int(now),
            ":now": iso(now),
            ":empty": [],
            ":entries": operator_entry(change)
            + self._history(now, SubmissionState.WAITING, wait_reason or "rerun: waiting for a slot"),
        }
        sets = [
            "#state = :waiting",
            "waitOrder = :wait_order",
            "enqueuedAt = :enqueued",
            "priorityRank = :rank",
            "rerun = :rerun",
            "routedMessage = :routed",
            "scorerType = :scorer",
            "memberId = :member",
            "launchAmbiguous = :false",
            "updatedAt = :now",
            "rerunCount = if_not_exists(rerunCount, :zero) + :one",
            "history = list_append(if_not_exists(history, :empty), :entries)",
            *(f"{name} = :zero" for name in RERUN_RESET_COUNTERS),
        ]
        removes = list(RERUN_REMOVED_ATTRIBUTES)
        if submission.correlation_id:
            values[":correlation"] = submission.correlation_id
            sets.append("correlationId = :correlation")
        if timeout_seconds is not None:
            values[":timeout"] = timeout_seconds
            sets.append("timeoutSeconds = :timeout")
        if wait_reason:
            values[":wait_reason"] = wait_reason[:MAX_DETAIL]
            sets.append("waitReason = :wait_reason")
        else:
            removes.append("waitReason")
        condition = (
            "#state = :observed_state AND updatedAt = :observed_updated "
            "AND (attribute_not_exists(reportLeaseUntil) OR reportLeaseUntil < :now_epoch "
            "OR reportStatus <> :reporting)"
        )
        values[":reporting"] = ReportStatus.REPORTING.value
        return self._update_op(
            self._status_table,
            self._run_key(observed.run_id),
            f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            values,
            condition=condition,
            names={"#state": "state"},
        )

    def _reopen_capacity_ops(
        self,
        observed: LifecycleRecord,
        entry: WaitEntry,
        pool: dict[str, Any],
        member: dict[str, Any],
        now: float,
    ) -> list[dict[str, Any]]:
        """The challenge's waiting count + 1 (with the release of its slot if the final run still holds one: its
        release may not have run yet), any other slot it still holds released, and the member's waiting mark and
        fair round (its holding mark removed), conditioned on the round read."""
        run_id = observed.run_id
        holder = f"h#{run_id}"
        cpu = observed.slot_cpu or 0
        challenge_pool = challenge_pool_key(observed.challenge_id)
        held = {
            sk for sk in observed.slot_pools if sk != challenge_pool and holder in (self._get(POOL_PARTITION, sk) or {})
        }
        if holder in pool:
            items = [self._release_op(challenge_pool, run_id, cpu, now, waiting_delta=1)]
        else:
            items = [self._waiting_op(observed.challenge_id, 1, now)]
        items.extend(self._release_op(sk, run_id, cpu, now) for sk in sorted(held))
        last_round = int(plain(member["lastRound"])) if "lastRound" in member else 0
        items.append(
            self._member_op(
                observed.challenge_id,
                entry.member_id,
                "SET #w = :w, lastRound = :round, updatedAt = :now REMOVE #r",
                {
                    ":w": f"{entry.phase.value}|{entry.wait_order}",
                    ":round": int(entry.wait_order.split("#", 3)[1]),
                    ":observed_round": last_round,
                    ":now": iso(now),
                },
                {"#w": f"w#{run_id}", "#r": f"r#{run_id}"},
                condition="attribute_not_exists(lastRound) OR lastRound = :observed_round",
            )
        )
        return items


__all__ = ["RERUN_REMOVED_ATTRIBUTES", "RERUN_RESET_COUNTERS", "CapacityReruns", "RerunOutcome", "RerunResult"]
