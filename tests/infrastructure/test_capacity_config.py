"""The environment's and the challenges' capacity settings (decision 097): validation, the documents they become
(the `<ssmPrefix>/capacity` parameter, `ChallengeConfig.capacity`), the functions' settings, and the IAM item
actions of the capacity transactions. No CDK here: tests/infrastructure/test_capacity_stack.py holds the synth.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import boto3
import pytest

from infrastructure import aws_calls as scanner
from infrastructure.config import (
    CONFIG_DIR,
    CapacitySettings,
    EnvironmentConfigError,
    load_environment,
    parse_environment,
)
from infrastructure.permissions import NeedsOf, Templates
from infrastructure.wiring import CHALLENGE_ID_PLACEHOLDER, ResourceRefs, WiringPlan
from mm_capacity.store import AdmissionLimits, CapacityStore
from mm_contracts.models.capacity import ChallengeCapacity, EnvironmentCapacity, PriorityClass, SupersedePolicy
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.settings import ChallengeProcessorSettings, CompletionSettings, TimeoutSweeperSettings
from tests.conftest import Clock
from tests.integration.capacity.conftest import CHALLENGE_A, submission

SHIPPED = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
REFS = ResourceRefs("arn:aws:sns:us-east-1:123456789012:t", "c", "s", "https://sqs.us-east-1.amazonaws.com/1/q")


def example(**settings: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((CONFIG_DIR / "example.json").read_text())
    raw.update(settings)
    return raw


def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(EnvironmentConfigError) as error:
        parse_environment(raw)
    return str(error.value)


# ------------------------------------------------------------------ the shipped environments
def test_the_local_environments_cap_three_challenges_at_5_5_and_2_under_10() -> None:
    for name in ("example", "dev"):  # the local pipeline runs these two (decision 098)
        config = load_environment(name)
        assert config.capacity.max_running_tasks == 10, name
        assert [c.capacity.max_running_tasks for c in config.challenges] == [5, 5, 2], name
        policies = [c.capacity.supersede for c in config.challenges]
        assert policies.count(SupersedePolicy.CANCEL_WAITING) == 1, name


def test_staging_and_production_cap_20_tasks_and_5_per_challenge_superseding_nothing() -> None:
    for name in ("staging", "production"):
        config = load_environment(name)
        assert config.capacity.max_running_tasks == 20, name
        assert {c.capacity.max_running_tasks for c in config.challenges} == {5}, name
        assert {c.capacity.supersede for c in config.challenges} == {SupersedePolicy.NONE}, name


# ------------------------------------------------------------------ one source: the runtime models
def test_the_environment_block_is_environment_capacity_plus_the_alarm_thresholds() -> None:
    # Same fields, types and defaults as the runtime model (it is a subclass: one source) ...
    assert issubclass(CapacitySettings, EnvironmentCapacity)
    extra = set(CapacitySettings.model_fields) - set(EnvironmentCapacity.model_fields)
    assert extra == {"oldest_wait_alarm_minutes", "cap_reached_alarm_minutes"}
    defaults = CapacitySettings()
    assert (defaults.max_running_tasks, defaults.max_running_vcpu, defaults.default_task_cpu) == (20, None, 1024)
    assert (defaults.run_task_per_second, defaults.oldest_wait_alarm_minutes) == (10, 60)
    assert defaults.cap_reached_alarm_minutes == 30
    # ... and the parameter's document is exactly the runtime part, which the functions parse back
    raw = example(capacity={"maxRunningTasks": 7, "maxRunningVcpu": 12.5, "defaultTaskCpu": 2048})
    document = WiringPlan(parse_environment(raw)).environment_capacity()
    assert type(document) is EnvironmentCapacity
    assert json.loads(document.to_json()) == {
        "maxRunningTasks": 7,
        "maxRunningVcpu": 12.5,
        "defaultTaskCpu": 2048,
        "runTaskPerSecond": 10,
    }
    assert EnvironmentCapacity.model_validate_json(document.to_json()) == document


@pytest.mark.parametrize("name", SHIPPED)
def test_each_challenge_config_document_carries_its_capacity(name: str) -> None:
    config = load_environment(name)
    plan = WiringPlan(config)
    for challenge in config.challenges:
        document = plan.challenge_config(challenge).to_json()
        parsed = ChallengeConfig.model_validate_json(document)
        assert parsed.capacity == challenge.capacity
        assert json.loads(document)["capacity"]["maxRunningTasks"] == challenge.capacity.max_running_tasks


def test_a_challenge_named_only_in_challenge_ids_takes_the_defaults_capacity() -> None:
    extra = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f6aa"
    raw = example()
    raw["challengeDefaults"]["capacity"] = {
        "maxRunningTasks": 3,
        "priorityOrder": ["PROVISIONAL", "SYSTEM", "EXAMPLE", "RERUN"],
    }
    config = parse_environment(raw, overrides={"CHALLENGE_IDS": extra})
    (challenge,) = config.challenges
    assert challenge.capacity.max_running_tasks == 3
    assert challenge.capacity.priority_order[0] is PriorityClass.PROVISIONAL


def test_a_challenge_without_capacity_gets_the_runtime_defaults() -> None:
    raw = example()
    del raw["challenges"][0]["capacity"]
    assert parse_environment(raw).challenges[0].capacity == ChallengeCapacity()


# ------------------------------------------------------------------ refused at synth, by name
def test_a_negative_or_oversized_cap_is_refused_naming_the_setting() -> None:
    raw = example()
    raw["challenges"][1]["capacity"] = {"maxRunningTasks": -1}
    message = refused(raw)
    assert "challenges[30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f602].capacity.maxRunningTasks" in message
    assert "capacity.maxRunningTasks" in refused(example(capacity={"maxRunningTasks": 5001}))
    assert "capacity.runTaskPerSecond" in refused(example(capacity={"runTaskPerSecond": 0}))
    raw = example()
    raw["challenges"][0]["capacity"] = {"maxRunningTasksPerPhase": {"PROVISIONAL": -2}}
    assert "maxRunningTasksPerPhase" in refused(raw)


def test_caps_whose_full_pool_item_outruns_one_dynamodb_item_are_refused_with_the_largest_that_fits() -> None:
    # decision 125: at 20 runs a second a full pool of 218 takes 960 write units a second, one of 219 takes 1,040
    assert parse_environment(example(capacity={"maxRunningTasks": 218, "runTaskPerSecond": 20})).capacity
    message = refused(example(capacity={"maxRunningTasks": 219, "runTaskPerSecond": 20}))
    assert "capacity" in message
    assert "1,040 DynamoDB write units a second" in message
    assert "maxRunningTasks can be at most 218" in message
    # the pace decides: 460 fits at 10 a second, and 5,000 fits at no pace
    assert parse_environment(example(capacity={"maxRunningTasks": 460, "runTaskPerSecond": 10})).capacity
    assert "at most 4,649" in refused(example(capacity={"maxRunningTasks": 5000, "runTaskPerSecond": 1}))


def test_every_shipped_environment_and_the_fargate_ceiling_fit_one_items_write_units() -> None:
    for name in SHIPPED:
        capacity = load_environment(name).capacity
        assert capacity.pool_write_refusal() is None, name
        assert capacity.pool_write_units_per_second() <= 1000, name
    # the local pipeline's throughput run (caps of 100 at 20 a second): a full pool item of ~5.7 KB, 480 a second
    assert EnvironmentCapacity(max_running_tasks=100, run_task_per_second=20).pool_write_units_per_second() == 480


def test_a_priority_order_that_is_not_a_permutation_is_refused() -> None:
    for order in (["SYSTEM", "PROVISIONAL", "EXAMPLE"], ["SYSTEM", "SYSTEM", "EXAMPLE", "RERUN"], ["NOPE"]):
        raw = example()
        raw["challenges"][0]["capacity"] = {"priorityOrder": order}
        assert "capacity.priorityOrder" in refused(raw), order


def test_a_phase_cap_on_a_phase_the_challenge_never_runs_is_refused() -> None:
    # The example's challenges are v5 with one phase (PROVISIONAL, their testType).
    raw = example()
    raw["challenges"][0]["capacity"] = {"maxRunningTasksPerPhase": {"SYSTEM": 1}}
    message = refused(raw)
    assert "challenges[30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601].capacity.maxRunningTasksPerPhase" in message
    assert "SYSTEM" in message
    raw["challenges"][0]["capacity"] = {"maxRunningTasksPerPhase": {"PROVISIONAL": 1}}
    assert parse_environment(raw).challenges[0].capacity.max_running_tasks_per_phase == {ScoringPhase.PROVISIONAL: 1}


def test_a_cap_reached_alarm_shorter_than_one_sweep_is_refused() -> None:
    message = refused(example(sweeperIntervalMinutes=10, capacity={"capReachedAlarmMinutes": 5}))
    assert "capacity.capReachedAlarmMinutes=5" in message
    assert "sweeperIntervalMinutes=10" in message


def test_an_unknown_capacity_setting_is_refused() -> None:
    assert "capacity.maxTasks" in refused(example(capacity={"maxTasks": 3}))


# ------------------------------------------------------------------ the functions' settings
def test_the_three_capacity_functions_get_the_table_the_parameter_and_their_queues() -> None:
    plan = WiringPlan(load_environment("example"))
    refs = ResourceRefs(**{**REFS.__dict__, "capacity_table_name": "token-of-the-table"})
    for challenge in plan.config.challenges:
        settings: ChallengeProcessorSettings = plan.challenge_settings(challenge, refs, queue_url="token-of-my-queue")
        assert settings.capacity_table_name == "token-of-the-table"
        assert settings.capacity_parameter_name == "/mm-processor/example/capacity"
        assert settings.challenge_queue_url == "token-of-my-queue"  # its own queue, from the stack
        planned = plan.challenge_settings(challenge, REFS).challenge_queue_url  # the URL SQS gives its name
        assert planned == (
            f"https://sqs.us-east-1.amazonaws.com/123456789012/{plan.names.challenge_queue(challenge.challenge_id)}"
        )
    completion: CompletionSettings = plan.completion_settings(refs)
    sweeper: TimeoutSweeperSettings = plan.sweeper_settings(refs)
    for settings_ in (completion, sweeper):
        assert settings_.capacity_table_name == "token-of-the-table"
        assert settings_.capacity_parameter_name == plan.capacity_parameter()
    # the sweeper finds challenge configs and queues exactly as the completion function does
    assert sweeper.challenge_config_parameter_prefix == completion.challenge_config_parameter_prefix
    assert sweeper.challenge_queue_name_template == completion.challenge_queue_name_template
    assert CHALLENGE_ID_PLACEHOLDER in sweeper.challenge_queue_name_template
    # refs built by hand (the emulator, older callers) fall back to the planned table name
    assert plan.completion_settings(REFS).capacity_table_name == plan.names.capacity_table == "mm-example-capacity"


# ------------------------------------------------------------------ IAM of the capacity transactions
ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


@pytest.fixture
def transaction_items(capacity_table: str, status_table: str, clock: Clock) -> dict[str, set[tuple[str, str]]]:
    """store method -> the (table, item action) pairs its TransactWriteItems requests carried (sent, whatever the
    outcome): every transaction the store makes, from the requests themselves."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    recorded: dict[str, set[tuple[str, str]]] = {}
    current = ["?"]

    def record(params: dict[str, Any], **_: Any) -> None:
        for item in params["TransactItems"]:
            ((kind, body),) = item.items()
            recorded.setdefault(current[0], set()).add((body["TableName"], kind))

    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", record)
    store = CapacityStore(capacity_table, status_table, clock=clock, dynamodb_client=client)
    limits = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=10, env_cpu_cap_units=None, cpu_units=1024)
    phase = ScoringPhase.PROVISIONAL

    def step(method: str) -> None:
        current[0] = method

    runs = [submission(member_id=1000 + i) for i in range(4)]
    step("enqueue")
    for sub in runs:
        store.enqueue(sub, phase=phase, scorer_type="java", timeout_seconds=600, priority_rank=1)
    entries = {entry.run_id: entry for entry in store.queue_entries(CHALLENGE_A)}
    ids = [run_id(sub.submission_id, phase) for sub in runs]
    step("admit")
    admitted = [store.admit(entries[i], limits).record for i in ids[:3]]
    assert all(record is not None for record in admitted)
    step("release")
    assert admitted[0] is not None
    assert store.release(admitted[0])
    step("requeue")
    assert admitted[1] is not None
    assert store.requeue(admitted[1], reason="RunTask throttled")
    step("cancel_waiting")
    assert store.cancel_waiting(ids[3], reason="superseded") is not None
    step("force_hold")
    assert admitted[2] is not None
    store.release(admitted[2])
    store.force_hold(admitted[2], cpu_units=1024)
    recorded.pop("?", None)
    return recorded


def test_the_store_transactions_use_only_the_item_actions_the_roles_are_granted(
    transaction_items: dict[str, set[tuple[str, str]]], capacity_table: str, status_table: str
) -> None:
    # Given every store method's transactions (observed) and which methods each function's code reaches
    assert {"enqueue", "admit", "requeue", "cancel_waiting"} <= set(transaction_items)
    config = load_environment("example")
    plan = WiringPlan(config)
    needs = NeedsOf(Templates({}, config), plan)
    tables = {
        status_table: needs.t.arn("dynamodb", f"table/{plan.names.status_table}"),
        capacity_table: needs.t.arn("dynamodb", f"table/{plan.names.capacity_table}"),
    }
    kinds_seen: set[tuple[str, str]] = set()
    for function in ("challenge", "completion", "sweeper"):
        code = scanner.reachable_code(scanner.function_modules(function), scanner.HANDLERS_BY_FUNCTION[function])
        reached = {node.name for node in code if isinstance(node, ast.FunctionDef)}
        # the code reaches the transaction, which the scanner turns into its item actions (the AWS doc)
        actions = {c.iam_action for c in scanner.aws_calls(function) if c.operation == "TransactWriteItems"}
        assert actions == set(ITEM_ACTIONS.values()), function
        for method, pairs in transaction_items.items():
            if method not in reached:
                continue
            for table, kind in pairs:
                kinds_seen.add((table, kind))
                # Then the permission check's mapping (what the role must grant) covers each item on its table
                resources = needs.code.of(function, config.challenges[0], ITEM_ACTIONS[kind]) or []
                assert tables[table] in resources, (function, method, table, kind)
    # not vacuous: run items are created and updated, queue entries put and deleted, pools updated
    assert {(status_table, "Put"), (status_table, "Update"), (capacity_table, "Delete")} <= kinds_seen
    # and least privilege holds: only enqueue (the challenge function's) creates a run item, none deletes one
    creators = {m for m, pairs in transaction_items.items() if (status_table, "Put") in pairs}
    assert creators == {"enqueue"}
    assert not any((status_table, "Delete") in pairs for pairs in transaction_items.values())
