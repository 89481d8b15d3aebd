"""Completion: the ECS "task STOPPED" rule -> completion function (retry policy + DLQ), and the timeout sweeper."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from constructs import Construct

from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.data import CAPACITY_TABLE_ACTIONS, DataTables
from infrastructure.mm_constructs.fanout import FanOut, encrypted_queue
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.monitoring import AlarmFactory
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.wiring import (
    COMPLETION_HANDLER,
    COMPLETION_TARGET_MAX_EVENT_AGE_SECONDS,
    COMPLETION_TARGET_RETRY_ATTEMPTS,
    SWEEPER_HANDLER,
    ResourceRefs,
    WiringPlan,
)
from mm_contracts.names import (
    STATUS_TABLE_OVERDUE_INDEX,
    challenge_config_parameter_prefix,
    static_token_parameter_name,
)
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

        # ---------------------------------------------------------------- timeout sweeper
        sweeper = kit.build(
            self,
            "Sweeper",
            FunctionSpec(
                function_name=names.sweeper_function,
                asset="completion",
                handler=SWEEPER_HANDLER,
                sizing=config.timeout_sweeper,
                environment=plan.sweeper_settings(refs).to_env(),
                description="Times out, reconciles, adopts or stops scorer tasks; sweeps stuck launches and reports",
                extra={"retry_attempts": 0},  # the next scheduled run is the retry
            ),
        )
        self.sweeper = sweeper.function
        # The one index the sweeper reads (a literal ARN: the table name is fixed per environment).
        index_arn = arns.dynamodb_index(names.status_table, STATUS_TABLE_OVERDUE_INDEX)
        sweeper.role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Query"], resources=[index_arn]))
        sweeper.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
                resources=[status.table_arn],
            )
        )
        # The slot reconciler, re-sending overdue admissions and the env-wide dispatch, the safety net (096): the
        # capacity table, the caps (environment and challenge configs), every challenge queue.
        sweeper.role.add_to_policy(
            iam.PolicyStatement(actions=list(CAPACITY_TABLE_ACTIONS), resources=[capacity.table_arn])
        )
        sweeper.role.add_to_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[config_parameters, capacity_parameter])
        )
        sweeper.role.add_to_policy(
            iam.PolicyStatement(actions=["sqs:GetQueueUrl", "sqs:SendMessage"], resources=[challenge_queues])
        )
        sweeper.role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[fanout.key.key_arn])
        )
        # StopTask for timeouts; DescribeTasks to reconcile a STOPPED event that was never processed (decision 008).
        sweeper.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask", "ecs:DescribeTasks"],
                resources=[cluster_tasks],
                conditions={"ArnEquals": {"ecs:cluster": cluster}},
            )
        )
        # The orphan sweep lists the cluster's running tasks (decision 071). ListTasks names no task, so it takes
        # no task ARN: it is scoped by the ecs:cluster condition key instead.
        sweeper.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:ListTasks"], resources=["*"], conditions={"ArnEquals": {"ecs:cluster": cluster}}
            )
        )
        # The synthetic STOPPED event goes to the completion function only (its unqualified ARN: no versions).
        sweeper.role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        acknowledge(
            sweeper.role,
            "AwsSolutions-IAM5",
            "Stops, describes and lists tasks of the one scorer cluster only (task ids are unknown in advance; "
            "ListTasks takes no task resource; all conditioned on ecs:cluster); reads the config of any challenge "
            "of this environment (the SSM prefix) and admits runs into any challenge queue of this environment "
            "(the queue-name pattern)",
            applies_to=(
                f"Resource::{cluster_tasks}",
                "Resource::*",
                f"Resource::{config_parameters}",
                f"Resource::{challenge_queues}",
            ),
        )
        acknowledge(
            self.sweeper,
            "Serverless-LambdaAsyncFailureDestination",
            "The sweeper is idempotent and scheduled: a failed run is retried by the next run, nothing is lost",
        )
        acknowledge(
            self.sweeper,
            "Serverless-LambdaDLQ",
            "The sweeper is idempotent and scheduled: a failed run is retried by the next run, nothing is lost",
        )
        self.schedule = events.Rule(
            self,
            "SweepSchedule",
            rule_name=names.sweeper_schedule,
            description="Run the timeout sweeper",
            schedule=events.Schedule.rate(Duration.minutes(config.sweeper_interval_minutes)),
            targets=[targets.LambdaFunction(self.sweeper, retry_attempts=2)],
        )
        acknowledge(
            self.schedule,
            "Serverless-EventBusDLQ",
            "A missed scheduled sweep is repeated by the next one minutes later; nothing would wait in a DLQ",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Failed async invocations go to an on-failure destination (the completion DLQ), which supersedes a DLQ",
        )

        alarms.function_health(built, self.function, "completion")
        alarms.function_health(sweeper, self.sweeper, "timeout sweeper")
        alarms.queue_not_empty(self, "DlqAlarm", self.dlq, "completion DLQ")
        alarms.rule_failed_invocations(self, "RuleFailedInvocationsAlarm", self.rule)
