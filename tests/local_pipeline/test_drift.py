"""The stacks and the local pipeline must wire the same system: a drift test over the synthesized templates
and what the local pipeline created in the emulator (read back), plus checks that the comparison notices a
changed filter policy, redrive, rule pattern or environment variable name."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.config import load_environment
from infrastructure.wiring import WiringPlan
from local_pipeline.awsenv import LocalAws
from local_pipeline.function_env import function_environment, local_env_names
from local_pipeline.provision import TopcoderEndpoints, provision
from tests.local_pipeline.drift import Wiring, compare, wiring_from_emulator, wiring_from_templates

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"


@pytest.fixture(scope="module")
def local_wiring() -> Iterator[Wiring]:
    """What `mm-processor local run` creates for the example environment, read back from moto."""
    plan = WiringPlan(load_environment("example"))
    with LocalAws() as aws:
        resources = provision(
            plan, aws, TopcoderEndpoints("http://127.0.0.1:9/v5", "http://127.0.0.1:9/token", "local-token")
        )
        env_names = {
            name: sorted(
                set(function_environment(spec, aws, "http://127.0.0.1:9", "example")) - local_env_names(spec, aws)
            )
            for name, spec in resources.functions.items()
        }
        yield wiring_from_emulator(aws, resources, env_names)


def _find(template: dict[str, Any], kind: str, predicate: Any = lambda props: True) -> dict[str, Any]:
    return next(
        r["Properties"] for r in template["Resources"].values() if r["Type"] == kind and predicate(r["Properties"])
    )


@pytest.mark.xdist_group("synth")
def test_stacks_and_local_pipeline_wire_the_same_system(local_wiring: Wiring) -> None:
    from tests.synth import synth_example

    stacks = wiring_from_templates(synth_example().templates)
    # both sides really contain the wiring (not two empty sets agreeing)
    assert len(stacks.subscriptions) == 3
    assert len(stacks.redrive) == 3
    assert len(stacks.rules) == 2  # task stopped -> completion; parameter changes -> sweeper (121)
    assert len(stacks.functions) == 6
    assert compare(stacks, local_wiring) == []


@pytest.mark.xdist_group("synth")
def test_drift_test_fails_on_a_changed_filter_policy_or_env_var_name_in_the_synthesized_stacks(
    local_wiring: Wiring,
) -> None:
    from infrastructure.stacks.pipeline import shard_stack_name
    from tests.synth import synth_example

    templates = copy.deepcopy(synth_example().templates)
    plan = WiringPlan(load_environment("example"))
    shard = templates[shard_stack_name("example", plan.config.shard_of(plan.config.challenge(ROUTE_PLANNER)))]
    subscription = _find(
        shard, "AWS::SNS::Subscription", lambda p: p.get("FilterPolicy") == {"challengeId": [ROUTE_PLANNER]}
    )
    subscription["FilterPolicy"] = {"challengeId": ["00000000-0000-4000-8000-000000000000"]}
    router = _find(
        templates["mm-example-core"], "AWS::Lambda::Function", lambda p: p.get("FunctionName") == "mm-example-router"
    )
    variables = router["Environment"]["Variables"]
    variables["SNS_TOPIC"] = variables.pop("SNS_TOPIC_ARN")

    differences = compare(wiring_from_templates(templates), local_wiring)

    assert any(f"subscriptions: mm-example-ch-{ROUTE_PLANNER}.filterPolicy" in d for d in differences)
    assert any("functions: mm-example-router.env" in d and "SNS_TOPIC" in d for d in differences)
    assert len(differences) == 2


# ---------------------------------------------------------------- the comparison itself (no synth)
def _template() -> dict[str, dict[str, Any]]:
    return {
        "core": {
            "Resources": {
                "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "mm-t-ch-1-dlq"}},
                "Queue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {
                        "QueueName": "mm-t-ch-1",
                        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}, "maxReceiveCount": 3},
                    },
                },
                "Sub": {
                    "Type": "AWS::SNS::Subscription",
                    "Properties": {
                        "Protocol": "sqs",
                        "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
                        "FilterPolicy": {"challengeId": ["1"]},
                        "RawMessageDelivery": True,
                        "RedrivePolicy": {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:fanout-dlq"},
                    },
                },
                "Rule": {
                    "Type": "AWS::Events::Rule",
                    "Properties": {"Name": "mm-t-task-stopped", "EventPattern": {"source": ["aws.ecs"]}},
                },
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "FunctionName": "mm-t-router",
                        "Handler": "router_lambda.handler.handler",
                        "Environment": {"Variables": {"SNS_TOPIC_ARN": "x", "AUDIT_QUEUE_URL": "y"}},
                    },
                },
            }
        }
    }


def _local() -> Wiring:
    return Wiring(
        subscriptions={
            "mm-t-ch-1": {"filterPolicy": {"challengeId": ["1"]}, "rawMessageDelivery": True, "deliveryDlq": True}
        },
        redrive={"mm-t-ch-1": {"deadLetterQueue": "mm-t-ch-1-dlq", "maxReceiveCount": 3}},
        rules={"mm-t-task-stopped": {"source": ["aws.ecs"]}},
        functions={
            "mm-t-router": {"handler": "router_lambda.handler.handler", "env": ["AUDIT_QUEUE_URL", "SNS_TOPIC_ARN"]}
        },
    )


def test_identical_wiring_has_no_differences() -> None:
    assert compare(wiring_from_templates(_template()), _local()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["Sub"]["Properties"].update(FilterPolicy={"challengeId": ["2"]}), "mm-t-ch-1.filterPolicy"),
        (lambda r: r["Sub"]["Properties"].update(RawMessageDelivery=False), "mm-t-ch-1.rawMessageDelivery"),
        (lambda r: r["Queue"]["Properties"]["RedrivePolicy"].update(maxReceiveCount=5), "mm-t-ch-1.maxReceiveCount"),
        (lambda r: r["Rule"]["Properties"].update(EventPattern={"source": ["aws.ec2"]}), "rules: mm-t-task-stopped"),
        (
            lambda r: r["Fn"]["Properties"]["Environment"]["Variables"].update(AUDIT_QUEUE="y"),
            "mm-t-router.env: only in stacks ['AUDIT_QUEUE']",
        ),
        (lambda r: r["Fn"]["Properties"].update(Handler="router_lambda.other.handler"), "mm-t-router.handler"),
        (lambda r: r.pop("Sub"), "mm-t-ch-1 is created locally but not in the stacks"),
    ],
)
def test_comparison_reports_each_kind_of_drift(mutate: Any, expected: str) -> None:
    templates = _template()
    mutate(templates["core"]["Resources"])
    differences = compare(wiring_from_templates(templates), _local())
    assert any(expected in d for d in differences), differences


def test_allowlist_order_and_json_strings_are_not_drift() -> None:
    templates = _template()
    templates["core"]["Resources"]["Sub"]["Properties"]["FilterPolicy"] = '{"challengeId": ["1"]}'
    local = _local()
    assert compare(wiring_from_templates(templates), local) == []
