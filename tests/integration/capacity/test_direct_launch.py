"""CapacityStore on moto: a new run launched without waiting (decision 114), ONE transaction from no item to
LAUNCHING holding its slots, every condition of enqueue + admit + claim in it. Each refusal writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_capacity.store import (
    ENV_POOL,
    MEMBER_REFUSED,
    CapacityStore,
    DirectLaunchOutcome,
    DirectLaunchResult,
    NewRunView,
    challenge_pool_key,
    phase_pool_key,
)
from mm_contracts.models.audit import OperatorChange
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import run_id
from mm_contracts.models.routed import RoutedSubmission
from tests.conftest import Clock
from tests.integration.capacity.conftest import CHALLENGE_A, PHASE, current, enqueue, limits, raw_item, submission

LEASE = 120


def _launch(capacity: CapacityStore, sub: RoutedSubmission, view: NewRunView, **caps: int) -> DirectLaunchResult:
    return capacity.launch_directly(
        sub,
        phase=PHASE,
        scorer_type="java",
        timeout_seconds=600,
        priority_rank=1,
        limits=limits(**caps),
        lease_seconds=LEASE,
        view=view,
    )


def test_one_transaction_leaves_the_run_as_enqueue_admit_and_claim_would(
    capacity: CapacityStore, status: StatusStore, clock: Clock
) -> None:
    sub = submission()
    view = capacity.new_run_view(sub, PHASE)
    assert view.record is None
    assert view.challenge.waiting == 0
    result = _launch(capacity, sub, view)
    assert result.outcome is DirectLaunchOutcome.CLAIMED
    record = current(status, run_id(sub.submission_id, PHASE))
    assert record == result.record
    # The claim's state: attempt 1 under a live lease, the sweeper's deadline at the lease's end
    assert (record.state, record.launch_attempt, record.launch_ambiguous) == (SubmissionState.LAUNCHING, 1, False)
    assert record.lease_until == record.deadline_at == int(clock.now) + LEASE
    # The admission's: its slots, the TTL; the enqueue's: a wait order (a throttled launch requeues in its place)
    assert record.slot_pools == [ENV_POOL, challenge_pool_key(CHALLENGE_A)]
    assert record.holds_slot
    assert record.expires_at is not None
    assert record.wait_order is not None
    pools = capacity.pools()
    assert record.run_id in pools.env.holders
    assert record.run_id in pools.challenge(CHALLENGE_A).holders
    assert pools.challenge(CHALLENGE_A).waiting == 0
    assert not capacity.queue_entries(CHALLENGE_A)
    assert pools.challenge(CHALLENGE_A).dispatched_round == 1
    assert capacity.member_runs(CHALLENGE_A, sub.member_id) == ([], [(record.run_id, PHASE)])


def test_a_run_waiting_since_the_read_refuses_it_in_the_transaction(
    capacity: CapacityStore, status: StatusStore
) -> None:
    # Given a view that saw an empty queue, then another member's run enqueued before the transaction
    sub = submission()
    view = capacity.new_run_view(sub, PHASE)
    enqueue(capacity, submission(member_id=2002))
    # Then the queue's count refuses it (fairness is a condition of the transaction) and nothing is written
    result = _launch(capacity, sub, view)
    assert (result.outcome, result.refused_by) == (DirectLaunchOutcome.NOT_NOW, challenge_pool_key(CHALLENGE_A))
    assert status.get(run_id(sub.submission_id, PHASE)) is None
    assert capacity.pools().env.used == 0


def test_a_full_cap_refuses_it_and_names_the_pool(capacity: CapacityStore, status: StatusStore) -> None:
    first, second = submission(), submission(member_id=2002)
    assert _launch(capacity, first, capacity.new_run_view(first, PHASE), phase_cap=1).outcome.value == "claimed"
    result = _launch(capacity, second, capacity.new_run_view(second, PHASE), phase_cap=1)
    assert (result.outcome, result.refused_by) == (DirectLaunchOutcome.NOT_NOW, phase_pool_key(CHALLENGE_A, PHASE))
    result = _launch(capacity, second, capacity.new_run_view(second, PHASE), env_cap=1)
    assert (result.outcome, result.refused_by) == (DirectLaunchOutcome.NOT_NOW, ENV_POOL)
    assert status.get(run_id(second.submission_id, PHASE)) is None


def test_a_paused_challenge_refuses_it(capacity: CapacityStore, status: StatusStore) -> None:
    sub = submission()
    view = capacity.new_run_view(sub, PHASE)
    change = OperatorChange(
        actor="operator@host", at=datetime(2027, 1, 15, tzinfo=UTC), action="pause", reason="upgrade", request_id="r1"
    )
    assert capacity.pause(CHALLENGE_A, change)
    result = _launch(capacity, sub, view)
    assert (result.outcome, result.refused_by) == (DirectLaunchOutcome.NOT_NOW, challenge_pool_key(CHALLENGE_A))
    assert status.get(run_id(sub.submission_id, PHASE)) is None


def test_the_members_round_moved_since_the_read_refuses_it(capacity: CapacityStore, status: StatusStore) -> None:
    # Given the member's other new run took the next round after this view was read
    sub, other = submission(), submission()
    view = capacity.new_run_view(sub, PHASE)
    assert _launch(capacity, other, capacity.new_run_view(other, PHASE)).outcome is DirectLaunchOutcome.CLAIMED
    # Then two runs of one member never share a round: refused, nothing written
    result = _launch(capacity, sub, view)
    assert (result.outcome, result.refused_by) == (DirectLaunchOutcome.NOT_NOW, MEMBER_REFUSED)
    assert status.get(run_id(sub.submission_id, PHASE)) is None


def test_a_run_created_by_another_delivery_since_the_read_is_left_as_it_is(
    capacity: CapacityStore, status: StatusStore
) -> None:
    sub = submission()
    view = capacity.new_run_view(sub, PHASE)
    enqueue(capacity, sub)
    result = _launch(capacity, sub, view)
    assert result.outcome is DirectLaunchOutcome.RUN_EXISTS
    assert current(status, run_id(sub.submission_id, PHASE)).state is SubmissionState.WAITING
    assert capacity.pools().env.used == 0


def test_the_view_is_one_read_of_the_run_its_member_and_its_pools(capacity: CapacityStore) -> None:
    sub = submission()
    enqueue(capacity, sub)
    view = capacity.new_run_view(sub, PHASE)
    assert view.record is not None
    assert view.record.state is SubmissionState.WAITING
    assert (view.challenge.waiting, view.last_round, view.member_has_phase_runs) == (1, 1, False)
    other = capacity.new_run_view(submission(member_id=sub.member_id), PHASE)
    assert other.record is None
    assert other.member_has_phase_runs


def test_the_view_carries_the_versions_stamped_on_the_pools_and_the_run_records_its_config_version(
    capacity: CapacityStore, capacity_table: str, status_table: str
) -> None:
    # Given pools the sweeper stamped with the SSM versions of the caps and of the challenge's config
    client = aws_clients.client("dynamodb")
    for sk, versions in ((ENV_POOL, {"capsVersion": "3"}), (challenge_pool_key(CHALLENGE_A), {"configVersion": "7"})):
        item = {"pk": {"S": "POOL"}, "sk": {"S": sk}, **{name: {"N": v} for name, v in versions.items()}}
        client.put_item(TableName=capacity_table, Item=item)
    sub = submission()
    # Then the one read hands them to the loaders' callers
    view = capacity.new_run_view(sub, PHASE)
    assert (view.env.caps_version, view.challenge.config_version) == (3, 7)
    # And the run launched with that config records its version
    result = capacity.launch_directly(
        sub,
        phase=PHASE,
        scorer_type="java",
        timeout_seconds=600,
        priority_rank=1,
        limits=limits(),
        lease_seconds=LEASE,
        view=view,
        config_version=7,
    )
    assert result.outcome is DirectLaunchOutcome.CLAIMED
    assert raw_item(status_table, {"runId": {"S": run_id(sub.submission_id, PHASE)}})["configVersion"] == {"N": "7"}
