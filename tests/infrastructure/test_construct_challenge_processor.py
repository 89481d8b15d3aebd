"""The challenge processor construct (`mm_constructs/challenge_processor.py`): scoped roles, queue consumption.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import pytest

from infrastructure.wiring import CHALLENGE_BATCH_SIZE, WiringPlan
from mm_contracts.models.challenge import ScorerCredentialsMode
from mm_contracts.names import static_token_parameter_name
from tests.infrastructure.templates import as_list, functions, resources, role_statements, statements_for
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_challenge_roles_are_scoped_to_their_own_challenge(synthesized: Synthesized, plan: WiringPlan) -> None:
    fns = functions(synthesized)
    cluster = plan.config.ecs.cluster_arn
    for challenge in plan.config.challenges:
        stack, _, fn = fns[plan.names.challenge_function(challenge.challenge_id)]
        statements = role_statements(synthesized.templates[stack], fn["Properties"]["Role"]["Fn::GetAtt"][0])
        (run_task,) = statements_for(statements, "ecs:RunTask")
        family = challenge.task_definition_family
        assert run_task["Resource"] == f"arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:*"
        assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
        (tag,) = statements_for(statements, "ecs:TagResource")
        assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
        (pass_role,) = statements_for(statements, "iam:PassRole")
        assert sorted(pass_role["Resource"]) == sorted([challenge.task_role_arn, challenge.execution_role_arn])
        parameters = [r for s in statements_for(statements, "ssm:GetParameter") for r in as_list(s["Resource"])]
        own = "arn:aws:ssm:us-east-1:123456789012:parameter" + plan.challenge_config_parameter(challenge.challenge_id)
        token = "arn:aws:ssm:us-east-1:123456789012:parameter" + static_token_parameter_name(plan.config.ssm_prefix)
        caps = "arn:aws:ssm:us-east-1:123456789012:parameter" + plan.capacity_parameter()  # decision 097
        # parameter_reference passes only the name: the scorer's own task role reads the token
        needs_token = challenge.scorer_credentials_mode is ScorerCredentialsMode.ENVIRONMENT_TOKEN_INSECURE
        assert sorted(parameters) == sorted([own, caps, token] if needs_token else [own, caps])
        # the status table (PutItem: a run is created WAITING; BatchGetItem: a member's other runs, decision 095)
        # and the capacity table (decision 097), each in its own statement
        status, capacity = statements_for(statements, "dynamodb:PutItem")
        assert sorted(as_list(status["Action"])) == [
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ]
        assert "dynamodb:ConditionCheckItem" in as_list(capacity["Action"])
        # and BatchGetItem on both: a new run's item, its member and its pools are one read (decision 114)
        batch_resources = [s["Resource"] for s in statements_for(statements, "dynamodb:BatchGetItem")]
        assert batch_resources == [status["Resource"], capacity["Resource"]]


def test_challenge_processors_consume_their_queue_with_partial_batch_responses(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    for challenge in plan.config.challenges:
        stack, _, fn = functions(synthesized)[plan.names.challenge_function(challenge.challenge_id)]
        template = synthesized.templates[stack]
        fn_id = next(lid for lid, r in resources(template, "AWS::Lambda::Function") if r is fn)
        (esm,) = [
            r["Properties"]
            for _, r in resources(template, "AWS::Lambda::EventSourceMapping")
            if r["Properties"]["FunctionName"] == {"Ref": fn_id}
        ]
        assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert esm["BatchSize"] == CHALLENGE_BATCH_SIZE
        assert esm["ScalingConfig"] == {"MaximumConcurrency": challenge.max_concurrency}
