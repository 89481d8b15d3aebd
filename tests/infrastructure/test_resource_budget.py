"""Resources per challenge (at most 12, decision 081) and the guarantees the removed resources carried.

The cost of one challenge is measured, not counted by hand: the example environment, and the same with one more
challenge pinned to an existing shard (so no shard stack appears or disappears); the difference in resources over
every template is what one challenge costs. The guarantees are asserted on the synthesized templates: one alarm
covers the challenge's DLQ, errors and throttles; both queues refuse non-TLS requests; SNS may use the key and send
to the queue only from the submissions topic.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from infrastructure.config import CONFIG_DIR, load_environment, parse_environment
from infrastructure.wiring import WiringPlan
from tests.synth import Synthesized, synth

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]
MAX_RESOURCES_PER_CHALLENGE = 12
EXTRA_CHALLENGE_ID = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f6ff"


@functools.cache
def synth_example() -> Synthesized:
    """The example environment without cdk-nag (counted here; test_construct_nag.py holds the nag findings)."""
    return synth(load_environment("example"), label="budget-example", checks=False)


@functools.cache
def example_plus_one() -> Synthesized:
    """The example environment with one more challenge, pinned to the shard of the first one."""
    raw: dict[str, Any] = json.loads((CONFIG_DIR / "example.json").read_text())
    example = synth_example().config
    first = raw["challenges"][0]
    shard = next(
        s
        for s, members in example.shard_assignment().items()
        if first["challengeId"] in {c.challenge_id for c in members}
    )
    raw["challenges"].append({**first, "challengeId": EXTRA_CHALLENGE_ID, "name": "Budget MM", "shard": shard})
    return synth(parse_environment(raw, source="<example plus one challenge>"), label="budget", checks=False)


def resource_count(synthesized: Synthesized) -> int:
    return sum(len(template["Resources"]) for template in synthesized.templates.values())


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == type_}


def stack_of(synthesized: Synthesized, logical_id_part: str) -> dict[str, Any]:
    (template,) = [t for t in synthesized.templates.values() if any(logical_id_part in lid for lid in t["Resources"])]
    return template


def challenge_part(challenge_id: str) -> str:
    return f"Challenge{challenge_id.replace('-', '')}"


def test_one_challenge_costs_at_most_twelve_resources() -> None:
    per_challenge = resource_count(example_plus_one()) - resource_count(synth_example())
    assert 0 < per_challenge <= MAX_RESOURCES_PER_CHALLENGE, f"one challenge costs {per_challenge} resources"


def test_one_alarm_per_challenge_covers_its_dlq_errors_and_throttles() -> None:
    synthesized = synth_example()
    plan = WiringPlan(synthesized.config)
    for challenge in synthesized.config.challenges:
        part = challenge_part(challenge.challenge_id)
        template = stack_of(synthesized, part)
        mine = {lid: r for lid, r in resources_of(template, "AWS::CloudWatch::Alarm").items() if part in lid}
        assert len(mine) == 1, challenge.challenge_id
        (alarm,) = (r["Properties"] for r in mine.values())
        (function_id,) = [lid for lid in resources_of(template, "AWS::Lambda::Function") if lid.startswith(part)]
        queues = resources_of(template, "AWS::SQS::Queue")
        (dlq_id,) = [
            lid
            for lid, q in queues.items()
            if q["Properties"]["QueueName"] == plan.names.challenge_dlq(challenge.challenge_id)
        ]
        stats = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
        assert stats["dlq"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert dlq_id in json.dumps(stats["dlq"]["Metric"]["Dimensions"])
        for name in ("errors", "throttles"):
            assert stats[name]["Metric"]["MetricName"] == name.title()
            assert stats[name]["Metric"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        (expression,) = [q for q in alarm["Metrics"] if "Expression" in q]
        assert expression["ReturnData"] is not False
        assert expression["Expression"] == "MAX([FILL(dlq, 0), FILL(errors, 0), FILL(throttles, 0)])"
        # any one message in the DLQ, any error, any throttle in 5 minutes: notify the alarm topic
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
            1,
        )
        assert alarm["TreatMissingData"] == "notBreaching"
        assert "AlarmTopic" in json.dumps(alarm["AlarmActions"])
        description = alarm["AlarmDescription"]
        assert challenge.challenge_id in description
        assert description.index("DLQ") < description.index("Errors") < description.index("Throttles")


def test_both_queues_of_a_challenge_deny_requests_without_tls() -> None:
    synthesized = synth_example()
    for challenge in synthesized.config.challenges:
        part = challenge_part(challenge.challenge_id)
        template = stack_of(synthesized, part)
        queue_ids = [lid for lid in resources_of(template, "AWS::SQS::Queue") if lid.startswith(part)]
        assert len(queue_ids) == 2
        policies = resources_of(template, "AWS::SQS::QueuePolicy").values()
        for queue_id in queue_ids:
            statements = [
                s
                for p in policies
                if {"Ref": queue_id} in p["Properties"]["Queues"]
                for s in p["Properties"]["PolicyDocument"]["Statement"]
            ]
            assert any(
                s["Effect"] == "Deny"
                and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                and s["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
                for s in statements
            ), queue_id


def test_sns_may_send_to_a_challenge_queue_only_from_the_submissions_topic() -> None:
    synthesized = synth_example()
    core = synthesized.templates["mm-example-core"]
    (topic_id,) = [
        lid
        for lid, t in resources_of(core, "AWS::SNS::Topic").items()
        if t["Properties"]["TopicName"] == WiringPlan(synthesized.config).names.submissions_topic
    ]
    for challenge in synthesized.config.challenges:
        part = challenge_part(challenge.challenge_id)
        template = stack_of(synthesized, part)
        statements = [
            s
            for lid, p in resources_of(template, "AWS::SQS::QueuePolicy").items()
            if lid.startswith(part)
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        (allow,) = [s for s in statements if s["Effect"] == "Allow"]
        assert allow["Principal"] == {"Service": "sns.amazonaws.com"}
        assert allow["Action"] == "sqs:SendMessage"
        (source,) = allow["Condition"]["ArnEquals"].values()
        assert topic_id in json.dumps(source)  # the core's topic, imported


def test_aws_services_may_use_the_key_only_from_their_sources() -> None:
    synthesized = synth_example()
    config = synthesized.config
    core = synthesized.templates["mm-example-core"]
    (key,) = resources_of(core, "AWS::KMS::Key").values()
    topic_name = WiringPlan(config).names.submissions_topic
    topic_arn = f"arn:aws:sns:{config.region}:{config.account}:{topic_name}"
    assert topic_name in {t["Properties"]["TopicName"] for t in resources_of(core, "AWS::SNS::Topic").values()}
    by_service: dict[str, list[dict[str, Any]]] = {}
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        service = statement["Principal"].get("Service")
        if service is not None:
            by_service.setdefault(service, []).append(statement)
    assert set(by_service) == {"sns.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com"}
    # SNS (delivering into the encrypted queues): only from the submissions topic, no unconditioned statement
    assert [s.get("Condition") for s in by_service["sns.amazonaws.com"]] == [
        {"ArnEquals": {"aws:SourceArn": topic_arn}}
    ]
    # CloudWatch (notifying the encrypted alarm topic): only this account's alarms in this region
    (cloudwatch,) = by_service["cloudwatch.amazonaws.com"]
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": config.account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:*"},
    }
    (events,) = by_service["events.amazonaws.com"]
    assert events["Condition"] == {"StringEquals": {"aws:SourceAccount": config.account}}


def test_the_key_is_retained_where_data_is_kept_and_destroyed_in_a_developer_environment() -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

    from infrastructure.mm_constructs.fanout import FanOut

    for name, expected in (("example", ("Retain", 30)), ("dev", ("Delete", 7))):
        config = load_environment(name)
        stack = Stack(App(), f"key-{name}")
        FanOut(stack, "FanOut", plan=WiringPlan(config))
        (key,) = Template.from_stack(stack).find_resources("AWS::KMS::Key").values()
        assert config.retain_data is (name == "example")
        assert (key["DeletionPolicy"], key["Properties"].get("PendingWindowInDays")) == expected, name
