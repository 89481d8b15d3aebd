"""The example environment's templates deployed into moto's CloudFormation (docs/decisions/057).

Every resource of every template must be created, by CloudFormation or by a service-API adapter from the
template's own properties (tests/infrastructure/rehearsal.py); then a routed message must reach exactly
the queue of its challenge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from tests.infrastructure import rehearsal
from tests.synth import Synthesized, synth_example

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


@dataclass(frozen=True)
class Rehearsed:
    synthesized: Synthesized
    deployments: dict[str, rehearsal.StackDeployment]
    region: str


@pytest.fixture(scope="module")
def rehearsed() -> Iterator[Rehearsed]:
    from moto import mock_aws

    synthesized = synth_example()
    config = synthesized.config
    with mock_aws():
        rehearsal.bootstrap_account(config.region)
        rehearsal.publish_assets(synthesized.assembly_dir, config.region)
        deployments = {
            name: rehearsal.deploy_stack(
                name, synthesized.templates[name], region=config.region, account=config.account
            )
            for name in rehearsal.deployment_order(synthesized.templates)
        }
        yield Rehearsed(synthesized=synthesized, deployments=deployments, region=config.region)


def test_every_resource_of_every_template_is_created(rehearsed: Rehearsed) -> None:
    for name, template in rehearsed.synthesized.templates.items():
        deployment = rehearsed.deployments[name]
        assert rehearsal.unaccounted(template, deployment) == {}, f"{name}: created by neither CloudFormation nor API"
        # Every logical id in exactly one set: nothing is created twice.
        ways = [set(deployment.by_cloudformation), set(deployment.by_adapter), set(deployment.validated_only)]
        assert sum(len(way) for way in ways) == len(template["Resources"]), name
        assert set().union(*ways) == set(template["Resources"]), name
    # The only resources moto cannot hold at all are Kafka event source mappings (checked, not created).
    for name, deployment in rehearsed.deployments.items():
        for logical_id, kind in deployment.validated_only.items():
            properties = rehearsed.synthesized.templates[name]["Resources"][logical_id]["Properties"]
            assert kind == "AWS::Lambda::EventSourceMapping", f"{name}/{logical_id}"
            assert str(properties["EventSourceArn"]).startswith("arn:aws:kafka:"), f"{name}/{logical_id}"


def _queue_urls(region: str) -> list[str]:
    return boto3.client("sqs", region_name=region).list_queues().get("QueueUrls", [])


def _drain_counts(region: str) -> dict[str, int]:
    """Messages now in each queue (by name), then emptied for the next publish."""
    sqs = boto3.client("sqs", region_name=region)
    counts: dict[str, int] = {}
    for url in _queue_urls(region):
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        counts[url.rsplit("/", 1)[-1]] = len(received)
        if received:
            sqs.purge_queue(QueueUrl=url)
    return counts


def _publish(region: str, topic_arn: str, challenge_id: str) -> None:
    from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE

    boto3.client("sns", region_name=region).publish(
        TopicArn=topic_arn,
        Message=json.dumps({"challengeId": challenge_id}),
        MessageAttributes={CHALLENGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": challenge_id}},
    )


def test_a_routed_message_reaches_exactly_its_challenge_queue(rehearsed: Rehearsed) -> None:
    from infrastructure.wiring import ResourceNames

    config = rehearsed.synthesized.config
    names = ResourceNames(config.environment)
    (topic_arn,) = {
        d.outputs["SubmissionsTopicArn"] for d in rehearsed.deployments.values() if "SubmissionsTopicArn" in d.outputs
    }
    # The fixture's moto account is still open: these calls reach the rehearsed resources.
    assert sum(_drain_counts(rehearsed.region).values()) == 0
    for challenge in config.challenges:
        _publish(rehearsed.region, topic_arn, challenge.challenge_id)
        delivered = {queue: count for queue, count in _drain_counts(rehearsed.region).items() if count}
        assert delivered == {names.challenge_queue(challenge.challenge_id): 1}, challenge.challenge_id

    _publish(rehearsed.region, topic_arn, "00000000-0000-4000-8000-000000000000")
    assert {queue: count for queue, count in _drain_counts(rehearsed.region).items() if count} == {}


def test_subscriptions_carry_their_templates_delivery_settings(rehearsed: Rehearsed) -> None:
    from infrastructure.wiring import ResourceNames

    fanout_dlq = ResourceNames(rehearsed.synthesized.config.environment).fanout_dlq
    sns = boto3.client("sns", region_name=rehearsed.region)
    for name, deployment in rehearsed.deployments.items():
        resources = rehearsed.synthesized.templates[name]["Resources"]
        for logical_id, created in deployment.by_adapter.items():
            if resources[logical_id]["Type"] != "AWS::SNS::Subscription":
                continue
            attributes = sns.get_subscription_attributes(SubscriptionArn=created.physical_id)["Attributes"]
            properties = resources[logical_id]["Properties"]
            assert json.loads(attributes["FilterPolicy"]) == properties["FilterPolicy"], logical_id
            assert attributes["RawMessageDelivery"] == str(properties.get("RawMessageDelivery", False)).lower()
            assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(":" + fanout_dlq), logical_id


def test_a_resource_moto_skips_is_reported_not_counted_as_created() -> None:
    """moto's CloudFormation reaches CREATE_COMPLETE while skipping types it does not model."""
    from moto import mock_aws

    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Link": {"Type": "AWS::Oam::Link", "Properties": {"ResourceTypes": ["AWS::Logs::LogGroup"]}},
        }
    }
    with mock_aws(), pytest.warns(UserWarning, match="not supported by moto"):
        deployment = rehearsal.deploy_stack("mm-unit-skip", template, region="us-east-1", account="123456789012")
    assert deployment.by_cloudformation == {"Queue": "AWS::SQS::Queue"}
    assert rehearsal.unaccounted(template, deployment) == {"Link": "AWS::Oam::Link"}
