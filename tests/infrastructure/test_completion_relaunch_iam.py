"""The completion function may relaunch a transient start failure into the challenge queues (decision 072):
what moto cannot show (IAM), asserted on the synthesized template."""

from __future__ import annotations

import pytest

from infrastructure.wiring import ResourceRefs, WiringPlan
from tests.infrastructure.templates import as_list, functions, role_statements, statements_for
from tests.synth import Synthesized, synth_example

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


@pytest.fixture(scope="module")
def synthesized() -> Synthesized:
    return synth_example()


def test_completion_may_send_to_the_challenge_queues_only_with_the_pipeline_key(synthesized: Synthesized) -> None:
    plan = WiringPlan(synthesized.config)
    stack, _, fn = functions(synthesized)[plan.names.completion_function]
    template = synthesized.templates[stack]
    statements = role_statements(template, fn["Properties"]["Role"]["Fn::GetAtt"][0])

    config = synthesized.config
    queues = f"arn:aws:sqs:{config.region}:{config.account}:mm-{config.environment}-ch-*"
    # (the other SendMessage statement is the on-failure destination's, for the completion DLQ)
    (send,) = [s for s in statements_for(statements, "sqs:SendMessage") if s["Resource"] == queues]
    assert sorted(as_list(send["Action"])) == ["sqs:GetQueueUrl", "sqs:SendMessage"]
    # The queues are encrypted with the pipeline key (CDK merges our statement with the DLQ grant's on that key)
    key_lid = next(lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::KMS::Key")
    on_key = [s for s in statements if s["Resource"] == {"Fn::GetAtt": [key_lid, "Arn"]}]
    assert on_key
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= {a for s in on_key for a in as_list(s["Action"])}
    assert all(s["Resource"] != "*" for s in statements_for(statements, "kms:Decrypt"))


def test_the_completion_environment_names_the_challenge_queue_pattern(synthesized: Synthesized) -> None:
    plan = WiringPlan(synthesized.config)
    settings = plan.completion_settings(ResourceRefs("topic", "challenges", "status", "audit"))
    assert settings.challenge_queue_name_template == f"mm-{synthesized.config.environment}-ch-{{challenge_id}}"
    assert settings.challenge_queue_name_template.format(challenge_id="c") == plan.names.challenge_queue("c")
