"""Router: the MSK event source (provisioned mode), its on-failure queue, the audit queue and its marks table,
the router function.

Provisioned mode is what makes `retry_attempts`, `max_record_age`, bisect, partial batch responses and the
on-failure destination work for Kafka; without it one poison batch blocks its partition (decision 042).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infrastructure.config import KafkaAuthentication
from infrastructure.mm_constructs.data import DataTables, table_from_definition
from infrastructure.mm_constructs.fanout import FanOut, encrypted_queue
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.monitoring import AlarmFactory
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.wiring import DLQ_RETENTION_DAYS, ROUTER_HANDLER, ResourceRefs, WiringPlan
from mm_shared.tables import AUDIT_MARKS_TTL_ATTRIBUTE, audit_marks_table_definition

MSK_EXECUTION_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaMSKExecutionRole"


class Router(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: WiringPlan,
        kit: FunctionKit,
        fanout: FanOut,
        tables: DataTables,
        alarms: AlarmFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        names = plan.names
        config = plan.config
        self.audit_queue = encrypted_queue(
            self,
            "AuditQueue",
            name=names.audit_queue,
            key=fanout.key,
            retention_days=DLQ_RETENTION_DAYS,
            terminal_reason="The audit queue is a record of rejected submissions for operators: nothing consumes it",
        )
        self.failure_queue = encrypted_queue(
            self,
            "FailureQueue",
            name=names.router_failure_queue,
            key=fanout.key,
            retention_days=DLQ_RETENTION_DAYS,
            terminal_reason="The Kafka on-failure destination is itself the terminal queue, alarmed when not empty",
        )
        # Which Kafka records already have their audit message (decision 075): short-lived marks, so DESTROY.
        self.audit_marks = table_from_definition(
            self,
            "AuditMarks",
            audit_marks_table_definition(names.audit_marks_table),
            removal_policy=RemovalPolicy.DESTROY,
            ttl=AUDIT_MARKS_TTL_ATTRIBUTE,
        )
        self.refs = ResourceRefs(
            sns_topic_arn=fanout.topic.topic_arn,
            challenge_table_name=tables.challenge_table.table_name,
            status_table_name=tables.status_table.table_name,
            audit_queue_url=self.audit_queue.queue_url,
        )
        built = kit.build(
            self,
            "Router",
            FunctionSpec(
                function_name=names.router_function,
                asset="router",
                handler=ROUTER_HANDLER,
                sizing=config.router,
                environment=plan.router_settings(self.refs).to_env(),
                description="Kafka submission notifications -> SNS, by challenge",
            ),
        )
        self.function = built.function
        role = built.role

        source = plan.kafka_source()
        secret = None
        if config.kafka.authentication is KafkaAuthentication.SASL_SCRAM_512:
            assert config.kafka.sasl_scram_secret_arn is not None  # config validates this
            secret = secretsmanager.Secret.from_secret_complete_arn(
                self, "ScramSecret", config.kafka.sasl_scram_secret_arn
            )
        self.event_source = sources.ManagedKafkaEventSource(
            cluster_arn=config.kafka.cluster_arn,
            topic=source.topic,
            consumer_group_id=source.consumer_group_id,
            starting_position=getattr(lambda_.StartingPosition, source.starting_position),
            batch_size=source.batch_size,
            max_batching_window=Duration.seconds(source.batching_window_seconds),
            report_batch_item_failures=source.report_batch_item_failures,
            retry_attempts=source.retry_attempts,
            max_record_age=Duration.seconds(source.max_record_age_seconds),
            bisect_batch_on_error=source.bisect_batch_on_error,
            provisioned_poller_config=sources.ProvisionedPollerConfig(
                minimum_pollers=source.minimum_pollers, maximum_pollers=source.maximum_pollers
            ),
            on_failure=sources.SqsDlq(self.failure_queue),
            secret=secret,
        )
        self.function.add_event_source(self.event_source)

        # Exactly what the router does: publish, look challenges up, audit rejections once (marks).
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[fanout.topic.topic_arn]))
        role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:BatchGetItem"], resources=[tables.challenge_table.table_arn])
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.audit_queue.queue_arn]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"], resources=[self.audit_marks.table_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[fanout.key.key_arn])
        )
        if config.kafka.authentication is KafkaAuthentication.IAM:
            cluster = config.kafka.cluster_arn
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"],
                    resources=[cluster],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                    resources=[plan.kafka_topic_arn()],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                    resources=[plan.kafka_group_arn()],
                )
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "KMS action wildcards come from SqsDlq's send grant to the on-failure queue and are scoped to the "
            "pipeline key",
            applies_to=("Action::kms:ReEncrypt*", "Action::kms:GenerateDataKey*"),
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4",
            "CDK attaches AWSLambdaMSKExecutionRole for the MSK event source mapping: the ENI and kafka:Describe* "
            "actions the mapping needs to reach the cluster (ec2 actions allow no resource scoping)",
            applies_to=(MSK_EXECUTION_POLICY,),
        )
        alarms.function_health(self, self.function, "router")
        alarms.offset_lag(self, self.function)
        alarms.queue_not_empty(self, "FailureQueueAlarm", self.failure_queue, "router on-failure queue")
