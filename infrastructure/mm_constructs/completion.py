"""Completion: the ECS "task STOPPED" rule -> completion function (retry policy + DLQ); the sweeper beside it."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from constructs import Construct

from infrastructure.mm_constructs.alarms import AlarmFactory
from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.data import CAPACITY_TABLE_ACTIONS, DataTables
from infrastructure.mm_constructs.fanout import FanOut, encrypted_queue
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.mm_constructs.sweeper import build_timeout_sweeper
from infrastructure.wiring import (
    COMPLETION_HANDLER,
    COMPLETION_TARGET_MAX_EVENT_AGE_SECONDS,
    COMPLETION_TARGET_RETRY_ATTEMPTS,
    ResourceRefs,
    WiringPlan,
)
from mm_contracts.names import challenge_config_parameter_prefix, static_token_parameter_name
from mm_contracts.settings import TokenSource


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """The plan's rule pattern (EventBridge JSON keys) as a CDK EventPattern."""
    known = {"source": "source", "detail-type": "detail_type", "detail": "detail", "account": "account"}
    unknown = set(pattern) - set(known)
    if unknown:
        raise ValueError(f"completion rule pattern: unsupported keys {sorted(unknown)}")
    return events.EventPattern(**{known[key]: value for key, value in pattern.items()})


def token_statement(plan: WiringPlan, arns: Arns) -> iam.PolicyStatement:
    """Read access to the Topcoder M2M token source of this environment, and nothing else."""
    token = plan.config.token
    if token.source is TokenSource.AUTH0_PROXY:
        assert token.auth0_credentials_secret_arn is not None  # config validates this
        return iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"], resources=[token.auth0_credentials_secret_arn]
        )
    parameter = static_token_parameter_name(plan.config.ssm_prefix)
    return iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[arns.ssm_parameter(parameter)])


class Completion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: WiringPlan,
        kit: FunctionKit,
        fanout: FanOut,
        tables: DataTables,
        refs: ResourceRefs,
        alarms: AlarmFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        names = plan.names
        config = plan.config
        arns = Arns.of(config)
        cluster = config.ecs.cluster_arn
        self.dlq = encrypted_queue(
            self,
            "Dlq",
            name=names.completion_dlq,
            key=fanout.key,
            terminal_reason="Dead-letter queue of STOPPED events the completion function could not take: terminal",
        )
        built = kit.build(
            self,
            "Completion",
            FunctionSpec(
                function_name=names.completion_function,
                asset="completion",
                handler=COMPLETION_HANDLER,
                sizing=config.completion,
                environment=plan.completion_settings(refs).to_env(),
                description="ECS task STOPPED -> status table -> Topcoder Submission API review",
                # Function errors after Lambda's own async retries land in the same DLQ as undeliverable events.
                extra={
                    "on_failure": destinations.SqsDestination(self.dlq),
                    "retry_attempts": 2,
                    "max_event_age": Duration.seconds(COMPLETION_TARGET_MAX_EVENT_AGE_SECONDS),
                },
            ),
        )
        self.function = built.function
        role = built.role
        status = tables.status_table
        # The completion function reads (a run, or a submission's runs) and updates status records; it never creates
        # one (the launch does).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[status.table_arn],
            )
        )
        # Releasing a finished run's slots and admitting waiting runs env-wide (decision 096): the capacity table,
        # the environment's caps and every challenge's config (its caps).
        capacity = tables.capacity_table
        role.add_to_policy(iam.PolicyStatement(actions=list(CAPACITY_TABLE_ACTIONS), resources=[capacity.table_arn]))
        config_parameters = arns.ssm_parameter(challenge_config_parameter_prefix(config.ssm_prefix)) + "/*"
        capacity_parameter = arns.ssm_parameter(plan.capacity_parameter())
        role.add_to_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[config_parameters, capacity_parameter])
        )
        role.add_to_policy(token_statement(plan, arns))
        cluster_tasks = arns.cluster_tasks(cluster)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks"],
                resources=[cluster_tasks],
                conditions={"ArnEquals": {"ecs:cluster": cluster}},
            )
        )
        # A transient start failure goes back to its challenge queue (decision 072): any challenge of this
        # environment, so the queues' name pattern; the queues are encrypted with the pipeline key.
        challenge_queues = arns.sqs_queue(names.challenge_queue("*"))
        role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:GetQueueUrl", "sqs:SendMessage"], resources=[challenge_queues])
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[fanout.key.key_arn])
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Reads the config of any challenge of this environment (the SSM prefix), describes tasks of the "
            "one scorer cluster (task ids are unknown in advance; conditioned on ecs:cluster) and relaunches into "
            "any challenge queue of this environment (the queue-name pattern). KMS wildcards come from the DLQ "
            "destination grant, scoped to the pipeline key",
            applies_to=(
                f"Resource::{config_parameters}",
                f"Resource::{cluster_tasks}",
                f"Resource::{challenge_queues}",
                "Action::kms:ReEncrypt*",
                "Action::kms:GenerateDataKey*",
            ),
        )
        self.rule = events.Rule(
            self,
            "TaskStopped",
            rule_name=names.completion_rule,
            description="Scorer tasks this environment started have stopped",
            event_pattern=event_pattern(plan.completion_rule_pattern()),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dlq,
                    max_event_age=Duration.seconds(COMPLETION_TARGET_MAX_EVENT_AGE_SECONDS),
                    retry_attempts=COMPLETION_TARGET_RETRY_ATTEMPTS,
                )
            ],
        )

        # Health alarms before the sweeper's: the dashboard lists alarms in the order they are made.
        alarms.function_health(built, self.function, "completion")
        # The timeout sweeper, built into this construct's scope (its logical ids stay those of a deployed stack).
        sweeper = build_timeout_sweeper(
            self, plan=plan, kit=kit, refs=refs, alarms=alarms, tables=tables, key=fanout.key, completion=self.function
        )
        self.sweeper = sweeper.function
        self.schedule = sweeper.schedule
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Failed async invocations go to an on-failure destination (the completion DLQ), which supersedes a DLQ",
        )

        alarms.queue_not_empty(self, "DlqAlarm", self.dlq, "completion DLQ", dlq="completion")
        # Events the rule could not deliver after its retries land in the completion DLQ (its target's DLQ).
        alarms.rule_failed_invocations(
            self, "RuleFailedInvocationsAlarm", self.rule, next_step=alarms.cli("dlq show completion")
        )
