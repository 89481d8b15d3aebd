"""The challenge processor's one read of a new run hands the versions stamped on its pools to the caps loader
(decision 114, for SSM at zero on a warm function): a caps change the pools name is acted on at once, inside the
cache's lifetime, and a run launched directly records the config version it used."""

from __future__ import annotations

from fault_injection import FaultPlan
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY
from tests.fakes.ecs import TaskScript
from tests.matrix.case import S1, S2
from tests.matrix.deployment import CAPACITY_PARAMETER, CAPACITY_TABLE, STATUS_TABLE
from tests.matrix.world import World

OTHER_MEMBER = 40_158_995


def _stamp_caps_version(world: World) -> None:
    """The operator lowers the environment's cap to 1; the ENV pool item names the new version (as a sweep or
    `caps set` stamps it)."""
    world.put_environment_capacity({"maxRunningTasks": 1})
    version = world.admin_ssm.get_parameter(Name=CAPACITY_PARAMETER)["Parameter"]["Version"]
    world.admin_ddb.update_item(
        TableName=CAPACITY_TABLE,
        Key={CAPACITY_TABLE_PARTITION_KEY: {"S": "POOL"}, CAPACITY_TABLE_SORT_KEY: {"S": "ENV"}},
        UpdateExpression="SET capsVersion = :v",
        ExpressionAttributeValues={":v": {"N": str(version)}},
    )


def test_a_caps_version_named_by_the_pools_is_read_before_the_next_direct_launch(aws: None) -> None:
    # Given S1 running (its scorer takes 900 s) under caps the processor cached at its first message
    world = World(FaultPlan(), scripts={S1: TaskScript(run_seconds=900)})
    world.submit_to_queue(S1)
    # When the cap drops to 1 at t=5 (stamped on the ENV pool) and S2 arrives at t=10, well inside the 60 s cache
    world.scheduler.at(world.clock.start + 5, lambda: _stamp_caps_version(world), "caps lowered")
    world.submit_to_queue(S2, at=10, member_id=OTHER_MEMBER)
    world.run()
    # Then S2 was not launched beside S1 on the cached cap: it waited for S1's slot, and both ran once
    first, second = world.record_of(S1), world.record_of(S2)
    assert first is not None
    assert second is not None
    assert [first.state, second.state] == [SubmissionState.SUCCEEDED] * 2
    assert any(event.state == SubmissionState.WAITING.value for event in second.history)
    assert len(world.ecs_fake.tasks) == 2


def test_a_direct_launch_records_the_config_version_it_used(aws: None) -> None:
    world = World(FaultPlan())
    world.submit_to_queue(S1)
    world.run()
    record = world.record_of(S1)
    assert record is not None
    item = world.admin_ddb.get_item(TableName=STATUS_TABLE, Key={"runId": {"S": record.run_id}})["Item"]
    assert item["configVersion"] == {"N": "1"}
