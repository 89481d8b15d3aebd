"""Crash points of a run launched without waiting (decision 114) in the fault matrix's world: the function dies
right after the ONE transaction that took the run from no item to LAUNCHING holding its slots. The state it leaves
is the one admit + claim leave, so the same recovery settles it: the redelivery re-claims the expired lease with
the same attempt (same clientToken), one task, one report, the slot freed. (A crash after RunTask, a duplicate
delivery and a throttled RunTask after the direct launch are the matrix's own cases, every one of which now starts
with it.)"""

from __future__ import annotations

from typing import Any

from fault_injection import FaultPlan, SimulatedCrash
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from tests.matrix.case import S1, S2
from tests.matrix.deployment import CHALLENGE_ID
from tests.matrix.setups import ONE_SLOT
from tests.matrix.world import World

OTHER_MEMBER = 40_158_995


def _crash_after_first_transaction(world: World) -> list[str]:
    """The invocation dies right after the first TransactWriteItems returns (committed): the direct launch's."""
    crashed: list[str] = []

    def after_call(**_: Any) -> None:
        if not crashed:
            crashed.append("TransactWriteItems")
            raise SimulatedCrash("injected: the function died after its direct-launch transaction committed")

    world.ddb.meta.events.register("after-call.dynamodb.TransactWriteItems", after_call, unique_id="direct-crash")
    return crashed


def test_a_crash_after_the_direct_launch_is_launched_once_by_the_redelivery(aws: None) -> None:
    # Given free capacity and a function that dies right after its direct-launch transaction
    world = World(FaultPlan())
    crashed = _crash_after_first_transaction(world)
    world.submit_to_queue(S1)
    # When the world runs to quiescence
    world.run()
    assert crashed
    assert world.crashes == ["challenge: SimulatedCrash"]
    # Then one task, one report; the redelivery re-claimed the expired lease with the same attempt (clientToken)
    record = world.record_of(S1)
    assert record is not None
    assert (record.state, record.report_status) == (SubmissionState.SUCCEEDED, ReportStatus.REPORTED)
    assert len(world.ecs_fake.tasks) == 1
    assert record.launch_attempt == 1
    assert any("re-claimed after expired lease, attempt 1" in event.detail for event in record.history)
    # And its slots are free, nothing waits
    pools = world.capacity_store().pools()
    assert not pools.env.holders
    assert not pools.challenge(CHALLENGE_ID).holders
    assert pools.challenge(CHALLENGE_ID).waiting == 0


def test_a_crash_after_the_direct_launch_keeps_its_slot_from_the_run_behind_it(aws: None) -> None:
    # Given one slot, S1 launched directly and crashed, and S2 arriving while S1's lease is live
    world = World(FaultPlan(), config=ONE_SLOT)
    _crash_after_first_transaction(world)
    world.submit_to_queue(S1)
    world.submit_to_queue(S2, at=10, member_id=OTHER_MEMBER)
    world.run()
    # Then S2 waited (the slot stayed S1's) and both ran once, S1 first
    first, second = world.record_of(S1), world.record_of(S2)
    assert first is not None
    assert second is not None
    assert [first.state, second.state] == [SubmissionState.SUCCEEDED] * 2
    assert len(world.ecs_fake.tasks) == 2
    assert any(event.state == SubmissionState.WAITING.value for event in second.history)
    assert first.launched_at is not None
    assert second.launched_at is not None
    assert first.launched_at < second.launched_at
