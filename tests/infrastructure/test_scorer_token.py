"""The scorer-token refresher (decision 091) in the synthesized templates and the config: only with
`token.scorerTokenParameter` (the example is unchanged), scheduled without retries, its role scoped to the one
parameter and the Auth0 credentials, an alarm that treats silence as breaching; a Topcoder ecs-runner challenge
behind the Auth0 proxy without the parameter fails the synth by name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.config import EnvironmentConfigError, load_environment, parse_environment
from infrastructure.wiring import SCORER_TOKEN_SLACK_SECONDS, WiringPlan
from mm_contracts.names import scorer_token_parameter_name
from tests.synth import (
    AUTH0_CREDENTIALS_SECRET_ARN,
    Synthesized,
    scorer_token_variant_config,
    synth_example,
    synth_scorer_token_variant,
)

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

CORE = "mm-example-core"
FUNCTION = "mm-example-scorer-token-refresher"
PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/mm-processor/example/auth0/scorer-token"


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_of(template: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    ((lid, fn),) = [
        (lid, f)
        for lid, f in resources(template, "AWS::Lambda::Function").items()
        if f["Properties"].get("FunctionName") == name
    ]
    return lid, fn["Properties"]


def role_statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"][function["Role"]["Fn::GetAtt"][0]]
    return [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def raw_example(**token: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(load_environment("example").model_dump_json(by_alias=True, exclude_none=True))
    raw["token"] = token
    return raw


AUTH0 = {
    "source": "auth0_proxy",
    "auth0ProxyUrl": "https://auth0proxy.example.com/token",
    "auth0CredentialsSecretArn": AUTH0_CREDENTIALS_SECRET_ARN,
}


@pytest.fixture(scope="module")
def variant() -> Synthesized:
    return synth_scorer_token_variant()  # cdk-nag on: an unacknowledged finding fails the synth


# ------------------------------------------------------------------ config
def test_the_parameter_is_refused_without_the_auth0_proxy() -> None:
    with pytest.raises(EnvironmentConfigError, match=r"token\.scorerTokenParameter needs token\.source auth0_proxy"):
        parse_environment(raw_example(source="static_parameter", scorerTokenParameter=True))


@pytest.mark.parametrize("minutes", [4, 721])
def test_the_refresh_interval_is_bounded(minutes: int) -> None:
    with pytest.raises(EnvironmentConfigError, match="scorerTokenRefreshMinutes"):
        parse_environment(raw_example(**AUTH0, scorerTokenParameter=True, scorerTokenRefreshMinutes=minutes))


def test_an_ecs_runner_challenge_behind_the_auth0_proxy_needs_the_parameter() -> None:
    raw = raw_example(**AUTH0)
    runner = raw["challenges"][0]
    runner["scorerEnvironment"] = "topcoder_ecs_runner"
    # Refused when the config loads (so the synth, the local pipeline and the tools all stop), by name.
    with pytest.raises(
        EnvironmentConfigError, match=rf"scorerTokenParameter must be true: challenges {runner['challengeId']} "
    ):
        parse_environment(raw)


def test_the_parameter_a_task_definition_references_follows_the_token_source() -> None:
    static = WiringPlan(load_environment("example"))
    assert static.scorer_token_parameter() == "/mm-processor/example/auth0/token"  # the static token itself
    assert WiringPlan(parse_environment(raw_example(**AUTH0))).scorer_token_parameter() is None
    refreshed = WiringPlan(scorer_token_variant_config())
    assert refreshed.scorer_token_parameter() == scorer_token_parameter_name("/mm-processor/example")
    with pytest.raises(EnvironmentConfigError, match=r"needs token\.scorerTokenParameter"):
        static.scorer_token_refresher_settings()


def test_the_margin_covers_the_longest_runner_phase_one_interval_and_a_slack() -> None:
    raw = json.loads(scorer_token_variant_config().model_dump_json(by_alias=True, exclude_none=True))
    raw["token"]["scorerTokenRefreshMinutes"] = 20
    runner = raw["challenges"][0]
    runner["timeoutSeconds"] = 3600
    runner["phases"] = [{"phase": "PROVISIONAL", "timeoutSeconds": 7200}]
    raw["challenges"][1]["timeoutSeconds"] = 80_000  # not a runner: its tasks do not read the token
    plan = WiringPlan(parse_environment(raw))
    assert plan.scorer_token_refresh_margin_seconds() == 7200 + 20 * 60 + SCORER_TOKEN_SLACK_SECONDS
    assert plan.scorer_token_refresher_settings().refresh_margin_seconds == 7200 + 1200 + SCORER_TOKEN_SLACK_SECONDS


# ------------------------------------------------------------------ templates
def test_the_example_has_no_refresher() -> None:
    for template in synth_example().templates.values():
        names = {f["Properties"].get("FunctionName") for f in resources(template, "AWS::Lambda::Function").values()}
        assert FUNCTION not in names
        assert not [r for r in resources(template, "AWS::Events::Rule").values() if "scorer-token" in str(r)]
        assert "ScorerTokenParameterArn" not in template.get("Outputs", {})


def test_the_refresher_runs_on_its_schedule_without_retries(variant: Synthesized) -> None:
    core = variant.templates[CORE]
    plan = WiringPlan(variant.config)
    lid, fn = function_of(core, FUNCTION)
    assert fn["Handler"] == "scorer_token_refresher.handler.handler"
    # Its settings model's names, and the ADOT wrapper: this variant traces with OpenTelemetry (decision 112).
    expected = {**plan.scorer_token_refresher_settings().to_env(), **variant.config.tracing.exec_environment}
    assert fn["Environment"]["Variables"] == expected
    assert fn["ReservedConcurrentExecutions"] == 1  # never two writers
    assert "VpcConfig" in fn  # like every function (network.functionsInVpc); the proxy needs a NAT
    (invoke,) = [
        c["Properties"]
        for c in resources(core, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": lid}
    ]
    assert invoke["MaximumRetryAttempts"] == 0  # the next scheduled run is the retry
    (rule,) = [
        r["Properties"]
        for r in resources(core, "AWS::Events::Rule").values()
        if r["Properties"].get("Name") == "mm-example-scorer-token-refresh"
    ]
    assert rule["ScheduleExpression"] == "rate(30 minutes)"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [lid, "Arn"]}
    assert core["Outputs"]["ScorerTokenParameterArn"]["Value"] == PARAMETER_ARN


def test_the_role_reaches_the_one_parameter_and_the_auth0_credentials_only(variant: Synthesized) -> None:
    core = variant.templates[CORE]
    _, fn = function_of(core, FUNCTION)
    granted = {
        (action, resource)
        for s in role_statements(core, fn)
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
        if not action.startswith(("ec2:", "xray:", "logs:"))
    }
    assert granted == {
        ("ssm:GetParameter", PARAMETER_ARN),
        ("ssm:PutParameter", PARAMETER_ARN),
        ("secretsmanager:GetSecretValue", AUTH0_CREDENTIALS_SECRET_ARN),
    }
    # no SecureString resource: CloudFormation cannot create one; the function does on its first run
    assert not resources(core, "AWS::SSM::Parameter") or all(
        "scorer-token" not in json.dumps(p) for p in resources(core, "AWS::SSM::Parameter").values()
    )


def test_the_alarm_fires_within_the_margin_and_when_the_refresher_is_silent(variant: Synthesized) -> None:
    core = variant.templates[CORE]
    margin = WiringPlan(variant.config).scorer_token_refresh_margin_seconds()
    (alarm,) = [
        a["Properties"]
        for a in resources(core, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ScorerTokenSecondsToExpiry"
    ]
    assert alarm["Namespace"] == "MMProcessor"
    assert sorted((d["Name"], d["Value"]) for d in alarm["Dimensions"]) == [
        ("Environment", "example"),
        ("service", "scorer-token-refresher"),
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == (
        "LessThanOrEqualToThreshold",
        margin,
        "Minimum",
    )
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (2 * 30 * 60, 1)  # two runs per period
    assert alarm["TreatMissingData"] == "breaching"  # a failing or unscheduled refresher must not look healthy
    assert alarm["AlarmActions"]
    described = {
        a["Properties"].get("AlarmDescription", "") for a in resources(core, "AWS::CloudWatch::Alarm").values()
    }
    assert any("scorer token refresher function errors" in d for d in described)
