"""The status table: lifecycle record *and* idempotency guard, through conditional writes.

One item per run: `runId` = `<submissionId>#<PHASE>` (decision 084), so the phases of one submission are
independent items (their own claims, tasks, outcomes and reports); `get_runs` reads a submission's runs.
Every transition is a conditional write, so duplicates and races resolve in
DynamoDB rather than in memory:

    (absent) --claim_launch--> LAUNCHING --mark_launched--> LAUNCHED --record_outcome--> SUCCEEDED
                                   |                                                   | FAILED
                                   +--mark_launch_failed--> LAUNCH_FAILED | DEAD_LETTERED  TIMED_OUT
                                                              (a redelivery may claim again)

Launch exactly once: a claim is granted only from "absent", from a *definite* launch failure (the attempt
number advances, so the RunTask clientToken changes), or from a LAUNCHING lease that expired (an
*ambiguous* crash: the attempt number and so the clientToken stay, and ECS returns the same task).
A live LAUNCHING lease, LAUNCHED, or a final state means the delivery is a duplicate.

Report exactly once: the outcome is recorded once per task; the report is claimed with a lease
(`reportStatus` PENDING -> REPORTING -> REPORTED | REJECTED). A claim whose `reportAttempt` is above 1
tells the caller an earlier attempt may have reached the API, so it must look before it posts. The invocation that
records the outcome and sends the report at once takes that claim in the outcome write itself
(`record_outcome(report_lease_seconds=)`, decision 114): an outcome write that crashed before its post is a claim
never finished, taken over after its lease as any other.

Timeouts and lost STOPPED events: a LAUNCHED item carries `timeoutAt` and `deadlineAt` (GSI `byStateDeadline`: the
earlier of the timeout and the next liveness check). The sweeper describes a due task first: running before its
timeout -> `mark_liveness_checked`; past it -> StopTask and `mark_stop_requested` (`stopRequestedAt`, deadline
pushed out by a grace period); stopped and its event lost -> a synthetic event and `mark_reconcile_requested`
(deadline pushed again, `reconcileAttempt` + 1), and after a bounded number of attempts it gives up
(`mark_reconcile_abandoned`: off the index, left for an operator). Only the outcome recorded from a STOPPED event
(real or synthesized) ever leaves LAUNCHED. The sweeper also adopts the running task of an unconfirmed launch
(`adopt_task`), dead-letters launches that can no longer be confirmed (`mark_launch_stuck`) and re-drives
unfinished reports (`mark_report_redriven`, `clear_deadline`) and unsent relaunches (`mark_relaunch_redriven`);
decisions 071, 073, 080.

Unstartable v6 runs (decision 086): a v6 run dead-lettered *definitely* (its launch is known to have started no
task) gets its terminal report due in the same write (`reportStatus` PENDING, `testStatus` FAILED, `deadlineAt`),
so the member sees a FAILED summation instead of "in queue"; v5 and ambiguous dead-letters wait for an operator.
A redrive claims it again and clears that report (never while its lease is live), so the new attempt's outcome is
reported afresh.

Ambiguity (decision 070): `launchAmbiguous` is set when a RunTask of the current attempt may have started a task
(`mark_launch_outcome_unknown`, or a re-claim of a vanished holder's lease). While it is set every claim keeps the
attempt, so the clientToken, and ECS answers with the task the first call started; only `failures[]` or a recorded
launch clear it. A re-claim is conditioned on the lease the delivery observed. `record_outcome` settles an item
only for the task it tracks or, from LAUNCHING, for the attempt it is on, and never creates an item (076).

The package holds one module per consumer, each a part of the one class callers build (`StatusStore`):
`launch` (the challenge processor), `outcome` (the completion function), `sweep` (the sweeper), `operator` (the
operator tool's audit entries), `challenge_index` (a challenge's runs, index `byChallenge`), over `table`
(client, clock, reads, conditional writes) and `items` (the item's (de)serialization: `record_from_item`). The
answers (`LaunchClaim`, `ReportClaim`, ...) are contracts (`mm_contracts.models.ledger`); the narrow interfaces a
consumer may be typed against are `mm_contracts.ports.LaunchLedger`, `OutcomeLedger` and `SweepLedger`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mm_adapters.status_store.challenge_index import ChallengeIndexReads
from mm_adapters.status_store.items import REPORT_ATTRIBUTES, record_from_item
from mm_adapters.status_store.launch import LaunchStore
from mm_adapters.status_store.operator import OperatorStore
from mm_adapters.status_store.outcome import OutcomeStore
from mm_adapters.status_store.sweep import SweepStore
from mm_adapters.status_store.table import (
    DEFAULT_LIVENESS_CHECK_SECONDS,
    DEFAULT_MESSAGE_LIFETIME_SECONDS,
    DEFAULT_RECONCILE_GRACE_SECONDS,
)
from mm_contracts.models.ledger import (
    DeadLetterResult,
    LaunchClaim,
    LaunchDecision,
    OutcomeDecision,
    OutcomeRecordResult,
    RelaunchClaim,
    RelaunchDecision,
    ReportClaim,
)
from mm_contracts.models.outcome import OutcomeCode

if TYPE_CHECKING:
    from mm_contracts.ports import LaunchLedger, OutcomeLedger, SweepLedger


class StatusStore(LaunchStore, OutcomeStore, SweepStore, OperatorStore, ChallengeIndexReads):
    """The status table for every function: `StatusStore(table_name, ttl_days=, clock=, dynamodb_client=)`."""


if TYPE_CHECKING:

    def _serves_every_ledger(store: StatusStore) -> tuple[LaunchLedger, OutcomeLedger, SweepLedger]:
        """mypy holds the store to the three ports (nothing runs this)."""
        return store, store, store


__all__ = [
    "DEFAULT_LIVENESS_CHECK_SECONDS",
    "DEFAULT_MESSAGE_LIFETIME_SECONDS",
    "DEFAULT_RECONCILE_GRACE_SECONDS",
    "REPORT_ATTRIBUTES",
    "DeadLetterResult",
    "LaunchClaim",
    "LaunchDecision",
    "OutcomeCode",
    "OutcomeDecision",
    "OutcomeRecordResult",
    "RelaunchClaim",
    "RelaunchDecision",
    "ReportClaim",
    "StatusStore",
    "record_from_item",
]
