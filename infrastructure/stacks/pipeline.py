"""The pipeline's stacks: one core stack and the per-challenge processors sharded across sibling stacks.

Sibling stacks of at most `challengesPerStack` challenges (decision 040) keep every stack under
CloudFormation's 500 resources at 200 challenges; each shard owns its challenges' alarms and outputs. A
challenge's shard is its pin or a stable hash of its id (decision 050), so no change to the list moves another.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infrastructure.config import ChallengeSettings, KafkaAuthentication
from infrastructure.mm_constructs.alarms import AlarmFactory
from infrastructure.mm_constructs.certificate_monitor import CertificateMonitor
from infrastructure.mm_constructs.challenge_processor import ChallengeProcessor
from infrastructure.mm_constructs.completion import Completion
from infrastructure.mm_constructs.data import ChallengeRowsRole, DataTables
from infrastructure.mm_constructs.fanout import FanOut
from infrastructure.mm_constructs.functions import FunctionKit, PipelineAssets
from infrastructure.mm_constructs.monitoring import PipelineMonitoring
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.mm_constructs.router import Router
from infrastructure.mm_constructs.scorer_token import ScorerTokenRefresher
from infrastructure.wiring import WiringPlan
from mm_contracts.names import PROJECT

AWS_CUSTOM_RESOURCE_ID = "AWS679f53fac002430cb0da5b7982bd2287"  # AwsCustomResource's singleton provider


def core_stack_name(environment: str) -> str:
    return f"mm-{environment}-core"


def shard_stack_name(environment: str, shard: int) -> str:
    """`mm-<env>-challenges-NN` from the shard number (1..challengeShards), never from a position."""
    return f"mm-{environment}-challenges-{shard:02d}"


class CoreStack(Stack):
    """Everything shared: key, topic, tables, router, completion, sweeper, alarm topic and dashboard."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: WiringPlan, assets: PipelineAssets) -> None:
        config = plan.config
        super().__init__(
            scope,
            construct_id,
            stack_name=construct_id,
            env=Environment(account=config.account, region=config.region),
            description=f"mm-processor {config.environment}: shared pipeline (router, fan-out, completion)",
        )
        kit = FunctionKit(self, config, assets)
        self.fanout = FanOut(self, "FanOut", plan=plan)
        self.tables = DataTables(self, "Tables", plan=plan)
        self.capacity_parameter: ssm.StringParameter | None = None
        if config.write_challenge_config:
            # The environment's caps (decision 097), like the challenge configs: written by every deploy from the
            # config; operators may change it in between (put-parameter), the functions cache it 60 s.
            self.capacity_parameter = ssm.StringParameter(
                self,
                "CapacityConfig",
                parameter_name=plan.capacity_parameter(),
                string_value=plan.environment_capacity().to_json(),
                description=f"mm-processor {config.environment}: caps on running scorer tasks, RunTask pace",
                tier=ssm.ParameterTier.STANDARD,
            )
        self.monitoring = PipelineMonitoring(self, "Monitoring", plan=plan, key=self.fanout.key)
        alarms = self.monitoring.alarms
        self.router = Router(self, "Router", plan=plan, kit=kit, fanout=self.fanout, tables=self.tables, alarms=alarms)
        self.refs = self.router.refs
        self.completion = Completion(
            self,
            "Completion",
            plan=plan,
            kit=kit,
            fanout=self.fanout,
            tables=self.tables,
            refs=self.refs,
            alarms=alarms,
        )
        alarms.queue_not_empty(
            self.fanout, "SubscriptionDlqAlarm", self.fanout.subscription_dlq, "fan-out DLQ", dlq="fanout"
        )
        alarms.hot_partition(self.tables, self.tables.capacity_table)
        if config.kafka.authentication is KafkaAuthentication.MTLS:  # client certificate expiry (decision 056)
            self.certificate_monitor = CertificateMonitor(self, "CertificateMonitor", plan=plan, kit=kit, alarms=alarms)
        plan.scorer_token_parameter()  # refuses topcoder_ecs_runner challenges without a token parameter (091)
        self.scorer_token: ScorerTokenRefresher | None = None
        if config.token.scorer_token_parameter:  # the scorer tasks' token kept in SSM (decision 091)
            self.scorer_token = ScorerTokenRefresher(self, "ScorerToken", plan=plan, kit=kit, alarms=alarms)
        self.monitoring.add_pipeline_widgets(
            router=self.router.function,
            completion=self.completion.function,
            sweeper=self.completion.sweeper,
            queues={
                "completion DLQ": self.completion.dlq,
                "fan-out DLQ": self.fanout.subscription_dlq,
            },
        )
        acknowledge(
            self.router.function,
            "Serverless-LambdaDLQ",
            "Invoked only by the Kafka event source mapping, whose on-failure destination is the failure bucket",
        )
        outputs = {
            "SubmissionsTopicArn": self.fanout.topic.topic_arn,
            "ChallengeTableName": self.tables.challenge_table.table_name,
            "StatusTableName": self.tables.status_table.table_name,
            "CapacityTableName": self.tables.capacity_table.table_name,
            "CapacityParameterName": plan.capacity_parameter(),
            "AuditQueueUrl": self.router.audit_queue.queue_url,
            "RouterFailureBucketName": self.router.failure_bucket.bucket_name,
            "CompletionDlqUrl": self.completion.dlq.queue_url,
            "FanOutDlqUrl": self.fanout.subscription_dlq.queue_url,
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
            "DashboardName": plan.names.dashboard,
            "DashboardUrl": (
                f"https://{config.region}.console.aws.amazon.com/cloudwatch/home?region={config.region}"
                f"#dashboards:name={plan.names.dashboard}"
            ),
        }
        if self.scorer_token is not None:  # what a scorer task definition's `secrets` reference as ACCESS_TOKEN
            outputs["ScorerTokenParameterArn"] = self.scorer_token.parameter_arn
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)


class ChallengeShardStack(Stack):
    """The processors of up to `challengesPerStack` challenges, with their queues, configs, rows and alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: WiringPlan,
        assets: PipelineAssets,
        core: CoreStack,
        challenges: tuple[ChallengeSettings, ...],
    ) -> None:
        config = plan.config
        super().__init__(
            scope,
            construct_id,
            stack_name=construct_id,
            env=Environment(account=config.account, region=config.region),
            description=f"mm-processor {config.environment}: challenge processors ({len(challenges)})",
        )
        kit = FunctionKit(self, config, assets)
        alarms = AlarmFactory(core.monitoring.topic, config.environment)
        rows_role: iam.Role | None = None
        if config.write_challenge_config:
            rows_role = ChallengeRowsRole(
                self,
                "ChallengeRowsRole",
                table=core.tables.challenge_table,
                log_retention_days=config.log_retention_days,
            )
        self.processors: list[ChallengeProcessor] = []
        for challenge in challenges:
            processor = ChallengeProcessor(
                self,
                f"Challenge-{challenge.challenge_id}",
                plan=plan,
                challenge=challenge,
                kit=kit,
                fanout=core.fanout,
                refs=core.refs,
                status_table_arn=core.tables.status_table.table_arn,
                capacity_table_arn=core.tables.capacity_table.table_arn,
                alarms=alarms,
                rows_role=rows_role,
            )
            self.processors.append(processor)
            short = challenge.challenge_id.replace("-", "")
            CfnOutput(self, f"Queue{short}", value=processor.queues.queue.queue_url)
            CfnOutput(self, f"Dlq{short}", value=processor.queues.dlq.queue_url)
        provider = self.node.try_find_child(AWS_CUSTOM_RESOURCE_ID)
        if provider is not None:
            for rule, reason in _PROVIDER_ACKNOWLEDGEMENTS:
                acknowledge(provider, rule, reason)


_PROVIDER_ACKNOWLEDGEMENTS = (
    (
        "Serverless-LambdaDLQ",
        "CDK's AwsCustomResource provider answers CloudFormation synchronously; failures fail the deployment",
    ),
    (
        "Serverless-LambdaDefaultMemorySize",
        "CDK's AwsCustomResource provider: a deploy-time helper sized by aws-cdk-lib",
    ),
    (
        "Serverless-LambdaTracing",
        "CDK's AwsCustomResource provider runs only during deployments; tracing it adds nothing",
    ),
)


@dataclass(frozen=True)
class PipelineStacks:
    core: CoreStack
    shards: tuple[ChallengeShardStack, ...]


def build_pipeline(scope: Construct, plan: WiringPlan, assets: PipelineAssets) -> PipelineStacks:
    environment = plan.config.environment
    core = CoreStack(scope, core_stack_name(environment), plan=plan, assets=assets)
    shards = tuple(
        ChallengeShardStack(
            scope, shard_stack_name(environment, shard), plan=plan, assets=assets, core=core, challenges=challenges
        )
        for shard, challenges in plan.challenge_shards().items()
    )
    for stack in (core, *shards):
        Tags.of(stack).add("Project", PROJECT)
        Tags.of(stack).add("Environment", environment)
    return PipelineStacks(core=core, shards=shards)
