"""Decision 121: an EventBridge rule on Parameter Store changes of the environment's caps and challenge configs
invokes the sweeper (which then runs only the config versions pass), so a deploy or console edit applies within
seconds; one rule per environment, not per challenge.
"""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.wiring import WiringPlan
from mm_contracts.names import (
    challenge_config_parameter_name,
    scorer_token_parameter_name,
    static_token_parameter_name,
)
from sweeper_lambda.parameter_change import PARAMETER_STORE_CHANGE, SSM_EVENT_SOURCE
from tests.infrastructure.templates import all_resources, functions, resources
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def parameter_change_rules(synthesized: Synthesized) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, lid, rule)
        for stack, lid, rule in all_resources(synthesized, "AWS::Events::Rule")
        if SSM_EVENT_SOURCE in rule["Properties"].get("EventPattern", {}).get("source", [])
    ]


def name_matches(name: str, patterns: list[Any]) -> bool:
    """EventBridge's exact and prefix matching of a string field (the two forms the rule uses)."""
    return any(name == p if isinstance(p, str) else name.startswith(p["prefix"]) for p in patterns)


def test_one_rule_per_environment_sends_its_parameter_changes_to_the_sweeper(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    # Given the synthesized example environment
    ((stack, rule_lid, rule),) = parameter_change_rules(synthesized)
    assert stack == "mm-example-core"
    pattern = rule["Properties"]["EventPattern"]
    # Then it matches Parameter Store changes (the shape the sweeper's handler recognises)
    assert pattern["source"] == [SSM_EVENT_SOURCE]
    assert pattern["detail-type"] == [PARAMETER_STORE_CHANGE]
    # of the caps and of any challenge config of this environment, all under its SSM prefix
    names = pattern["detail"]["name"]
    ssm_prefix = plan.config.ssm_prefix
    assert names == [plan.capacity_parameter(), {"prefix": f"{ssm_prefix}/challenges/"}]
    assert name_matches(plan.capacity_parameter(), names)
    for challenge in plan.config.challenges:
        assert name_matches(challenge_config_parameter_name(challenge.challenge_id, ssm_prefix), names)
    # and not the token parameters the refresher rewrites under the same prefix, nor another environment's
    assert not name_matches(scorer_token_parameter_name(ssm_prefix), names)
    assert not name_matches(static_token_parameter_name(ssm_prefix), names)
    assert not name_matches(f"{ssm_prefix}-other/challenges/x/config", names)
    # And its one target is the sweeper, which only this rule (and the schedule) may invoke from EventBridge
    sweeper_lid = functions(synthesized)[plan.names.sweeper_function][1]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [sweeper_lid, "Arn"]}
    core = synthesized.templates[stack]
    permissions = [
        p["Properties"]
        for _, p in resources(core, "AWS::Lambda::Permission")
        if p["Properties"].get("SourceArn") == {"Fn::GetAtt": [rule_lid, "Arn"]}
    ]
    assert [(p["Principal"], p["FunctionName"]) for p in permissions] == [
        ("events.amazonaws.com", {"Fn::GetAtt": [sweeper_lid, "Arn"]})
    ]
