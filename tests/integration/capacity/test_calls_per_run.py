"""AWS calls per run (issue 13, decision 114): one run (submission, phase) through the real functions in the fault
matrix's world, its calls counted by function and operation. A count is behaviour: each cut of decision 114 is an
operation that no longer appears here, and a regression that adds a call fails the test that names it."""

from __future__ import annotations

from collections import Counter

from fault_injection import FaultPlan
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from tests.integration.capacity.call_counter import CallCounter
from tests.matrix.case import S1, S2
from tests.matrix.setups import ONE_SLOT
from tests.matrix.world import World

OTHER_MEMBER = 40_158_995


def test_an_uncontended_run_is_launched_with_four_dynamodb_calls_and_finished_with_four(aws: None) -> None:
    # Given one submission and free capacity
    world = World(FaultPlan())
    calls = CallCounter.install(world)
    world.submit_to_queue(S1)
    # When it runs to its report
    world.run()
    record = world.record_of(S1)
    assert record is not None
    assert (record.state, record.report_status) == (SubmissionState.SUCCEEDED, ReportStatus.REPORTED)
    # Then the challenge processor: ONE read of the run, its member and its pools (BatchGetItem), ONE transaction
    # from no item to LAUNCHING holding its slots (nothing waits), the RunTask pace, the task recorded. No enqueue,
    # no admission, no separate claim, no pools or queue Query (decision 114).
    assert calls.of("challenge", "dynamodb") == Counter({"BatchGetItem": 1, "TransactWriteItems": 1, "UpdateItem": 2})
    assert calls.of("challenge", "ecs") == Counter({"RunTask": 1})
    # And the completion function: the outcome with the report claim in the same write, the report's mark, ONE
    # release transaction (no member reads, no per-pool transactions), one pools read for the dispatch.
    assert calls.of("completion", "dynamodb") == Counter({"UpdateItem": 2, "TransactWriteItems": 1, "Query": 1})
    # And each function read SSM once per parameter it needed, cold only: the processor its challenge config and
    # the environment's caps; the completion its challenge config (nothing waits, so its dispatch reads no caps).
    assert calls.of("challenge", "ssm") == Counter({"GetParameter": 2})
    assert calls.of("completion", "ssm") == Counter({"GetParameter": 1})


def test_a_waiting_run_costs_no_position_query_nor_a_refused_transaction_and_claims_without_a_create(aws: None) -> None:
    # Given a challenge with one slot, S1 in it, and S2 (another member) arriving while it runs
    world = World(FaultPlan(), config=ONE_SLOT)
    calls = CallCounter.install(world)
    world.submit_to_queue(S1)
    world.submit_to_queue(S2, at=10, member_id=OTHER_MEMBER)
    # When both run: S2 waits, S1's completion admits it and sends its message, which launches it
    world.run()
    assert [world.record_of(s).state for s in (S1, S2)] == [SubmissionState.SUCCEEDED] * 2  # type: ignore[union-attr]
    assert len(world.ecs_fake.tasks) == 2
    challenge = calls.of("challenge", "dynamodb")
    # Then no launch claim started with a create that must fail (every run has its item before its launch)
    assert challenge["PutItem"] == 0
    # And S1 went straight to LAUNCHING; S2's message saw the full challenge in its one read (no transaction tried
    # that must fail), enqueued from that read (no member or pool GetItem), read the pools once (its challenge
    # full: no queue read) and no position in the queue
    assert challenge["Query"] == 1
    assert challenge["GetItem"] == 0
    # And S2's admitted message: one read of its run, then the claim, the pace and the task recorded
    assert challenge == Counter(
        {"BatchGetItem": 1 + 1 + 1, "TransactWriteItems": 1 + 1, "Query": 1, "UpdateItem": 2 + 3}
    )
    # And the completion admitted S2 inside its dispatch with one transaction and one read back (its message needs
    # the routed message), the round of fair queuing set in that transaction, not after it
    completion = calls.of("completion", "dynamodb")
    assert completion["TransactWriteItems"] == 2 + 1  # two releases, one admission
    assert completion["GetItem"] == 1
    # per run: the outcome (with the report claim), the report marked; and S1's completion, which found S2 waiting,
    # took the env-wide dispatch turn and handed it back (decision 124)
    assert completion["UpdateItem"] == 2 * 2 + 2
    # S1's completion read the pools twice (the look that found S2 waiting, then its pass, after taking the turn)
    # and S2's queue once; S2's completion only looked (nothing waits: no turn, no caps)
    assert completion["Query"] == 2 + 1 + 1
