"""Capacity (issue 11) through the real functions in the matrix world (not the local pipeline, so not in tests/e2e):
several challenges, their queues and processors, the completion function, the sweeper, the fake ECS, moto DynamoDB
and SSM, on one virtual clock.

- a flood on one challenge while another keeps its share (and running never above a cap);
- a lost STOPPED event still frees its slot (the sweeper reconciles it; the next waiting run starts);
- a superseded waiting run is reported CANCELLED on v6 (its phase's summation, testStatus CANCELLED);
- caps changed at run time through SSM take effect without a redeploy.

Every test also holds the matrix's drained-world invariant: every slot free, nothing left waiting.
"""

from __future__ import annotations

from fault_injection import FaultKind, FaultPlan, FaultRule
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import Platform, run_id
from tests.fakes.ecs import ALL, TaskScript
from tests.matrix.test_matrix import capacity_problems
from tests.matrix.world import World

FLOODED = "6b1d1f68-9c81-4b3c-8a4f-2d3e4f5a6b01"
OTHER = "6b1d1f68-9c81-4b3c-8a4f-2d3e4f5a6b02"
MEMBERS = (40_000_001, 40_000_002, 40_000_003, 40_000_004)


def _sid(prefix: int, index: int) -> str:
    return f"0c8a5d2f-{prefix:04d}-4a2b-9c3d-{index:012d}"


def _cap(tasks: int, **extra: object) -> dict[str, object]:
    return {"capacity": {"maxRunningTasks": tasks, **extra}}


def _runs(world: World, challenge_id: str) -> list[LifecycleRecord]:
    return [r for r in world.records().values() if r.challenge_id == challenge_id]


def test_a_flood_on_one_challenge_leaves_another_its_share(aws: None) -> None:
    # Given challenge A capped at 5, B at 5, the environment at 8; 20 submissions flood A at once, and 3 arrive
    # on B a minute later while most of A's flood is still waiting
    world = World(
        FaultPlan(),
        challenges=(FLOODED, OTHER),
        challenge_configs={FLOODED: _cap(5), OTHER: _cap(5)},
        environment_capacity={"maxRunningTasks": 8},
        scripts={_sid(1, i): TaskScript(run_seconds=300) for i in range(20)},
    )
    for index in range(20):
        world.submit_to_queue(_sid(1, index), challenge_id=FLOODED, member_id=MEMBERS[index % len(MEMBERS)])
    for index in range(3):
        world.submit_to_queue(_sid(2, index), at=60, challenge_id=OTHER, member_id=MEMBERS[index])
    # When the world runs until drained
    world.run()
    flooded, other = _runs(world, FLOODED), _runs(world, OTHER)
    # Then every run succeeded, one task each, and no cap was ever exceeded (exact maxima from the fake ECS)
    assert len(flooded) == 20
    assert len(other) == 3
    assert all(r.state is SubmissionState.SUCCEEDED for r in flooded + other), [r.state for r in flooded + other]
    assert len(world.ecs_fake.tasks) == 23
    assert world.ecs_fake.running_most[FLOODED] == 5
    assert world.ecs_fake.running_most[OTHER] == 3
    assert world.ecs_fake.running_most[ALL] == 8
    # And B's runs started while A's flood was still waiting: each admitted on arrival, before A's last admission
    last_flooded_admission = max(r.admitted_at or 0 for r in flooded)
    for record in other:
        assert record.admitted_at is not None
        assert record.enqueued_at is not None
        assert record.admitted_at - record.enqueued_at <= 1, record.history
        assert record.admitted_at < last_flooded_admission
    # And within A, the members took turns: the first five admitted are four different members
    first_five = sorted(flooded, key=lambda r: (r.admitted_at or 0, r.wait_order or ""))[:5]
    assert len({r.member_id for r in first_five}) == 4
    assert capacity_problems(world) == []


def test_a_lost_stopped_event_still_frees_its_slot(aws: None) -> None:
    # Given a challenge capped at one task; S1's STOPPED event is lost, S2 arrives while S1 runs and waits
    first, second = _sid(3, 1), _sid(3, 2)
    world = World(
        FaultPlan(rules=[FaultRule(kind=FaultKind.STOPPED_EVENT_LOST, target=first, first_n=1)]),
        challenges=(FLOODED,),
        challenge_configs={FLOODED: {**_cap(1), "timeoutSeconds": 3600}},
    )
    world.submit_to_queue(first, challenge_id=FLOODED)
    world.submit_to_queue(second, at=10, challenge_id=FLOODED, member_id=MEMBERS[1])
    # When the world runs until drained
    world.run()
    records = world.records()
    one, two = records[run_id(first, "PROVISIONAL")], records[run_id(second, "PROVISIONAL")]
    # Then the event was really lost, S1 was reconciled by the sweeper (never a timeout) and its slot went to S2
    assert world.plan.fire_count(FaultKind.STOPPED_EVENT_LOST) == 1
    assert one.state is SubmissionState.SUCCEEDED, one.history
    assert two.state is SubmissionState.SUCCEEDED, two.history
    assert one.stopped_at is not None
    assert two.admitted_at is not None
    assert two.admitted_at >= one.stopped_at.timestamp()  # S2 waited for S1's slot, however long the loss held it
    assert world.ecs_fake.running_most[FLOODED] == 1
    assert len(world.ecs_fake.tasks) == 2
    assert capacity_problems(world) == []


def test_a_superseded_waiting_run_is_reported_cancelled_on_v6(aws: None) -> None:
    # Given a v6 challenge capped at one task that cancels a member's older waiting runs; N1's PROVISIONAL run
    # takes the slot and its EXAMPLE run waits; then the same member submits N2
    older, newer = "V6capOlder0001", "V6capNewer0002"
    world = World(
        FaultPlan(),
        platform=Platform.V6,
        challenges=(FLOODED,),
        challenge_configs={FLOODED: _cap(1, supersede="cancel_waiting")},
    )
    world.submit_to_queue(older, challenge_id=FLOODED)
    world.submit_to_queue(newer, at=5, challenge_id=FLOODED)
    # When the world runs until drained
    world.run()
    records = world.records()
    # Then N1's waiting EXAMPLE run was cancelled, its running PROVISIONAL run was left to finish
    cancelled = records[run_id(older, "EXAMPLE")]
    assert cancelled.state is SubmissionState.CANCELLED, cancelled.history
    assert cancelled.task_arn is None
    assert not world.ecs_fake.tasks_of(older, "EXAMPLE")
    assert records[run_id(older, "PROVISIONAL")].state is SubmissionState.SUCCEEDED
    assert all(records[run_id(newer, p)].state is SubmissionState.SUCCEEDED for p in ("EXAMPLE", "PROVISIONAL"))
    # And the member sees it: one EXAMPLE summation for N1, ours, testStatus CANCELLED
    summations = world.summations.summations_of(older, "EXAMPLE")
    assert [(s.get("metadata") or {}).get("testStatus") for s in summations] == ["CANCELLED"]
    assert summations[0]["aggregateScore"] == -1
    assert summations[0]["isPassing"] is False
    assert capacity_problems(world) == []


def test_caps_changed_at_run_time_through_ssm_take_effect_without_a_redeploy(aws: None) -> None:
    # Given an environment whose cap is 0 (admit nothing) and a challenge capped at 1, with 6 submissions waiting
    change_at = 900.0
    world = World(
        FaultPlan(),
        challenges=(FLOODED,),
        challenge_configs={FLOODED: _cap(1)},
        environment_capacity={"maxRunningTasks": 0},
    )
    for index in range(6):
        world.submit_to_queue(_sid(4, index), challenge_id=FLOODED, member_id=MEMBERS[index % len(MEMBERS)])

    def operator_raises_the_caps() -> None:
        # The operator's put-parameter of `<ssmPrefix>/capacity` and of the challenge config: no deploy
        world.put_environment_capacity({"maxRunningTasks": 10})
        world.put_config({**world.config_document, **_cap(3)}, FLOODED)

    world.scheduler.at(world.clock.start + change_at, operator_raises_the_caps, "operator raises the caps")
    # When the world runs until drained
    world.run()
    runs = _runs(world, FLOODED)
    # Then nothing started before the change, everything after it, at most 3 at once (the new cap), and the first
    # admissions came within the caches' ages (60 s for the caps, 300 s for the config) plus one sweep
    assert all(r.state is SubmissionState.SUCCEEDED for r in runs), [r.state for r in runs]
    first_start = min(task.created_at for task in world.ecs_fake.tasks.values())
    assert first_start >= world.clock.start + change_at
    assert first_start <= world.clock.start + change_at + 300 + 300
    assert world.ecs_fake.running_most[FLOODED] == 3
    assert capacity_problems(world) == []
