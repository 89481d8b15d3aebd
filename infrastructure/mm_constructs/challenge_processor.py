"""One challenge: queue + DLQ (fan-out), its processor function, its SSM config, its table rows, its alarms.

IAM is scoped to this challenge: RunTask on its task-definition family (every revision) in the one
cluster, PassRole on exactly its task and execution roles, its own config parameter, the status table; for
capacity (decision 097) the capacity table and parameter, SendMessage to its own queue only (its admitted runs)
and StopTask on the cluster's tasks (a superseded running task).
"""

from __future__ import annotations

from aws_cdk import Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infrastructure.config import ChallengeSettings
from infrastructure.mm_constructs.alarms import AlarmFactory
from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.completion import token_statement
from infrastructure.mm_constructs.data import CAPACITY_TABLE_ACTIONS, ChallengeRows
from infrastructure.mm_constructs.fanout import ChallengeQueue, FanOut
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.wiring import CHALLENGE_BATCH_SIZE, CHALLENGE_HANDLER, ResourceRefs, WiringPlan
from mm_contracts.models.challenge import ScorerCredentialsMode
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE

# Credentials modes in which the processor itself reads the token source.
# (parameter_reference passes only the parameter's name: the scorer task reads it with its own task role).
TOKEN_READING_MODES = frozenset({ScorerCredentialsMode.ENVIRONMENT_TOKEN_INSECURE})
CHALLENGE_TAG = "ChallengeId"
# The processors of one shard share one security group (same egress rule; one resource per shard, not per challenge).
SHARED_SECURITY_GROUP = "ChallengeProcessors"
_ = CHALLENGE_ID_ATTRIBUTE  # the tag and the SNS attribute carry the same id


class ChallengeProcessor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: WiringPlan,
        challenge: ChallengeSettings,
        kit: FunctionKit,
        fanout: FanOut,
        refs: ResourceRefs,
        status_table_arn: str,
        capacity_table_arn: str,
        alarms: AlarmFactory,
        rows_role: iam.IRole | None,
    ) -> None:
        super().__init__(scope, construct_id)
        Tags.of(self).add(CHALLENGE_TAG, challenge.challenge_id)
        config = plan.config
        names = plan.names
        arns = Arns.of(config)
        cid = challenge.challenge_id
        queue_plan = plan.queue_plan(challenge)
        self.queues = ChallengeQueue(self, "Queues", plan=queue_plan, fanout=fanout)

        built = kit.build(
            self,
            "Processor",
            FunctionSpec(
                function_name=names.challenge_function(cid),
                asset="challenge",
                handler=CHALLENGE_HANDLER,
                sizing=config.challenge_processor,
                environment=plan.challenge_settings(challenge, refs, queue_url=self.queues.queue.queue_url).to_env(),
                description=f"{challenge.name[:200]}: submissions -> ECS RunTask",
                shared_security_group=SHARED_SECURITY_GROUP,
            ),
        )
        self.function = built.function
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queues.queue,
                batch_size=CHALLENGE_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=queue_plan.max_concurrency,
            )
        )
        role = built.role
        cluster = config.ecs.cluster_arn
        family = arns.task_definition_family(challenge.task_definition_family)
        cluster_tasks = arns.cluster_tasks(cluster)
        parameter_name = plan.challenge_config_parameter(cid)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"], resources=[family], conditions={"ArnEquals": {"ecs:cluster": cluster}}
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[cluster_tasks],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[challenge.task_role_arn, challenge.execution_role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[arns.ssm_parameter(parameter_name), arns.ssm_parameter(plan.capacity_parameter())],
            )
        )
        if challenge.scorer_credentials_mode in TOKEN_READING_MODES:
            role.add_to_policy(token_statement(plan, arns))
        # The status table: its runs' items (a member's other runs read at once, BatchGetItem, for supersede),
        # also as items of the capacity transactions (authorized per item as PutItem and UpdateItem: 097).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[status_table_arn],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=list(CAPACITY_TABLE_ACTIONS), resources=[capacity_table_arn]))
        # A new run's item, its member and its pools are ONE BatchGetItem over both tables (decision 114).
        role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:BatchGetItem"], resources=[capacity_table_arn]))
        # An admitted run of this challenge is sent to its own queue (the pipeline key encrypts it), never another.
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queues.queue.queue_arn]))
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[fanout.key.key_arn])
        )
        # Supersede policy cancel_waiting_and_stop_running: a member's older running task is stopped (decision 095).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask"],
                resources=[cluster_tasks],
                conditions={"ArnEquals": {"ecs:cluster": cluster}},
            )
        )
        completion_function = plan.challenge_settings(challenge, refs).completion_function_name
        if completion_function is not None:
            # A skipped v6 run's "report due" event goes to the completion function only (a literal ARN: the
            # name is fixed per environment, and the shard stack needs no export from the core stack).
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[arns.lambda_function(completion_function)]
                )
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "RunTask on every revision of this challenge's task-definition family (conditioned on the cluster), "
            "tagging the tasks RunTask creates (conditioned on ecs:CreateAction=RunTask), and stopping a superseded "
            "task of the one scorer cluster (task ids are unknown in advance; conditioned on ecs:cluster)",
            applies_to=(f"Resource::{family}", f"Resource::{cluster_tasks}"),
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Invoked only by its SQS event source: failed messages go to the queue's DLQ after 3 receives",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaEventSourceMappingDestination",
            "SQS event sources take no on-failure destination: the queue's redrive policy (DLQ) is the destination",
        )

        if config.write_challenge_config:
            self.parameter = ssm.StringParameter(
                self,
                "Config",
                parameter_name=parameter_name,
                string_value=plan.challenge_config(challenge).to_json(),
                description=f"mm-processor challenge config: {cid}",
                tier=ssm.ParameterTier.STANDARD,
            )
            if rows_role is not None:
                self.rows = ChallengeRows(
                    self,
                    "Rows",
                    table_name=names.challenge_table,
                    records=plan.challenge_records_for([challenge], {cid: self.queues.queue.queue_url}),
                    role=rows_role,
                )

        alarms.challenge_health(
            self, "HealthAlarm", self.function, self.queues.dlq, f"challenge {cid}", challenge_id=cid
        )
