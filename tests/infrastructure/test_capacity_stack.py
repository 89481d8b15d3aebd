"""Capacity in the synthesized stacks (decision 097): the capacity table and parameter, every capacity grant and
nothing wider, the alarms and the dashboard row; every shipped environment synthesizes with cdk-nag clean."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.config import CONFIG_DIR
from infrastructure.mm_constructs.data import CAPACITY_TABLE_ACTIONS
from infrastructure.wiring import SWEEPER_SERVICE_NAME, WiringPlan
from mm_capacity.store import capacity_table_definition
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.names import CAPACITY_TABLE_TTL_ATTRIBUTE
from tests.synth import Synthesized, synth_environment, synth_example

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]
SHIPPED = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def resources(synthesized: Synthesized, type_: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical_id, resource)
        for stack, template in synthesized.templates.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == type_
    ]


def named(synthesized: Synthesized, type_: str, key: str, name: str) -> tuple[str, str, dict[str, Any]]:
    (found,) = [r for r in resources(synthesized, type_) if r[2]["Properties"].get(key) == name]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_of(synthesized: Synthesized, function_name: str) -> list[dict[str, Any]]:
    stack, _, function = named(synthesized, "AWS::Lambda::Function", "FunctionName", function_name)
    role = synthesized.templates[stack]["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def with_action(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in as_list(s["Action"])]


@pytest.fixture(scope="module")
def example() -> Synthesized:
    return synth_example()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_environment_synthesizes_its_capacity_with_cdk_nag_clean(name: str) -> None:
    synthesized = synth_environment(name)
    plan = WiringPlan(synthesized.config)
    report = json.loads((synthesized.assembly_dir / "validation-report.json").read_text())
    assert report["pluginReports"] == [], name
    # the parameter holds exactly the config's EnvironmentCapacity, which the functions parse back ...
    _, _, parameter = named(synthesized, "AWS::SSM::Parameter", "Name", plan.capacity_parameter())
    value = parameter["Properties"]["Value"]
    assert parameter["Properties"]["Type"] == "String"
    assert json.loads(value) == plan.environment_capacity().to_wire()
    assert EnvironmentCapacity.model_validate_json(value) == plan.environment_capacity()
    # ... and the table exists once, in the core stack
    stack, _, _ = named(synthesized, "AWS::DynamoDB::Table", "TableName", plan.names.capacity_table)
    assert stack == f"mm-{name}-core"


def test_the_capacity_table_is_kept_exactly_like_the_status_table(example: Synthesized) -> None:
    plan = WiringPlan(example.config)
    _, _, capacity = named(example, "AWS::DynamoDB::Table", "TableName", plan.names.capacity_table)
    _, _, status = named(example, "AWS::DynamoDB::Table", "TableName", plan.names.status_table)
    definition = capacity_table_definition(plan.names.capacity_table)
    props = capacity["Properties"]
    assert (
        props["KeySchema"]
        == definition["KeySchema"]
        == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
    )
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(definition["AttributeDefinitions"], key=str)
    assert "GlobalSecondaryIndexes" not in props  # strongly consistent base-table queries only
    assert props["TimeToLiveSpecification"] == {"AttributeName": CAPACITY_TABLE_TTL_ATTRIBUTE, "Enabled": True}
    for key in ("BillingMode", "PointInTimeRecoverySpecification", "DeletionProtectionEnabled"):
        assert props.get(key) == status["Properties"].get(key), key
    assert props.get("SSESpecification") == status["Properties"].get("SSESpecification")
    assert (capacity["DeletionPolicy"], capacity["UpdateReplacePolicy"]) == (
        status["DeletionPolicy"],
        status["UpdateReplacePolicy"],
    )
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    outputs = example.templates["mm-example-core"]["Outputs"]
    assert {"CapacityTableName", "CapacityParameterName"} <= set(outputs)


def test_the_dev_environment_destroys_its_capacity_table_with_the_stack() -> None:
    dev = synth_environment("dev")
    _, _, table = named(dev, "AWS::DynamoDB::Table", "TableName", WiringPlan(dev.config).names.capacity_table)
    assert (table["DeletionPolicy"], table["Properties"].get("DeletionProtectionEnabled", False)) == ("Delete", False)


def test_the_capacity_functions_hold_exactly_the_capacity_grants(example: Synthesized) -> None:
    plan = WiringPlan(example.config)
    names = plan.names
    capacity_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/mm-example-capacity"
    parameter_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/mm-processor/example/capacity"
    _, table_id, _ = named(example, "AWS::DynamoDB::Table", "TableName", names.capacity_table)
    functions = [names.completion_function, names.sweeper_function] + [
        names.challenge_function(c.challenge_id) for c in example.config.challenges
    ]
    for function in functions:
        statements = statements_of(example, function)
        # the six table actions, on the capacity table only (an import of the core's table in a shard stack)
        (table,) = [s for s in statements if "dynamodb:ConditionCheckItem" in as_list(s["Action"])]
        # ... and the challenge processor's one read of a new run's member and pools (decision 114)
        reads_new_runs = function not in (names.completion_function, names.sweeper_function)
        expected = {*CAPACITY_TABLE_ACTIONS, *(["dynamodb:BatchGetItem"] if reads_new_runs else [])}
        assert sorted(as_list(table["Action"])) == sorted(expected), function
        assert table_id in json.dumps(table["Resource"]) or capacity_arn in json.dumps(table["Resource"]), function
        for action in ("dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"):
            assert with_action(statements, action) == [table], (function, action)  # never on the status table
        reads = [r for s in with_action(statements, "ssm:GetParameter") for r in as_list(s["Resource"])]
        assert parameter_arn in reads, function
    # the router keeps no slots
    router = statements_of(example, names.router_function)
    assert "capacity" not in json.dumps(router)


def test_a_challenge_function_sends_only_to_its_own_queue_and_stops_only_the_clusters_tasks(
    example: Synthesized,
) -> None:
    plan = WiringPlan(example.config)
    cluster = example.config.ecs.cluster_arn
    for challenge in example.config.challenges:
        stack, _, function = named(
            example, "AWS::Lambda::Function", "FunctionName", plan.names.challenge_function(challenge.challenge_id)
        )
        _, queue_id, _ = named(
            example, "AWS::SQS::Queue", "QueueName", plan.names.challenge_queue(challenge.challenge_id)
        )
        statements = statements_of(example, plan.names.challenge_function(challenge.challenge_id))
        # (CDK merges it with the event source's statement on the same queue)
        (send,) = with_action(statements, "sqs:SendMessage")
        assert send["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}  # its own queue, no pattern
        (stop,) = with_action(statements, "ecs:StopTask")
        assert as_list(stop["Action"]) == ["ecs:StopTask"]
        assert stop["Resource"] == "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/*"
        assert stop["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
        assert not with_action(statements, "ecs:ListTasks")
        # the queue it sends to is its own, also in its environment
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["CHALLENGE_QUEUE_URL"] == {"Ref": queue_id}
        assert variables["CAPACITY_PARAMETER_NAME"] == plan.capacity_parameter()
        assert stack != "mm-example-core"


def test_the_sweeper_reads_every_challenge_config_and_sends_to_the_challenge_queues(example: Synthesized) -> None:
    plan = WiringPlan(example.config)
    statements = statements_of(example, plan.names.sweeper_function)
    (send,) = with_action(statements, "sqs:SendMessage")
    assert send["Resource"] == "arn:aws:sqs:us-east-1:123456789012:mm-example-ch-*"
    (read,) = with_action(statements, "ssm:GetParameter")
    assert sorted(as_list(read["Resource"])) == [
        "arn:aws:ssm:us-east-1:123456789012:parameter/mm-processor/example/capacity",
        "arn:aws:ssm:us-east-1:123456789012:parameter/mm-processor/example/challenges/*",
    ]


def test_the_capacity_alarms_watch_the_sweepers_environment_gauges(example: Synthesized) -> None:
    config = example.config
    alarms = [r["Properties"] for _, _, r in resources(example, "AWS::CloudWatch::Alarm")]
    by_metric = {a.get("MetricName"): a for a in alarms if a.get("Namespace") == "MMProcessor"}
    dimensions = [
        {"Name": "Environment", "Value": "example"},
        {"Name": "service", "Value": SWEEPER_SERVICE_NAME},
    ]
    period = config.sweeper_interval_minutes * 60
    oldest = by_metric[Metric.OLDEST_WAIT_SECONDS.value]
    assert sorted(oldest["Dimensions"], key=str) == sorted(dimensions, key=str)
    assert (oldest["Statistic"], oldest["Period"]) == ("Maximum", period)
    assert (oldest["Threshold"], oldest["ComparisonOperator"], oldest["EvaluationPeriods"]) == (
        config.capacity.oldest_wait_alarm_minutes * 60,
        "GreaterThanThreshold",
        1,
    )
    full = by_metric[Metric.CAPACITY_FULL.value]
    assert sorted(full["Dimensions"], key=str) == sorted(dimensions, key=str)
    assert (full["Statistic"], full["Period"]) == ("Maximum", period)
    assert (full["Threshold"], full["ComparisonOperator"], full["EvaluationPeriods"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
        config.capacity.cap_reached_alarm_minutes // config.sweeper_interval_minutes,
    )
    for alarm in (oldest, full):
        assert alarm["TreatMissingData"] == "ignore"  # one gauge per sweep: a late sweep neither raises nor clears
        assert "AlarmTopic" in json.dumps(alarm["AlarmActions"])


def test_partition_throttling_of_the_capacity_table_for_15_minutes_is_alarmed(example: Synthesized) -> None:
    # decision 125: a pool item too large for its write rate throttles at one partition, which no split relieves
    alarms = [r["Properties"] for _, _, r in resources(example, "AWS::CloudWatch::Alarm")]
    [hot] = [a for a in alarms if a.get("MetricName") == "WriteKeyRangeThroughputThrottleEvents"]
    assert hot["Namespace"] == "AWS/DynamoDB"
    [dimension] = hot["Dimensions"]
    assert dimension["Name"] == "TableName"
    _, table_id, _ = named(
        example, "AWS::DynamoDB::Table", "TableName", WiringPlan(example.config).names.capacity_table
    )
    assert dimension["Value"] == {"Ref": table_id}
    assert (hot["Statistic"], hot["Period"], hot["EvaluationPeriods"]) == ("Sum", 300, 3)
    assert (hot["Threshold"], hot["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert hot["TreatMissingData"] == "notBreaching"  # no throttle, no data point
    assert "AlarmTopic" in json.dumps(hot["AlarmActions"])
    assert "Next: mm-processor caps show --env example" in hot["AlarmDescription"]


def dashboard_widgets(synthesized: Synthesized) -> list[dict[str, Any]]:
    """The dashboard body as CloudWatch reads it (the region reference resolved)."""
    ((_, _, dashboard),) = resources(synthesized, "AWS::CloudWatch::Dashboard")
    separator, parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"]
    body = separator.join(part if isinstance(part, str) else synthesized.config.region for part in parts)
    widgets: list[dict[str, Any]] = json.loads(body)["widgets"]
    return widgets


def test_the_dashboard_has_a_capacity_row_per_gauge_with_environment_and_challenge_lines(example: Synthesized) -> None:
    widgets = dashboard_widgets(example)
    assert any("## Capacity" in w.get("properties", {}).get("markdown", "") for w in widgets)
    graphs = {w["properties"].get("title"): w["properties"]["metrics"] for w in widgets if w["type"] == "metric"}
    for metric, title in (
        (Metric.RUNNING_TASKS, "capacity: running tasks"),
        (Metric.WAITING_RUNS, "capacity: waiting runs"),
        (Metric.OLDEST_WAIT_SECONDS, "capacity: oldest wait (s)"),
        (Metric.CAPACITY_FULL, "capacity: cap reached (1 = full)"),
    ):
        environment_line, per_challenge = graphs[title]
        # the environment's line: the alarms' metric ...
        assert environment_line[:6] == [
            "MMProcessor",
            metric.value,
            "Environment",
            "example",
            "service",
            "timeout-sweeper",
        ]
        # ... and one line per challenge of this environment, labelled by its id
        assert per_challenge[0]["expression"] == (
            f'SEARCH(\'{{MMProcessor,ChallengeId,Environment,service}} MetricName="{metric.value}" '
            f"Environment=\"example\"', 'Maximum', 300)"
        )
        assert per_challenge[0]["label"] == "${PROP('Dim.ChallengeId')}"
