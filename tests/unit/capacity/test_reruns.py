"""An operator's rerun in the capacity store (decision 106) on moto: a final run reopened WAITING in one transaction
(same item, launchAttempt kept, its previous outcome and report cleared, audited), refused while the run is not
final, once for two reruns of one read, created for a phase that had none; and the status store's audit entry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from mm_adapters.status_store import LaunchDecision, OutcomeDecision, StatusStore
from mm_capacity.store import ENV_POOL, AdmitOutcome, CapacityStore, RerunOutcome, challenge_pool_key
from mm_contracts.models.audit import OPERATOR_HISTORY_STATE, OperatorChange
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY, client_token
from tests.conftest import Clock
from tests.integration.capacity.conftest import (
    CHALLENGE_A,
    CLUSTER,
    PHASE,
    TASK,
    enqueue,
    limits,
    raw_item,
    submission,
)

RERUN_RANK = 3


@pytest.fixture
def capacity(capacity_table: str, status_table: str, clock: Clock) -> CapacityStore:
    return CapacityStore(capacity_table, status_table, ttl_days=90, clock=clock)


@pytest.fixture
def status(status_table: str, clock: Clock) -> StatusStore:
    return StatusStore(status_table, ttl_days=90, clock=clock)


def change(clock: Clock, reason: str = "scorer fixed") -> OperatorChange:
    return OperatorChange(
        actor="alice@ops-host",
        at=datetime.fromtimestamp(clock(), tz=UTC),
        action="rerun",
        reason=reason,
        request_id=uuid4().hex[:12],
    )


def get(status: StatusStore, rid: str) -> LifecycleRecord:
    record = status.get(rid)
    assert record is not None
    return record


def finished(capacity: CapacityStore, status: StatusStore, clock: Clock, sub: RoutedSubmission) -> LifecycleRecord:
    """A run scored to FAILED, its report sent, its slot released: the usual final run."""
    entry = enqueue(capacity, sub)
    assert capacity.admit(entry, limits()).outcome is AdmitOutcome.ADMITTED
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    assert claim.granted
    assert status.mark_launched(
        entry.run_id, attempt=claim.attempt, task_arn=TASK, cluster_arn=CLUSTER, timeout_seconds=600
    )
    clock.advance(30)
    outcome = Outcome(
        code=OutcomeCode.FAILED, test_status=TestStatus.FAILED, reason="exit 1", exit_code=1, task_arn=TASK
    )
    recorded = status.record_outcome(entry.run_id, CHALLENGE_A, outcome, report_required=True, launch_attempt=1)
    assert recorded.decision is OutcomeDecision.RECORDED
    assert status.claim_report(entry.run_id, lease_seconds=60).granted
    assert status.mark_reported(entry.run_id, response_summary="201 review r-1")
    assert capacity.release(get(status, entry.run_id))
    clock.advance(60)
    return get(status, entry.run_id)


def rerun(
    capacity: CapacityStore, clock: Clock, sub: RoutedSubmission, observed: LifecycleRecord | None, **extra: Any
) -> Any:
    return capacity.queue_rerun(
        sub.model_copy(update={"rerun": True, "phase": PHASE}),
        phase=PHASE,
        scorer_type="java",
        timeout_seconds=900,
        priority_rank=RERUN_RANK,
        change=extra.get("change") or change(clock),
        observed=observed,
    )


def test_a_final_run_is_reopened_waiting_as_a_new_run_of_the_same_item(
    capacity: CapacityStore, status: StatusStore, status_table: str, clock: Clock
) -> None:
    sub = submission()
    before = finished(capacity, status, clock, sub)
    audit = change(clock)
    result = rerun(capacity, clock, sub, before, change=audit)
    assert result.outcome is RerunOutcome.QUEUED
    record = get(status, before.run_id)
    assert result.record == record
    assert record.state is SubmissionState.WAITING
    assert (record.launch_attempt, record.rerun_count, record.rerun, record.launch_ambiguous) == (1, 1, True, False)
    assert (record.priority_rank, record.timeout_seconds, record.created_at) == (RERUN_RANK, 900, before.created_at)
    item = raw_item(status_table, {STATUS_TABLE_PARTITION_KEY: {"S": before.run_id}})
    for gone in ("taskArn", "clusterArn", "exitCode", "stopCode", "reason", "reportStatus", "reportResponse",
                 "testStatus", "expiresAt", "deadlineAt", "timeoutAt", "launchedAt", "stoppedAt", "reportedAt",
                 "slotPools", "slotCpu", "admittedAt", "leaseUntil"):  # fmt: skip
        assert gone not in item, gone
    assert (record.report_attempt, record.report_retry_attempt, record.start_relaunches) == (0, 0, 0)
    assert RoutedSubmission.model_validate_json(record.routed_message or "").rerun
    # The history keeps the earlier run and tells who reran it, then that it waits.
    assert record.history[: len(before.history)] == before.history
    operator, waiting = record.history[len(before.history) :]
    assert operator.state == OPERATOR_HISTORY_STATE
    assert operator.detail == audit.history_detail()
    assert waiting.state == SubmissionState.WAITING
    # Its capacity side: one queue entry (a rerun), the challenge's waiting count, the member's waiting mark.
    (entry,) = capacity.queue_entries(CHALLENGE_A)
    assert (entry.run_id, entry.rerun, entry.wait_order) == (before.run_id, True, record.wait_order)
    assert capacity.pools().challenge(CHALLENGE_A).waiting == 1
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([(before.run_id, PHASE)], [])


def test_the_reopened_run_launches_with_the_next_attempt_so_a_new_client_token(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    before = finished(capacity, status, clock, sub)
    rerun(capacity, clock, sub, before)
    (entry,) = capacity.queue_entries(CHALLENGE_A)
    assert capacity.admit(entry, limits()).outcome is AdmitOutcome.ADMITTED
    claim = status.claim_launch(
        sub.model_copy(update={"rerun": True}), phase=PHASE, scorer_type="java", lease_seconds=120
    )
    assert claim.decision is LaunchDecision.GRANTED
    assert claim.attempt == 2
    first = client_token(sub.submission_id, PHASE.value, 1)
    assert client_token(sub.submission_id, PHASE.value, claim.attempt) != first


@pytest.mark.parametrize("state", ["WAITING", "LAUNCHED"])
def test_a_run_that_is_not_final_is_refused_and_left_alone(
    capacity: CapacityStore, status: StatusStore, clock: Clock, state: str
) -> None:
    sub = submission()
    entry = enqueue(capacity, sub)
    if state == "LAUNCHED":
        capacity.admit(entry, limits())
        claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
        status.mark_launched(
            entry.run_id, attempt=claim.attempt, task_arn=TASK, cluster_arn=CLUSTER, timeout_seconds=600
        )
    before = get(status, entry.run_id)
    result = rerun(capacity, clock, sub, before)
    assert result.outcome is RerunOutcome.IN_PROGRESS
    assert get(status, entry.run_id) == before


def test_a_report_being_sent_refuses_the_rerun(capacity: CapacityStore, status: StatusStore, clock: Clock) -> None:
    sub = submission()
    final = finished(capacity, status, clock, sub)
    # A later outcome record (e.g. the sweeper's re-drive) claimed its report: REPORTING under a live lease.
    item_values = {":reporting": {"S": ReportStatus.REPORTING.value}, ":lease": {"N": str(int(clock()) + 120)}}
    status.client.update_item(
        TableName=status._table,
        Key={STATUS_TABLE_PARTITION_KEY: {"S": final.run_id}},
        UpdateExpression="SET reportStatus = :reporting, reportLeaseUntil = :lease",
        ExpressionAttributeValues=item_values,
    )
    reporting = get(status, final.run_id)
    assert rerun(capacity, clock, sub, reporting).outcome is RerunOutcome.IN_PROGRESS
    assert get(status, final.run_id).state is SubmissionState.FAILED


def test_two_reruns_of_one_read_reopen_it_once(capacity: CapacityStore, status: StatusStore, clock: Clock) -> None:
    sub = submission()
    before = finished(capacity, status, clock, sub)
    assert rerun(capacity, clock, sub, before).outcome is RerunOutcome.QUEUED
    clock.advance(1)
    second = rerun(capacity, clock, sub, before)  # the same (stale) read: a concurrent or repeated command
    assert second.outcome is RerunOutcome.CHANGED
    assert second.record is not None
    assert second.record.state is SubmissionState.WAITING
    assert rerun(capacity, clock, sub, second.record).outcome is RerunOutcome.IN_PROGRESS  # its one retry
    assert len(capacity.queue_entries(CHALLENGE_A)) == 1
    assert capacity.pools().challenge(CHALLENGE_A).waiting == 1
    assert get(status, before.run_id).rerun_count == 1


def test_a_final_run_changed_since_it_was_read_is_not_reopened(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    before = finished(capacity, status, clock, sub)
    clock.advance(1)
    assert status.append_operator_entry(before.run_id, change(clock, "a note"))  # updatedAt moves
    result = rerun(capacity, clock, sub, before)
    assert result.outcome is RerunOutcome.CHANGED
    assert get(status, before.run_id).state is SubmissionState.FAILED
    assert capacity.queue_entries(CHALLENGE_A) == []


def test_a_phase_without_a_run_is_created_waiting_with_the_audit_entry_first(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    audit = change(clock, "never scored")
    result = rerun(capacity, clock, sub, None, change=audit)
    assert result.outcome is RerunOutcome.CREATED
    record = get(status, run_id(sub.submission_id, PHASE))
    assert record.state is SubmissionState.WAITING
    first = record.history[0]
    assert (first.state, first.detail) == (OPERATOR_HISTORY_STATE, audit.history_detail())
    assert record.rerun
    assert rerun(capacity, clock, sub, None).outcome is RerunOutcome.CHANGED  # created meanwhile: read again
    assert len(capacity.queue_entries(CHALLENGE_A)) == 1


def test_a_final_run_still_holding_its_slot_gives_it_back_when_reopened(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    entry = enqueue(capacity, sub)
    capacity.admit(entry, limits(phase_cap=3))
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    status.mark_launched(entry.run_id, attempt=claim.attempt, task_arn=TASK, cluster_arn=CLUSTER, timeout_seconds=600)
    outcome = Outcome(code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exit 0", task_arn=TASK)
    status.record_outcome(entry.run_id, CHALLENGE_A, outcome, report_required=False, launch_attempt=1)
    final = get(status, entry.run_id)  # final, but the completion function has not released its slot yet
    assert entry.run_id in capacity.pools().env.holders
    assert rerun(capacity, clock, sub, final).outcome is RerunOutcome.QUEUED
    pools = capacity.pools()
    assert all(pool.holders == {} and pool.used == 0 for pool in pools.all_pools())
    assert pools.challenge(CHALLENGE_A).waiting == 1
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([(entry.run_id, PHASE)], [])
    (waiting,) = capacity.queue_entries(CHALLENGE_A)
    admitted = capacity.admit(waiting, limits(phase_cap=3))
    assert admitted.outcome is AdmitOutcome.ADMITTED  # not refused as "already a holder"
    assert set(capacity.pools().env.holders) == {entry.run_id}
    assert capacity.pools().challenge(CHALLENGE_A).waiting == 0
    assert ENV_POOL in get(status, entry.run_id).slot_pools
    assert challenge_pool_key(CHALLENGE_A) in get(status, entry.run_id).slot_pools


def test_a_rerun_of_a_paused_challenge_waits_for_the_operator(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    before = finished(capacity, status, clock, sub)
    capacity.pause(CHALLENGE_A, change(clock, "hold"))
    assert rerun(capacity, clock, sub, before).outcome is RerunOutcome.QUEUED
    record = get(status, before.run_id)
    assert record.wait_reason == "challenge paused by an operator"
    (entry,) = capacity.queue_entries(CHALLENGE_A)
    assert capacity.admit(entry, limits()).outcome is AdmitOutcome.FULL


def test_the_submission_must_name_the_runs_challenge_and_phase(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    before = finished(capacity, status, clock, sub)
    with pytest.raises(ValueError, match="another challenge or phase"):
        capacity.queue_rerun(
            sub,
            phase=ScoringPhase.SYSTEM,
            scorer_type="java",
            timeout_seconds=None,
            priority_rank=0,
            change=change(clock),
            observed=before,
        )


# ------------------------------------------------------------------ the status store's audit entry
def test_an_operator_entry_is_appended_to_an_existing_run_only(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    entry = enqueue(capacity, sub)
    note = change(clock, "checked by hand")
    assert status.append_operator_entry(entry.run_id, note)
    last = get(status, entry.run_id).history[-1]
    assert (last.state, last.detail) == (OPERATOR_HISTORY_STATE, note.history_detail())
    assert note.history_detail() == f"operator rerun by alice@ops-host [request {note.request_id}]: checked by hand"
    missing = run_id(submission().submission_id, PHASE)
    assert not status.append_operator_entry(missing, note)
    assert status.get(missing) is None  # an audit entry never creates a run


def test_a_late_release_after_a_rerun_was_admitted_again_keeps_the_new_slot(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    # Given a run final (its outcome recorded), whose completion has not released its slot yet
    sub = submission()
    entry = enqueue(capacity, sub)
    capacity.admit(entry, limits(phase_cap=3))
    claim = status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    status.mark_launched(entry.run_id, attempt=claim.attempt, task_arn=TASK, cluster_arn=CLUSTER, timeout_seconds=600)
    outcome = Outcome(code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exit 0", task_arn=TASK)
    status.record_outcome(entry.run_id, CHALLENGE_A, outcome, report_required=False, launch_attempt=1)
    final = get(status, entry.run_id)
    # When it is reopened by a rerun and admitted again before that release arrives
    assert rerun(capacity, clock, sub, final).outcome is RerunOutcome.QUEUED
    (waiting,) = capacity.queue_entries(CHALLENGE_A)
    assert capacity.admit(waiting, limits(phase_cap=3)).outcome is AdmitOutcome.ADMITTED
    # Then the late release of the earlier outcome (the final record it read) frees nothing
    assert not capacity.release(final)
    pools = capacity.pools()
    assert set(pools.env.holders) == {entry.run_id}
    assert set(pools.challenge(CHALLENGE_A).holders) == {entry.run_id}
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [(entry.run_id, PHASE)])  # holding again
    # And the rerun's own final release frees it
    clock.advance(30)
    status.claim_launch(sub.model_copy(update={"rerun": True}), phase=PHASE, scorer_type="java", lease_seconds=120)
    again = get(status, entry.run_id)
    status.mark_launched(
        entry.run_id, attempt=again.launch_attempt, task_arn=TASK + "2", cluster_arn=CLUSTER, timeout_seconds=600
    )
    second = outcome.model_copy(update={"task_arn": TASK + "2"})
    status.record_outcome(entry.run_id, CHALLENGE_A, second, report_required=False, launch_attempt=again.launch_attempt)
    assert capacity.release(get(status, entry.run_id))
    assert all(pool.holders == {} for pool in capacity.pools().all_pools())


def test_an_operator_entry_keeps_its_time_in_history_but_never_moves_updated_at_back(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    entry = enqueue(capacity, sub)
    approved = change(clock, "approved a while ago")  # the change's time: when the operator approved it
    clock.advance(120)  # the run changed since (its updatedAt is newer than the approval)
    status.claim_launch(sub, phase=PHASE, scorer_type="java", lease_seconds=120)
    before = get(status, entry.run_id).updated_at
    clock.advance(5)

    assert status.append_operator_entry(entry.run_id, approved)

    record = get(status, entry.run_id)
    assert record.updated_at > before  # the store's clock, not the approval time
    assert record.updated_at == datetime.fromtimestamp(clock(), tz=UTC)
    last = record.history[-1]
    assert (last.state, last.at) == (OPERATOR_HISTORY_STATE, approved.at)
