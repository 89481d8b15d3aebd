"""The fan-out construct (`mm_constructs/fanout.py`): per-challenge filtered subscriptions, queues and
DLQs, the key, TLS.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.wiring import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR, WiringPlan
from tests.infrastructure.templates import all_resources, by_name, functions, resources
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_each_challenge_has_a_filtered_raw_subscription_and_a_dlq(synthesized: Synthesized, plan: WiringPlan) -> None:
    queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
    subscriptions = [r for _, _, r in all_resources(synthesized, "AWS::SNS::Subscription")]
    for challenge in plan.config.challenges:
        queue_plan = plan.queue_plan(challenge)
        _stack, queue_id, queue = queues[queue_plan.queue_name]
        _, dlq_id, dlq = queues[queue_plan.dlq_name]
        # the queue redrives to its own DLQ after maxReceiveCount receives
        redrive = queue["Properties"]["RedrivePolicy"]
        assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 3}
        assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
        assert queue["Properties"]["MessageRetentionPeriod"] == 7 * 86_400
        # exactly one subscription delivers to it, raw, with the plan's filter policy
        mine = [s for s in subscriptions if s["Properties"]["Endpoint"] == {"Fn::GetAtt": [queue_id, "Arn"]}]
        assert len(mine) == 1
        assert mine[0]["Properties"]["FilterPolicy"] == queue_plan.filter_policy
        assert mine[0]["Properties"]["RawMessageDelivery"] is True
        assert mine[0]["Properties"]["Protocol"] == "sqs"
        assert "RedrivePolicy" in mine[0]["Properties"]  # undeliverable -> fan-out DLQ
    assert MAX_RECEIVE_COUNT == 3


def test_queue_visibility_is_at_least_six_times_the_processor_timeout(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
    fns = functions(synthesized)
    for challenge in plan.config.challenges:
        timeout = fns[plan.names.challenge_function(challenge.challenge_id)][2]["Properties"]["Timeout"]
        visibility = queues[plan.names.challenge_queue(challenge.challenge_id)][2]["Properties"]["VisibilityTimeout"]
        assert visibility >= VISIBILITY_TIMEOUT_FACTOR * timeout


def test_one_customer_managed_rotating_key_encrypts_topic_and_every_queue(synthesized: Synthesized) -> None:
    core = synthesized.templates["mm-example-core"]
    keys = list(resources(core, "AWS::KMS::Key"))
    assert len(keys) == 1
    key_id, key = keys[0]
    assert key["Properties"]["EnableKeyRotation"] is True
    for stack, _, queue in all_resources(synthesized, "AWS::SQS::Queue"):
        key_ref = queue["Properties"]["KmsMasterKeyId"]
        assert key_id in json.dumps(key_ref), stack
    for _, topic in resources(core, "AWS::SNS::Topic"):
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_topics_and_queues_deny_requests_without_tls(synthesized: Synthesized) -> None:
    def denies_insecure(statements: list[dict[str, Any]]) -> bool:
        return any(
            s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in statements
        )

    queue_ids: set[str] = set()
    for _, _, policy in all_resources(synthesized, "AWS::SQS::QueuePolicy"):
        if denies_insecure(policy["Properties"]["PolicyDocument"]["Statement"]):
            for queue in policy["Properties"]["Queues"]:
                queue_ids.add(json.dumps(queue))
    for stack, lid, _ in all_resources(synthesized, "AWS::SQS::Queue"):
        assert any(lid in q for q in queue_ids), (stack, lid)
    topic_policies = [p for _, _, p in all_resources(synthesized, "AWS::SNS::TopicPolicy")]
    assert len(topic_policies) == 2
    assert all(denies_insecure(p["Properties"]["PolicyDocument"]["Statement"]) for p in topic_policies)
