"""`check_environment`: a deployed environment's health, every name from the wiring plan."""

from __future__ import annotations

import json
from typing import Any

from operator_tools.health import check_environment
from tests.unit.operator_tools.conftest import CLOSED, IMAGE_DENOISE, ROUTE_PLANNER, Deployed


def _failed(deployed: Deployed) -> dict[str, str]:
    report = check_environment(deployed.plan, deployed.clients)
    return {check.name: check.detail for check in report.failures}


def test_a_freshly_deployed_environment_is_healthy(deployed: Deployed) -> None:
    report = check_environment(deployed.plan, deployed.clients)
    assert report.ok, report.failures
    names = {check.name for check in report.checks}
    for challenge in (ROUTE_PLANNER, IMAGE_DENOISE, CLOSED):
        assert {f"config {challenge}", f"subscription {challenge}", f"dlq {challenge}"} <= names
    # A closed challenge's scorer may be deregistered: only active challenges' task definitions are checked
    assert f"task definition {ROUTE_PLANNER}" in names
    assert f"task definition {CLOSED}" not in names
    assert {"credentials", "topic", "dlq fan-out", "dlq completion", "alarms"} <= names


def test_a_missing_challenge_config_is_named(deployed: Deployed) -> None:
    deployed.client("ssm").delete_parameter(Name=deployed.plan.challenge_config_parameter(IMAGE_DENOISE))
    failed = _failed(deployed)
    assert list(failed) == [f"config {IMAGE_DENOISE}"]
    assert "parameter_missing" in failed[f"config {IMAGE_DENOISE}"]


def test_an_invalid_challenge_config_is_named_with_its_fields(deployed: Deployed) -> None:
    name = deployed.plan.challenge_config_parameter(ROUTE_PLANNER)
    document = json.loads(deployed.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
    del document["ecsTaskDefinition"]
    deployed.client("ssm").put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)
    failed = _failed(deployed)
    assert list(failed) == [f"config {ROUTE_PLANNER}"]
    assert "invalid_fields" in failed[f"config {ROUTE_PLANNER}"]
    assert "ecsTaskDefinition" in failed[f"config {ROUTE_PLANNER}"]


def test_a_config_naming_another_task_definition_is_drift(deployed: Deployed) -> None:
    name = deployed.plan.challenge_config_parameter(ROUTE_PLANNER)
    document = json.loads(deployed.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
    document["ecsTaskDefinition"] = document["ecsTaskDefinition"].replace(":3", ":2")
    deployed.client("ssm").put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)
    assert "names task definition" in _failed(deployed)[f"config {ROUTE_PLANNER}"]


def test_a_deregistered_task_definition_is_not_active(deployed: Deployed) -> None:
    arn = deployed.plan.config.challenge(IMAGE_DENOISE).task_definition_arn
    deployed.client("ecs").deregister_task_definition(taskDefinition=arn)
    failed = _failed(deployed)
    assert list(failed) == [f"task definition {IMAGE_DENOISE}"]
    assert "INACTIVE" in failed[f"task definition {IMAGE_DENOISE}"]


def test_a_missing_subscription_is_named(deployed: Deployed) -> None:
    subscription = deployed.resources.challenges[ROUTE_PLANNER].subscription_arn
    deployed.client("sns").unsubscribe(SubscriptionArn=subscription)
    failed = _failed(deployed)
    assert list(failed) == [f"subscription {ROUTE_PLANNER}"]
    assert "no subscription" in failed[f"subscription {ROUTE_PLANNER}"]


def test_a_subscription_with_another_filter_policy_is_named(deployed: Deployed) -> None:
    subscription = deployed.resources.challenges[ROUTE_PLANNER].subscription_arn
    deployed.client("sns").set_subscription_attributes(
        SubscriptionArn=subscription,
        AttributeName="FilterPolicy",
        AttributeValue=json.dumps({"challengeId": [IMAGE_DENOISE]}),
    )
    failed = _failed(deployed)
    assert list(failed) == [f"subscription {ROUTE_PLANNER}"]
    assert "filter policy" in failed[f"subscription {ROUTE_PLANNER}"]


def test_a_dlq_with_a_message_is_named(deployed: Deployed) -> None:
    deployed.client("sqs").send_message(
        QueueUrl=deployed.resources.challenges[IMAGE_DENOISE].dlq_url, MessageBody='{"submissionId": "x"}'
    )
    deployed.client("sqs").send_message(QueueUrl=deployed.resources.completion_dlq_url, MessageBody="{}")
    failed = _failed(deployed)
    assert set(failed) == {f"dlq {IMAGE_DENOISE}", "dlq completion"}
    assert "1 message" in failed[f"dlq {IMAGE_DENOISE}"]


def _alarm(deployed: Deployed, name: str, description: str, state: str) -> None:
    cloudwatch: Any = deployed.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=description,
        Namespace="MMProcessor",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_only_this_environments_alarms_in_alarm_fail_the_check(deployed: Deployed) -> None:
    _alarm(deployed, "other-env-errors", "[mm-processor staging] router function errors", "ALARM")
    _alarm(deployed, "quiet", "[mm-processor example] completion function errors", "OK")
    assert _failed(deployed) == {}
    _alarm(deployed, "example-router-errors", "[mm-processor example] router function errors", "ALARM")
    failed = _failed(deployed)
    assert list(failed) == ["alarms"]
    assert "example-router-errors" in failed["alarms"]
    assert "other-env-errors" not in failed["alarms"]


class _OtherAccount:
    """The deployed clients, except that STS says the caller is in another account."""

    def __init__(self, deployed: Deployed) -> None:
        self.deployed = deployed

    def client(self, service: str) -> Any:
        if service == "sts":
            return type("Sts", (), {"get_caller_identity": staticmethod(lambda: {"Account": "210987654321"})})()
        return self.deployed.client(service)


def test_credentials_of_another_account_stop_the_checks(deployed: Deployed) -> None:
    report = check_environment(deployed.plan, _OtherAccount(deployed))
    assert not report.ok
    assert not report.credentials_ok
    assert [check.name for check in report.checks] == ["credentials"]
    assert "210987654321" in report.checks[0].detail
