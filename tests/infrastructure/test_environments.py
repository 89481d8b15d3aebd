"""Two environments in one account (`example`, v5, and `dev`, v6: decisions 051, 053 and 084), synthesized.

They share no physical name, neither can read the other's SSM parameters, production keeps its data while a
developer's environment destroys it, and every log group (the custom-resource provider's too) has the
environment's retention.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.wiring import WiringPlan
from mm_contracts.models.phase import Platform
from mm_contracts.names import static_token_parameter_name
from tests.synth import Synthesized, synth_environment, synth_example

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

PROVIDER_FUNCTION = "AWS679f53fac002430cb0da5b7982bd2287"  # AwsCustomResource's singleton provider
# Top-level properties that name a resource in the account and region (names that would collide).
NAME_PROPERTIES = frozenset(
    {
        "TableName",
        "QueueName",
        "TopicName",
        "FunctionName",
        "LogGroupName",
        "RoleName",
        "ManagedPolicyName",
        "AliasName",
        "Name",  # SSM parameters, EventBridge rules and schedules
        "RuleName",
        "DashboardName",
        "AlarmName",
        "BucketName",
        "LayerName",
        "GroupName",
        "SecretName",
    }
)


@pytest.fixture(scope="module")
def environments() -> dict[str, Synthesized]:
    example = synth_example()
    dev = synth_environment("dev")  # with cdk-nag: a developer's environment must deploy too
    assert example.config.account == dev.config.account
    assert example.config.region == dev.config.region
    # one environment of each platform profile, side by side (decision 084)
    assert (example.config.platforms, dev.config.platforms) == ((Platform.V5,), (Platform.V6,))
    return {"example": example, "dev": dev}


def resources(synthesized: Synthesized) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stack, template in synthesized.templates.items():
        for logical_id, resource in template["Resources"].items():
            yield stack, logical_id, resource


def physical_names(synthesized: Synthesized) -> dict[str, str]:
    """Every name-like value in the templates -> where it is set."""
    names: dict[str, str] = {}
    for stack, template in synthesized.templates.items():
        names[stack] = "stack name"
        for output_id, output in template.get("Outputs", {}).items():
            if "Export" in output:
                names[json.dumps(output["Export"]["Name"])] = f"{stack} export {output_id}"
    for stack, logical_id, resource in resources(synthesized):
        properties = resource.get("Properties", {})
        for key in NAME_PROPERTIES & set(properties):
            value = properties[key]
            if isinstance(value, dict) and {"Ref", "Fn::GetAtt"} & set(value):
                continue  # names another resource (e.g. an event source mapping's FunctionName)
            names[value if isinstance(value, str) else json.dumps(value)] = f"{stack} {logical_id}.{key}"
        group = properties.get("AmazonManagedKafkaEventSourceConfig", {}).get("ConsumerGroupId")
        if group:
            names[group] = f"{stack} {logical_id} Kafka consumer group"
    return names


def resolve(value: Any, config: Any) -> str:
    """An IAM resource as a string: literals, and joins of literals and the pseudo parameters."""
    if isinstance(value, str):
        return value
    pseudo = {"AWS::Partition": "aws", "AWS::Region": config.region, "AWS::AccountId": config.account}
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in pseudo:
        return pseudo[value["Ref"]]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resolve(part, config) for part in parts)
    return json.dumps(value)  # a reference to a resource: never an SSM parameter pattern


def ssm_read_patterns(synthesized: Synthesized) -> list[tuple[str, str]]:
    """(where, resource pattern) of every Allow statement that can read SSM parameters, in any role's policy."""
    found: list[tuple[str, str]] = []
    for stack, logical_id, resource in resources(synthesized):
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents = [properties["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in document["Statement"]:
                actions = statement.get("Action", [])
                actions = actions if isinstance(actions, list) else [actions]
                reads = any(fnmatch.fnmatchcase("ssm:GetParameter", action) for action in actions) or any(
                    fnmatch.fnmatchcase("ssm:GetParametersByPath", action) for action in actions
                )
                if statement["Effect"] != "Allow" or not reads:
                    continue
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                found.extend((f"{stack} {logical_id}", resolve(t, synthesized.config)) for t in targets)
    return found


def parameter_arns(synthesized: Synthesized) -> set[str]:
    """The environment's SSM parameters: those its stacks create, and the token parameter its operators create."""
    config = synthesized.config
    names = {
        resource["Properties"]["Name"]
        for _, _, resource in resources(synthesized)
        if resource["Type"] == "AWS::SSM::Parameter"
    }
    names.add(static_token_parameter_name(config.ssm_prefix))
    return {f"arn:aws:ssm:{config.region}:{config.account}:parameter/{name.lstrip('/')}" for name in names}


# ------------------------------------------------------------------ one account, two environments
def test_two_environments_in_one_account_share_no_physical_name(environments: dict[str, Synthesized]) -> None:
    example, dev = (physical_names(environments[name]) for name in ("example", "dev"))

    # every kind of name is collected (the comparison is not vacuous) ...
    kinds = {where.rsplit(".", 1)[-1] for where in example.values()}
    assert {"TableName", "QueueName", "TopicName", "FunctionName", "LogGroupName", "Name", "AliasName"} <= kinds
    assert any("export" in where for where in example.values())
    # ... and none is used by both environments
    shared = {name: (example[name], dev[name]) for name in set(example) & set(dev)}
    assert shared == {}


def test_no_role_of_one_environment_can_read_the_other_environments_parameters(
    environments: dict[str, Synthesized],
) -> None:
    for reader, owner in (("example", "dev"), ("dev", "example")):
        patterns = ssm_read_patterns(environments[reader])
        own = parameter_arns(environments[reader])
        # the roles do read their own parameters (the check sees the grants) ...
        assert any(fnmatch.fnmatchcase(arn, pattern) for arn in own for _, pattern in patterns), reader
        # ... and none of the other environment's
        readable = sorted(
            (where, pattern, arn)
            for arn in parameter_arns(environments[owner])
            for where, pattern in patterns
            if fnmatch.fnmatchcase(arn, pattern)
        )
        assert readable == [], (reader, owner)


# ------------------------------------------------------------------ data retention
def tables(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    plan = WiringPlan(synthesized.config)
    wanted = {plan.names.status_table, plan.names.challenge_table}
    found = {
        resource["Properties"]["TableName"]: resource
        for _, _, resource in resources(synthesized)
        if resource["Type"] == "AWS::DynamoDB::Table" and resource["Properties"]["TableName"] in wanted
    }
    assert set(found) == wanted
    return found


def test_production_keeps_and_protects_the_status_and_challenge_tables(environments: dict[str, Synthesized]) -> None:
    example = environments["example"]
    assert example.config.retain_data is True

    for name, table in tables(example).items():
        assert table["DeletionPolicy"] == "Retain", name
        assert table["UpdateReplacePolicy"] == "Retain", name
        assert table["Properties"]["DeletionProtectionEnabled"] is True, name


def test_a_developer_environment_destroys_its_tables_cleanly(environments: dict[str, Synthesized]) -> None:
    dev = environments["dev"]
    assert dev.config.retain_data is False

    for name, table in tables(dev).items():
        assert table["DeletionPolicy"] == "Delete", name
        assert table["UpdateReplacePolicy"] == "Delete", name
        assert table["Properties"].get("DeletionProtectionEnabled", False) is False, name


# ------------------------------------------------------------------ concurrency
def test_core_functions_reserve_concurrency_in_the_templates(environments: dict[str, Synthesized]) -> None:
    example = environments["example"]
    names = WiringPlan(example.config).names
    reserved = {
        resource["Properties"]["FunctionName"]: resource["Properties"].get("ReservedConcurrentExecutions")
        for _, _, resource in resources(example)
        if resource["Type"] == "AWS::Lambda::Function" and "FunctionName" in resource["Properties"]
    }

    assert reserved[names.router_function] == 10
    assert reserved[names.completion_function] == 20
    assert reserved[names.sweeper_function] == 1
    for challenge in example.config.challenges:
        assert reserved[names.challenge_function(challenge.challenge_id)] is None  # the queue bounds it


# ------------------------------------------------------------------ the custom-resource provider's logs
def test_the_challenge_rows_provider_logs_to_its_own_group_with_the_environment_retention(
    environments: dict[str, Synthesized],
) -> None:
    for synthesized in environments.values():
        shards = {s: t for s, t in synthesized.templates.items() if not s.endswith("-core")}
        assert shards
        for stack, template in shards.items():
            resources_ = template["Resources"]
            provider_id = next(lid for lid in resources_ if lid.startswith(PROVIDER_FUNCTION))
            provider = resources_[provider_id]["Properties"]
            # the provider writes to a log group of this stack, kept for the environment's retention ...
            group_ref = provider["LoggingConfig"]["LogGroup"]
            group_id = group_ref["Ref"]
            group = resources_[group_id]
            assert group["Type"] == "AWS::Logs::LogGroup", stack
            assert group["Properties"]["RetentionInDays"] == synthesized.config.log_retention_days, stack
            # ... and its role may write only there (no /aws/lambda/* pattern)
            role_id = provider["Role"]["Fn::GetAtt"][0]
            statements = [
                statement
                for policy in resources_[role_id]["Properties"]["Policies"]
                for statement in policy["PolicyDocument"]["Statement"]
            ]
            logs = [s for s in statements if any(str(a).startswith("logs:") for a in _list(s["Action"]))]
            assert logs, stack
            for statement in logs:
                assert _list(statement["Resource"]) == [{"Fn::GetAtt": [group_id, "Arn"]}], stack
            assert "/aws/lambda/*" not in json.dumps(template), stack


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
