"""The permission check over the synthesized templates (decision 048): what moto cannot show, because it
evaluates no IAM. Each function's role must grant what its configuration and its code need, scoped to the
resource, and nothing the code never uses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infrastructure.permissions import (
    CDK_GRANT_EXTRAS,
    ENI_DESCRIBE_ACTIONS,
    Grant,
    Templates,
    allowed,
    check,
    matches,
)
from infrastructure.wiring import WiringPlan
from tests.synth import Synthesized, synth_example, synth_scorer_token_variant, synth_variant

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


@pytest.fixture(scope="module")
def synthesized() -> Synthesized:
    return synth_example()


def _check(synthesized: Synthesized, templates: dict[str, dict[str, Any]] | None = None) -> Any:
    return check(Templates(templates or synthesized.templates, synthesized.config), WiringPlan(synthesized.config))


def _function(templates: dict[str, dict[str, Any]], name: str) -> tuple[str, dict[str, Any]]:
    for stack, template in templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"].get("FunctionName") == name:
                return stack, resource
    raise AssertionError(name)


def _inline_statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def test_every_function_role_grants_what_its_configuration_and_code_need(synthesized: Synthesized) -> None:
    findings = _check(synthesized)
    assert findings.missing == [], "\n".join(findings.missing)


def test_no_function_role_grants_what_its_code_and_configuration_never_use(synthesized: Synthesized) -> None:
    findings = _check(synthesized)
    assert findings.unused == [], "\n".join(findings.unused)
    # and each accepted CDK extra is really granted somewhere (no stale entries in the allow-list)
    assert findings.cdk_extras_seen == set(CDK_GRANT_EXTRAS)


def test_every_function_role_carries_its_statements_inline(synthesized: Synthesized) -> None:
    # Lambda checks the ENI permissions at CreateFunction: inline in the role, they exist before the function.
    plan = WiringPlan(synthesized.config)
    checked = 0
    for template in synthesized.templates.values():
        resources = template["Resources"]
        for resource in resources.values():
            props = resource["Properties"] if resource["Type"] == "AWS::Lambda::Function" else None
            if props is None or not str(props.get("FunctionName", "")).startswith(f"mm-{plan.config.environment}-"):
                continue
            role_id = props["Role"]["Fn::GetAtt"][0]
            attached = [
                lid
                for lid, r in resources.items()
                if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
            ]
            assert attached == [], (props["FunctionName"], attached)
            assert _inline_statements(template, resource), props["FunctionName"]
            assert not [d for d in resource.get("DependsOn", []) if resources[d]["Type"] == "AWS::IAM::Policy"]
            checked += 1
    assert checked == 3 + len(plan.config.challenges)


def test_a_vpc_function_without_network_interface_permissions_is_reported(synthesized: Synthesized) -> None:
    # Given the templates with the ec2 statements taken out of the completion role (the defect of issue 8)
    templates = copy.deepcopy(synthesized.templates)
    name = WiringPlan(synthesized.config).names.completion_function
    stack, function = _function(templates, name)
    role = templates[stack]["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
    for policy in role["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if not a.startswith("ec2:")] or ["xray:PutTraceSegments"]
    # When checked, Then each ENI action is named as missing for that function
    missing = _check(synthesized, templates).missing
    for action in ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", *ENI_DESCRIBE_ACTIONS):
        assert any(m.startswith(f"{name}: missing {action} on ") for m in missing), (action, missing)
    assert all(m.startswith(f"{name}: ") for m in missing)


def test_network_interface_grants_of_a_function_outside_the_vpc_are_unused(synthesized: Synthesized) -> None:
    # Given the sweeper without its VpcConfig (a non-VPC function) but with the ENI statements still granted
    templates = copy.deepcopy(synthesized.templates)
    name = WiringPlan(synthesized.config).names.sweeper_function
    _, function = _function(templates, name)
    del function["Properties"]["VpcConfig"]
    unused = _check(synthesized, templates).unused
    # Then the check calls them grants nothing uses, and nothing else
    assert unused
    assert all(m.startswith(f"{name}: ec2:") for m in unused), unused


def test_a_grant_on_the_wrong_resource_does_not_satisfy_a_need(synthesized: Synthesized) -> None:
    # Given the router's publish statement pointed at the alarm topic instead of the submissions topic
    templates = copy.deepcopy(synthesized.templates)
    plan = WiringPlan(synthesized.config)
    stack, function = _function(templates, plan.names.router_function)
    for statement in _inline_statements(templates[stack], function):
        if statement["Action"] == "sns:Publish":
            statement["Resource"] = f"arn:aws:sns:us-east-1:123456789012:{plan.names.alarm_topic}"
    findings = _check(synthesized, templates)
    assert any(m.startswith(f"{plan.names.router_function}: missing sns:Publish on ") for m in findings.missing)
    assert any(m.startswith(f"{plan.names.router_function}: sns:Publish on ") for m in findings.unused)


def test_wildcards_match_as_iam_matches_them_and_a_deny_overrides() -> None:
    assert matches("arn:aws:sqs:us-east-1:1:mm-example-ch-*", "arn:aws:sqs:us-east-1:1:mm-example-ch-abc")
    assert not matches("arn:aws:sqs:us-east-1:1:mm-example-ch-*", "arn:aws:sqs:us-east-1:1:mm-other-ch-abc")
    assert matches("kms:GenerateDataKey*", "kms:GenerateDataKey")
    assert matches("ECS:runtask", "ecs:RunTask", ignore_case=True)
    assert not matches("arn:aws:s3:::bucket", "*")  # a need on "*" takes a grant on "*"
    grants = [Grant("Allow", "sqs:*", "*", "p"), Grant("Deny", "sqs:SendMessage", "arn:aws:sqs:r:1:q", "p")]
    assert allowed(grants, "sqs:ReceiveMessage", "arn:aws:sqs:r:1:q")
    assert not allowed(grants, "sqs:SendMessage", "arn:aws:sqs:r:1:q")


@pytest.fixture(scope="module")
def variant() -> Synthesized:
    return synth_variant()


def test_an_mtls_environment_with_every_credentials_mode_grants_exactly_what_is_needed(variant: Synthesized) -> None:
    plan = WiringPlan(variant.config)
    names = {f.name for f in Templates(variant.templates, variant.config).functions()}
    assert plan.names.certificate_monitor_function in names  # the monitor is checked too
    findings = _check(variant)
    assert findings.missing == [], "\n".join(findings.missing)
    # parameter_reference hands the task only the parameter's name: its processor must not read the token
    assert findings.unused == [], "\n".join(findings.unused)


def test_the_scorer_token_refresher_grants_exactly_what_is_needed() -> None:
    # Given the Auth0-proxy variant with the scorer-token refresher (decision 091)
    synthesized = synth_scorer_token_variant()
    plan = WiringPlan(synthesized.config)
    names = {f.name for f in Templates(synthesized.templates, synthesized.config).functions()}
    assert plan.names.scorer_token_refresher_function in names  # the refresher is checked too
    findings = _check(synthesized)
    assert findings.missing == [], "\n".join(findings.missing)
    assert findings.unused == [], "\n".join(findings.unused)
    # and without its write statement the check names the missing PutParameter
    templates = copy.deepcopy(synthesized.templates)
    stack, function = _function(templates, plan.names.scorer_token_refresher_function)
    for statement in _inline_statements(templates[stack], function):
        if "ssm:PutParameter" in statement["Action"]:
            statement["Action"] = ["ssm:GetParameter"]
    missing = _check(synthesized, templates).missing
    assert [m.split(" on ")[0] for m in missing] == [
        f"{plan.names.scorer_token_refresher_function}: missing ssm:PutParameter"
    ]
