"""Router: the MSK event source (provisioned mode), its S3 on-failure bucket, the audit queue and its marks table,
the router function.

Provisioned mode is what makes `retry_attempts`, `max_record_age`, bisect, partial batch responses and the
on-failure destination work for Kafka; without it one poison batch blocks its partition (decision 042).
The on-failure destination is an S3 bucket: only S3 receives the whole failed batch, so an outage longer than
the retry budget is replayed from the bucket, not from Kafka (decision 055). Authentication: IAM, SASL/SCRAM
or mTLS, secrets under a customer-managed key (decision 054).
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infrastructure.config import EnvironmentConfig, KafkaAuthentication
from infrastructure.mm_constructs.alarms import PERIOD, AlarmFactory, log_group_of
from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.data import DataTables, table_from_definition
from infrastructure.mm_constructs.fanout import FanOut, encrypted_queue
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.wiring import DLQ_RETENTION_DAYS, ROUTER_HANDLER, ResourceRefs, WiringPlan
from mm_contracts.models.phase import Platform
from mm_contracts.tables import AUDIT_MARKS_TTL_ATTRIBUTE, audit_marks_table_definition

MSK_EXECUTION_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaMSKExecutionRole"
# Event source mapping metrics (namespace AWS/Lambda, dimension EventSourceMappingUUID), opt-in per group:
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html#event-source-mapping-metrics
ESM_UUID_DIMENSION = "EventSourceMappingUUID"
FAILURE_DELIVERED_METRIC = "OnFailureDestinationDeliveredEventCount"  # records written to the bucket
DROPPED_METRIC = "DroppedEventCount"  # records given up on and NOT in the bucket (its delivery failed)


def secret_decrypt_statement(config: EnvironmentConfig, secret_arn: str) -> iam.PolicyStatement:
    """kms:Decrypt on the secrets' customer-managed key, only through Secrets Manager and only for this secret."""
    key_arn = config.kafka.secret_kms_key_arn
    assert key_arn is not None  # config requires it for every secret-based authentication
    return iam.PolicyStatement(
        actions=["kms:Decrypt"],
        resources=[key_arn],
        conditions={
            "StringEquals": {
                "kms:ViaService": f"secretsmanager.{config.region}.amazonaws.com",
                # Secrets Manager's encryption context names the secret (security-encryption.html).
                "kms:EncryptionContext:SecretARN": secret_arn,
            }
        },
    )


@jsii.implements(lambda_.IEventSourceDlq)
class S3FailureDestination:
    """An S3 on-failure destination that grants nothing by itself.

    CDK's `S3OnFailureDestination` grants the function `grantReadWrite` (get, delete, every put, KMS encrypt
    and re-encrypt); Lambda needs only s3:PutObject and s3:ListBucket (kafka-on-failure.html), which the
    router construct grants, scoped to the bucket and to this account.
    """

    def __init__(self, bucket: s3.IBucket) -> None:
        self._bucket = bucket

    def bind(self, _target: lambda_.IEventSourceMapping, _handler: lambda_.IFunction) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._bucket.bucket_arn)


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
        kafka = config.kafka
        arns = Arns.of(config)
        self.audit_queue = encrypted_queue(
            self,
            "AuditQueue",
            name=names.audit_queue,
            key=fanout.key,
            retention_days=DLQ_RETENTION_DAYS,
            terminal_reason="The audit queue is a record of rejected submissions for operators: nothing consumes it",
        )
        self.failure_bucket = self._failure_bucket(plan, fanout)
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
            capacity_table_name=tables.capacity_table.table_name,
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

        secret_arn = kafka.authentication_secret_arn
        secret = secretsmanager.Secret.from_secret_complete_arn(self, "KafkaSecret", secret_arn) if secret_arn else None
        # One mapping per platform's topic (a mapping reads one topic); all share the bucket and the settings.
        self.event_sources: dict[Platform, sources.ManagedKafkaEventSource] = {}
        for source in plan.kafka_sources():
            event_source = sources.ManagedKafkaEventSource(
                cluster_arn=kafka.cluster_arn,
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
                on_failure=S3FailureDestination(self.failure_bucket),
                # SASL/SCRAM through CDK's own prop (SASL_SCRAM_512_AUTH + read grant); mTLS below.
                secret=secret if kafka.authentication is KafkaAuthentication.SASL_SCRAM_512 else None,
                # EventCount: delivered-to-bucket and dropped counts, which the failure alarms watch.
                metrics_config=lambda_.MetricsConfig(metrics=[lambda_.MetricType.EVENT_COUNT]),
            )
            # CDK names the mapping after its topic: the v5 mapping keeps its logical id (and its offsets).
            self.function.add_event_source(event_source)
            self.event_sources[source.platform] = event_source
        self.event_source = next(iter(self.event_sources.values()))
        if secret is not None and kafka.authentication is KafkaAuthentication.MTLS:
            self._use_client_certificate(secret.secret_arn)
            secret.grant_read(role)  # what CDK grants for a SASL secret: GetSecretValue, DescribeSecret
        if secret_arn is not None:
            role.add_to_policy(secret_decrypt_statement(config, secret_arn))

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
        # The pipeline key: the topic and audit queue (code), and the failure bucket's objects (the mapping).
        role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[fanout.key.key_arn])
        )
        # What the mapping needs to write a failed batch (kafka-on-failure.html), in this account only: a deleted
        # bucket's name could be taken by another account, and the records would follow it there.
        bucket_arn = f"arn:{arns.partition}:s3:::{names.router_failure_bucket(config.account, config.region)}"
        own_account = {"StringEquals": {"s3:ResourceAccount": config.account}}
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[f"{bucket_arn}/*"], conditions=own_account)
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn], conditions=own_account)
        )
        if kafka.authentication is KafkaAuthentication.IAM:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"],
                    resources=[kafka.cluster_arn],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                    resources=list(plan.kafka_topic_arns()),
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
                    resources=list(plan.kafka_group_arns()),
                )
            )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "The event source mapping writes failed batches as new objects under keys Lambda chooses: PutObject "
            "on the one failure bucket's objects, in this account only",
            applies_to=(f"Resource::{bucket_arn}/*",),
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
        self._failure_alarms(alarms)

    def _failure_bucket(self, plan: WiringPlan, fanout: FanOut) -> s3.Bucket:
        """Whole failed Kafka batches: private, TLS only, the pipeline key, versioned, expiring (decision 055)."""
        config = plan.config
        retention = Duration.days(config.kafka.failure_record_retention_days)
        bucket = s3.Bucket(
            self,
            "FailureBucket",
            bucket_name=plan.names.router_failure_bucket(config.account, config.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=fanout.key,
            bucket_key_enabled=True,  # one data key per bucket and period, not a KMS call per object
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,  # AWS recommends it for on-failure buckets: an overwrite never loses a batch
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireFailureRecords",
                    expiration=retention,
                    noncurrent_version_expiration=retention,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            # Kept with the data in production; a developer's environment goes with its stack (when empty).
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "Written only by the router's event source mapping and read only by an operator's replay; access logs "
            "would need a second bucket with its own retention for records that expire in days. S3 data events in "
            "the account's CloudTrail are the audit trail where one is required (decision 055)",
        )
        return bucket

    def _use_client_certificate(self, secret_arn: str) -> None:
        """mTLS: ManagedKafkaEventSource only knows SASL/SCRAM, so set each mapping's source access directly."""
        mappings = [c for c in self.function.node.children if isinstance(c, lambda_.EventSourceMapping)]
        if len(mappings) != len(self.event_sources):
            raise RuntimeError(
                f"router: expected {len(self.event_sources)} event source mappings, found {len(mappings)}"
            )
        for mapping in mappings:
            cfn = mapping.node.default_child
            assert isinstance(cfn, lambda_.CfnEventSourceMapping)
            cfn.source_access_configurations = [
                lambda_.CfnEventSourceMapping.SourceAccessConfigurationProperty(
                    type=lambda_.SourceAccessConfigurationType.CLIENT_CERTIFICATE_TLS_AUTH.type, uri=secret_arn
                )
            ]

    def _failure_alarms(self, alarms: AlarmFactory) -> None:
        for platform, event_source in self.event_sources.items():
            # The v5 alarms keep their construct ids; the v6 mapping's carry a suffix.
            suffix = "" if platform is Platform.V5 else platform.value.upper()
            label = f"({platform.value} topic) " if len(self.event_sources) > 1 else ""
            self._failure_alarms_of(alarms, event_source, suffix=suffix, label=label)

    def _failure_alarms_of(
        self, alarms: AlarmFactory, event_source: sources.ManagedKafkaEventSource, *, suffix: str, label: str
    ) -> None:
        def metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name=name,
                dimensions_map={ESM_UUID_DIMENSION: event_source.event_source_mapping_id},
                statistic="Sum",
                period=PERIOD,
            )

        for construct_id, name, description, next_step in (
            (
                "FailureRecordsAlarm",
                FAILURE_DELIVERED_METRIC,
                "Kafka records the router gave up on are in the failure bucket: fix the cause, then replay them "
                "(decision 055)",
                f"{alarms.cli('dlq list')} (the failure bucket's objects), then after the fix "
                f"{alarms.cli('dlq replay-router --reason TEXT')}",
            ),
            (
                "DroppedRecordsAlarm",
                DROPPED_METRIC,
                "Kafka records were dropped without reaching the failure bucket (delivery failed: check the bucket, "
                "its key and the router role): replay them from Kafka by offset",
                f"{alarms.cli('health')} and {alarms.cli('dlq list')} (the failure bucket), then the router's log "
                f"group {log_group_of(self.function)} for the dropped offsets; what did reach the bucket: "
                f"{alarms.cli('dlq replay-router --reason TEXT')}",
            ),
        ):
            alarm = cloudwatch.Alarm(
                self,
                f"{construct_id}{suffix}",
                metric=metric(name),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=alarms.describe(f"{label}{description}", next_step),
            )
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarms.topic))
            alarms.alarms.append(alarm)
