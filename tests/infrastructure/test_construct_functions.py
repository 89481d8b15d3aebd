"""What every function gets from `mm_constructs/functions.py`: runtime, tracing, logs, VPC, its own role, an
environment that is exactly its settings model, and no wildcard action.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import json

import pytest

from infrastructure.wiring import ResourceRefs, WiringPlan
from mm_contracts.settings import (
    ChallengeProcessorSettings,
    CompletionSettings,
    EnvSettings,
    RouterSettings,
    TimeoutSweeperSettings,
)
from tests.infrastructure.templates import as_list, by_name, functions, resources
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_no_statement_allows_a_wildcard_action(synthesized: Synthesized) -> None:
    for stack, template in synthesized.templates.items():
        documents = [(lid, p["Properties"]["PolicyDocument"]) for lid, p in resources(template, "AWS::IAM::Policy")]
        documents += [
            (lid, inline["PolicyDocument"])
            for lid, role in resources(template, "AWS::IAM::Role")
            for inline in role["Properties"].get("Policies", [])
        ]
        for lid, document in documents:
            for statement in document["Statement"]:
                for action in as_list(statement["Action"]):
                    assert action != "*", (stack, lid)
                    assert not action.endswith(":*"), (stack, lid, action)


SETTINGS_MODELS: dict[str, type[EnvSettings]] = {
    "mm-example-router": RouterSettings,
    "mm-example-completion": CompletionSettings,
    "mm-example-timeout-sweeper": TimeoutSweeperSettings,
}


def test_each_function_environment_is_exactly_its_settings_model(synthesized: Synthesized, plan: WiringPlan) -> None:
    fns = functions(synthesized)
    models = dict(SETTINGS_MODELS)
    for challenge in plan.config.challenges:
        models[plan.names.challenge_function(challenge.challenge_id)] = ChallengeProcessorSettings
    refs = ResourceRefs("arn:aws:sns:us-east-1:123456789012:ref", "ref", "ref", "https://ref")
    planned: dict[str, EnvSettings] = {
        "mm-example-router": plan.router_settings(refs),
        "mm-example-completion": plan.completion_settings(refs),
        "mm-example-timeout-sweeper": plan.sweeper_settings(refs),
    }
    for challenge in plan.config.challenges:
        planned[plan.names.challenge_function(challenge.challenge_id)] = plan.challenge_settings(challenge, refs)
    for name, model in models.items():
        environment = fns[name][2]["Properties"]["Environment"]["Variables"]
        settings = planned[name]
        # Exactly the names the settings model emits for this environment ...
        assert set(environment) == set(settings.to_env()), name
        assert model.required_env_var_names() <= set(environment), name
        # ... and every name the model reads but the stack leaves unset is optional and unset in the plan.
        for unset in model.env_var_names() - set(environment):
            assert not model.model_fields[unset.lower()].is_required(), (name, unset)
            assert getattr(settings, unset.lower()) is None, (name, unset)
        # Plain (non-reference) values are the plan's values, not hand-written ones.
        for key, value in settings.to_env().items():
            if isinstance(environment[key], str) and value != "ref" and not value.startswith(("arn:", "https://ref")):
                assert environment[key] == value, (name, key)
    # and the names are exactly what the plan's settings model emits (nothing hand-written)
    challenge = plan.config.challenges[0]
    env = fns[plan.names.challenge_function(challenge.challenge_id)][2]["Properties"]["Environment"]["Variables"]
    assert env["CHALLENGE_ID"] == challenge.challenge_id
    assert env["CHALLENGE_CONFIG_PARAMETER"] == plan.challenge_config_parameter(challenge.challenge_id)
    assert env["POWERTOOLS_SERVICE_NAME"] == "challenge-processor"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "MMProcessor"


def test_every_function_is_python312_arm64_traced_logged_in_vpc_with_own_role_and_group(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    """Own role per function; own security group per core function, one per shard for its challenge processors."""
    pipeline = {n: f for n, f in functions(synthesized).items() if n.startswith("mm-example-")}
    assert len(pipeline) == 3 + 3
    roles, groups = set(), set()
    log_groups = by_name(synthesized, "AWS::Logs::LogGroup", "LogGroupName")
    for name, (stack, _, fn) in pipeline.items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 1
        assert log_groups[f"/aws/lambda/{name}"][2]["Properties"]["RetentionInDays"] == 30
        assert sorted(props["VpcConfig"]["SubnetIds"]) == ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
        roles.add(json.dumps(props["Role"]))
        groups.add((stack, json.dumps(props["VpcConfig"]["SecurityGroupIds"])))
    assert len(roles) == len(pipeline)
    assert len(groups) == 3 + len(plan.challenge_shards())
