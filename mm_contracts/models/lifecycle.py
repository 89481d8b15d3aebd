"""The lifecycle record: one status-table item per run (submission, phase), the answer to "where is submission X?"."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from mm_contracts.models.base import ContractModel
from mm_contracts.models.phase import Platform, RunKey, ScoringPhase


class SubmissionState(StrEnum):
    # Capacity (decisions 093, 094): a run waits durably for a slot, then holds one from admission to its outcome.
    WAITING = "WAITING"  # queued for capacity in the capacity table; holds no slot; its SQS message is deleted
    ADMITTED = "ADMITTED"  # a slot is reserved; its routed message is (being) sent to its challenge queue
    LAUNCHING = "LAUNCHING"  # claimed by a challenge processor; RunTask in flight (lease in `leaseUntil`)
    LAUNCH_FAILED = "LAUNCH_FAILED"  # RunTask definitely did not start a task; message retried via SQS
    DEAD_LETTERED = "DEAD_LETTERED"  # last receive failed; the message is in the challenge DLQ
    LAUNCHED = "LAUNCHED"  # task started (taskArn set); waiting for its STOPPED event
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"  # superseded: a waiting run cancelled, or its task stopped (the member submitted again)


FINAL_STATES = frozenset(
    {SubmissionState.SUCCEEDED, SubmissionState.FAILED, SubmissionState.TIMED_OUT, SubmissionState.CANCELLED}
)
# States from which a (re)delivered message may claim a launch after a failed one.
LAUNCHABLE_STATES = frozenset({SubmissionState.LAUNCH_FAILED, SubmissionState.DEAD_LETTERED})
# States `claim_launch` grants from besides "absent" and an expired LAUNCHING lease: a failed launch, or a run the
# dispatcher admitted (its slot is reserved; the claim advances the attempt like a definite failure would).
CLAIMABLE_STATES = LAUNCHABLE_STATES | {SubmissionState.ADMITTED}
# States that hold a capacity slot (decision 094). DEAD_LETTERED holds one only while `launchAmbiguous` (a task
# may be running): `LifecycleRecord.holds_slot`.
SLOT_HOLDING_STATES = frozenset(
    {
        SubmissionState.ADMITTED,
        SubmissionState.LAUNCHING,
        SubmissionState.LAUNCHED,
        SubmissionState.LAUNCH_FAILED,
    }
)


class ReportStatus(StrEnum):
    NOT_REQUIRED = "NOT_REQUIRED"  # success without a configured success report
    PENDING = "PENDING"
    REPORTING = "REPORTING"  # claimed by one completion invocation (lease in `reportLeaseUntil`)
    REPORTED = "REPORTED"
    REJECTED = "REJECTED"  # the API answered 4xx (not 401): recorded with its response, not retried


class LifecycleEvent(ContractModel):
    """One entry of the item's `history`: what happened, when, and why."""

    at: datetime
    state: str
    detail: str = ""


class LifecycleRecord(ContractModel):
    """Typed view of a status-table item (the store writes attributes with these wire names)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str  # the partition key: `<submissionId>#<PHASE>` (mm_contracts.models.phase.RunKey, decision 084)
    submission_id: str
    phase: ScoringPhase
    platform: Platform = Platform.V5
    challenge_id: str
    state: SubmissionState
    correlation_id: str | None = None
    member_id: int | None = None
    scorer_type: str | None = None
    launch_attempt: int = 0
    lease_until: int | None = None  # epoch seconds
    # A RunTask of this attempt may have started a task (5xx, timeout, crash): the attempt and so the
    # clientToken must never advance until a task is known (decision 024).
    launch_ambiguous: bool = False
    routed_message: str | None = None  # the RoutedSubmission JSON as claimed: what a relaunch re-sends
    timeout_seconds: int | None = None  # the challenge timeout the task was launched with
    task_arn: str | None = None
    cluster_arn: str | None = None
    # epoch seconds: when the sweeper looks at this item next (GSI `byStateDeadline`). LAUNCHING: the lease end;
    # LAUNCHED: the next liveness check or the timeout, whichever is first; final with a report pending: when an
    # unfinished report is re-driven. Absent: nothing left for the sweeper.
    deadline_at: int | None = None
    timeout_at: int | None = None  # epoch seconds: the task's own timeout (launch + challenge timeout)
    exit_code: int | None = None
    stop_code: str | None = None
    reason: str | None = None
    report_status: ReportStatus | None = None
    report_lease_until: int | None = None
    report_response: str | None = None
    report_attempt: int = 0
    report_retry_attempt: int = 0  # sweeper re-drives of an unfinished report
    test_status: str | None = None  # the recorded outcome's testStatus (SUCCESS, FAILED, CANCELLED)
    start_relaunches: int = 0  # relaunches after a transient TaskFailedToStart (decision 072)
    relaunch_pending: bool = False  # LAUNCH_FAILED for a relaunch whose message is not confirmed sent yet
    report_ambiguous_at: int | None = None  # epoch s of an ambiguous POST: a retry looks after the slow-commit window
    stop_requested_at: datetime | None = None
    reconcile_attempt: int = 0  # sweeper re-checks after a stop whose STOPPED event was not processed
    created_at: datetime
    updated_at: datetime
    launched_at: datetime | None = None
    stopped_at: datetime | None = None
    reported_at: datetime | None = None
    expires_at: int | None = None  # TTL (epoch seconds); absent while WAITING (a TTL must never drop a waiting run)
    # Capacity (decisions 093, 094)
    wait_order: str | None = None  # the queue entry's sort key (rank, fair round, enqueue time): kept on requeue
    enqueued_at: int | None = None  # epoch s: when the run entered capacity (a direct launch: its launch time too)
    admitted_at: int | None = None  # epoch s: when its slot was reserved
    slot_cpu: int | None = None  # CPU units its slot weighs (the task's CPU)
    slot_pools: list[str] = Field(default_factory=list)  # pool sort keys it holds (`ENV`, `CHALLENGE#..`, `PHASE#..`)
    priority_rank: int | None = None  # its index in the challenge's priority order (lower first)
    rerun: bool = False  # an operator's rerun: queued after new work by default
    cancel_requested: bool = False  # supersede: its task is being stopped; the STOPPED event records CANCELLED
    wait_reason: str | None = None  # why it waits (the cap that was full, a throttled RunTask, a redrive)
    admission_resends: int = 0  # sweeper re-sends of an ADMITTED run's message (past its deadline) so far
    rerun_count: int = 0  # an operator's reruns of this run (each reopened the final item WAITING, decision 106)
    history: list[LifecycleEvent] = Field(default_factory=list)

    @property
    def holds_slot(self) -> bool:
        """Whether this run should hold a capacity slot in its state (what the slot reconciler checks)."""
        return self.state in SLOT_HOLDING_STATES or (
            self.state is SubmissionState.DEAD_LETTERED and self.launch_ambiguous
        )

    @property
    def run_key(self) -> RunKey:
        return RunKey(self.submission_id, self.phase)
