"""The completion and sweeper construct (`mm_constructs/completion.py`): the STOPPED rule, ECS calls on the
cluster, the sweeper's invoke of the completion function.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import pytest

from infrastructure.packaging import SHARED_PACKAGES
from infrastructure.wiring import SWEEPER_HANDLER, WiringPlan
from tests.infrastructure.templates import as_list, functions, resources, role_statements, statements_for
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_completion_and_sweeper_ecs_calls_are_conditioned_on_the_cluster(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    core = synthesized.templates["mm-example-core"]
    fns = functions(synthesized)
    cluster = plan.config.ecs.cluster_arn
    for name, action in (
        ("mm-example-completion", "ecs:DescribeTasks"),
        ("mm-example-timeout-sweeper", "ecs:StopTask"),
        ("mm-example-timeout-sweeper", "ecs:DescribeTasks"),  # reconciling lost STOPPED events
    ):
        statements = role_statements(core, fns[name][2]["Properties"]["Role"]["Fn::GetAtt"][0])
        (statement,) = statements_for(statements, action)
        assert statement["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
        assert statement["Resource"] == "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/*"
    sweeper = role_statements(core, fns["mm-example-timeout-sweeper"][2]["Properties"]["Role"]["Fn::GetAtt"][0])
    # The orphan scan (decision 071): ListTasks has no task resource, so `*`, held to the cluster by condition.
    (list_tasks,) = statements_for(sweeper, "ecs:ListTasks")
    assert list_tasks["Resource"] == "*"
    assert list_tasks["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
    queries = [r for s in statements_for(sweeper, "dynamodb:Query") for r in as_list(s["Resource"])]
    assert any(str(r).endswith("/index/byStateDeadline") for r in queries)


def test_the_sweeper_may_invoke_the_completion_function_and_nothing_else(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    core = synthesized.templates["mm-example-core"]
    fns = functions(synthesized)
    completion_lid = fns[plan.names.completion_function][1]
    sweeper = role_statements(core, fns[plan.names.sweeper_function][2]["Properties"]["Role"]["Fn::GetAtt"][0])
    # exactly one statement, for exactly the completion function's unqualified ARN (no versions, no wildcard)
    (invoke,) = [s for s in sweeper if any(a.startswith("lambda:") for a in as_list(s["Action"]))]
    assert as_list(invoke["Action"]) == ["lambda:InvokeFunction"]
    assert invoke["Resource"] == {"Fn::GetAtt": [completion_lid, "Arn"]}
    # and the name it invokes is the completion function's (the sweeper's environment, from the plan)
    variables = fns[plan.names.sweeper_function][2]["Properties"]["Environment"]["Variables"]
    assert variables["COMPLETION_FUNCTION_NAME"] == plan.names.completion_function
    assert fns[plan.names.completion_function][2]["Properties"]["FunctionName"] == plan.names.completion_function
    # no other role in the pipeline may invoke it
    for name, (_, _, fn) in fns.items():
        if name == plan.names.sweeper_function or not name.startswith("mm-example-"):
            continue
        for stack, template in synthesized.templates.items():
            role = fn["Properties"]["Role"]
            if isinstance(role, dict) and "Fn::GetAtt" in role and role["Fn::GetAtt"][0] in template["Resources"]:
                statements = role_statements(template, role["Fn::GetAtt"][0])
                assert not statements_for(statements, "lambda:InvokeFunction"), (stack, name)


def test_completion_rule_matches_the_plan_with_retries_and_a_dlq(synthesized: Synthesized, plan: WiringPlan) -> None:
    core = synthesized.templates["mm-example-core"]
    rules = {r["Properties"]["Name"]: r["Properties"] for _, r in resources(core, "AWS::Events::Rule")}
    rule = rules[plan.names.completion_rule]
    assert rule["EventPattern"] == plan.completion_rule_pattern()
    (target,) = rule["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
    dlq = next(
        lid
        for lid, q in resources(core, "AWS::SQS::Queue")
        if q["Properties"]["QueueName"] == "mm-example-completion-dlq"
    )
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    schedule = rules[plan.names.sweeper_schedule]
    assert schedule["ScheduleExpression"] == f"rate({plan.config.sweeper_interval_minutes} minutes)"


def test_the_sweeper_runs_from_its_own_asset_without_the_completion_package(synthesized: Synthesized) -> None:
    # Given the sweeper and completion functions of the synthesized example
    fns = functions(synthesized)
    sweeper = fns["mm-example-timeout-sweeper"][2]["Properties"]
    completion = fns["mm-example-completion"][2]["Properties"]
    # Then the sweeper's code is an asset of its own: its package and the shared ones, no completion_lambda
    assert sweeper["Code"]["S3Key"] != completion["Code"]["S3Key"]
    asset = synthesized.assembly_dir / f"asset.{sweeper['Code']['S3Key'].removesuffix('.zip')}"
    assert sorted(p.name for p in asset.iterdir()) == sorted(["sweeper_lambda", *SHARED_PACKAGES])
    assert sweeper["Handler"] == SWEEPER_HANDLER
