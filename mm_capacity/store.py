"""The capacity table: slots, the durable queue of waiting runs, fair rounds and the RunTask pace (093, 094).

Every transition of a run and its capacity is ONE `TransactWriteItems` over the run's status item and its capacity
items, so a crash never leaves half of one: a run is WAITING with a queue entry, or ADMITTED holding its slots, never
neither. Items of the table (`pk`, `sk`):

    POOL / ENV | CHALLENGE#<id> | PHASE#<id>#<PHASE>   used, cpuUsed, waiting (challenge), h#<runId> = CPU units
                                                       per holder, dispatchedRound (challenge), cap, updatedAt,
                                                       paused, pausedBy, pausedAt, pauseReason (challenge, 105)
    QUEUE#<challengeId> / <waitOrder>                  one per waiting run; the queue's order is the sort key
    MEMBER#<challengeId>#<memberId> / -                lastRound, w#<runId> (waiting), r#<runId> (holding)
    PACE / <epochSecond>                               n: RunTask tokens spent in that second (TTL)
    AUDIT#<challengeId> / <iso at>#<requestId>         an operator's challenge-scoped change (no TTL, 105)
    DISPATCH / ENV                                     holder, turnUntil, requested: the env-wide dispatch turn (124)

A pool condition admits a run only below the cap and only if the run is not a holder yet; a release removes the
holder and decrements in one conditional UpdateItem, so a second release is a no-op (never a double free).
`TransactWriteItems` reports which item's condition failed in `CancellationReasons` (one per item, in order):
that is how `admit` names the full pool or sees that the run is no longer waiting.

`CapacityStore` is assembled from one class per job, each its own module over the shared plumbing of
`mm_capacity.table`: `admission` (enqueue, admit, pace), `direct_launch` (a run launched without waiting, 114),
`slots` (release, repair), `run_changes` (requeue, cancel, dead-letter), `controls` (an operator's pause, resume and
audit log, decision 105), `reruns` (an operator's rerun, decision 106), `dispatch_turns` (one env-wide dispatch at
a time, decision 124) and `reads`. The table's keys are
`mm_capacity.keys`, its values `mm_capacity.records`; this module is the one place callers import them from.
"""

from __future__ import annotations

from mm_capacity.admission import CapacityAdmission
from mm_capacity.controls import CapacityControls, ChallengeControls
from mm_capacity.direct_launch import MEMBER_REFUSED, CapacityDirectLaunch
from mm_capacity.dispatch_turns import CapacityDispatchTurns
from mm_capacity.keys import (
    ADMISSION_RESEND_SECONDS,
    CAPACITY_TABLE_TTL,
    ENV_POOL,
    capacity_table_definition,
    challenge_pool_key,
    make_wait_order,
    phase_pool_key,
)
from mm_capacity.reads import CapacityReads
from mm_capacity.records import (
    AdmissionLimits,
    AdmitOutcome,
    AdmitResult,
    DirectLaunchOutcome,
    DirectLaunchResult,
    EnqueueResult,
    NewRunView,
    PoolSnapshot,
    PoolState,
    WaitEntry,
)
from mm_capacity.reruns import CapacityReruns, RerunOutcome, RerunResult
from mm_capacity.run_changes import CapacityRunChanges
from mm_capacity.slots import CapacitySlots


class CapacityStore(
    CapacityReruns,
    CapacityDirectLaunch,
    CapacityAdmission,
    CapacitySlots,
    CapacityRunChanges,
    CapacityControls,
    CapacityDispatchTurns,
    CapacityReads,
):
    """The capacity table and every slot transition (see the module docstring); one instance per function."""


__all__ = [
    "ADMISSION_RESEND_SECONDS",
    "CAPACITY_TABLE_TTL",
    "ENV_POOL",
    "MEMBER_REFUSED",
    "AdmissionLimits",
    "AdmitOutcome",
    "AdmitResult",
    "CapacityStore",
    "ChallengeControls",
    "DirectLaunchOutcome",
    "DirectLaunchResult",
    "EnqueueResult",
    "NewRunView",
    "PoolSnapshot",
    "PoolState",
    "RerunOutcome",
    "RerunResult",
    "WaitEntry",
    "capacity_table_definition",
    "challenge_pool_key",
    "make_wait_order",
    "phase_pool_key",
]
