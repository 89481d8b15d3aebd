"""`FunctionKit.build()`: the one place a Lambda function is defined (role, log group, security group, function).

Every function: Python 3.12 on arm64 (the layer is built for exactly that), X-Ray active, an explicit log
group with the environment's retention, its own role and (in the VPC) its own security group, memory and
timeout from config, and an environment built by a settings model (never by hand).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infrastructure.config import EnvironmentConfig, FunctionSizing
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.packaging import LAMBDA_PYTHON_VERSION

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
assert RUNTIME.name == f"python{LAMBDA_PYTHON_VERSION}", "runtime and layer Python versions must match"

# CloudWatch Logs retention (days) -> CDK enum member; config.py accepts exactly these values.
_RETENTION = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}

VPC_ACCESS_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def retention(days: int) -> logs.RetentionDays:
    return getattr(logs.RetentionDays, _RETENTION[days])


@dataclass(frozen=True)
class PipelineAssets:
    """Directories built by `infrastructure.packaging` before synthesis."""

    layer_dir: Path  # holds python/
    function_dirs: dict[str, Path]  # asset name -> staged directory


@dataclass(frozen=True)
class FunctionSpec:
    function_name: str
    asset: str  # key of PipelineAssets.function_dirs
    handler: str
    sizing: FunctionSizing
    environment: dict[str, str]
    description: str
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. on_failure / retry_attempts for async invokes


class PipelineFunction(Construct):
    """A function with its own role, log group and (in the VPC) security group."""

    def __init__(self, scope: Construct, construct_id: str, *, kit: FunctionKit, spec: FunctionSpec) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {spec.function_name}",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{spec.function_name}",
            retention=retention(kit.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,  # decision 045: logs expire by retention, not by stack
        )
        self.security_group: ec2.SecurityGroup | None = None
        network: dict[str, Any] = {}
        if kit.vpc is not None:
            self.security_group = ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=kit.vpc,
                description=f"{spec.function_name}: HTTPS out only (AWS endpoints, NAT)",
                allow_all_outbound=False,
            )
            self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and NAT")
            network = {
                "vpc": kit.vpc,
                "vpc_subnets": ec2.SubnetSelection(subnets=kit.vpc.private_subnets),
                "security_groups": [self.security_group],
            }
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=spec.function_name,
            description=spec.description,
            code=kit.code(spec.asset),
            handler=spec.handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            memory_size=spec.sizing.memory_mb,
            timeout=Duration.seconds(spec.sizing.timeout_seconds),
            reserved_concurrent_executions=spec.sizing.reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment=spec.environment,
            layers=[kit.layer],
            role=self.role,
            **network,
            **spec.extra,
        )
        self.log_group.grant_write(self.role)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (tracing is active)",
            applies_to=("Resource::*",),
        )
        if kit.vpc is not None:
            acknowledge(
                self.role,
                "AwsSolutions-IAM4",
                "The AWS managed VPC access policy is how Lambda manages the function's ENIs; it holds only the "
                "ec2 network-interface actions, which support no resource-level permissions",
                applies_to=(VPC_ACCESS_POLICY,),
            )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 on purpose: the dependency layer and the import test are built for exactly this runtime "
            "(packaging.LAMBDA_PYTHON_VERSION); bump both together",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaLatestVersion",
            "Python 3.12 on purpose: the dependency layer is built for exactly this runtime; bump both together",
        )


class FunctionKit:
    """What the functions of one stack share: the dependency layer, code assets and VPC placement."""

    def __init__(self, scope: Construct, config: EnvironmentConfig, assets: PipelineAssets) -> None:
        self.config = config
        self._assets = assets
        self._code: dict[str, lambda_.Code] = {}
        # One layer per stack (same asset, uploaded once): a cross-stack layer ARN export would block updates.
        self.layer = lambda_.LayerVersion(
            scope,
            "DependenciesLayer",
            code=lambda_.Code.from_asset(str(assets.layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="mm-processor runtime dependencies (uv.lock, manylinux2014_aarch64, cp312)",
        )
        self.vpc: ec2.IVpc | None = None
        if config.network.functions_in_vpc:
            network = config.network
            self.vpc = ec2.Vpc.from_vpc_attributes(
                scope,
                "Vpc",
                vpc_id=network.vpc_id,
                availability_zones=list(network.availability_zones),
                private_subnet_ids=list(network.private_subnet_ids),
            )
            # Functions only place ENIs in these subnets; nothing here reads their route tables.
            Annotations.of(self.vpc).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId", "imported subnets: route tables are not used"
            )

    def code(self, asset: str) -> lambda_.Code:
        if asset not in self._code:
            self._code[asset] = lambda_.Code.from_asset(str(self._assets.function_dirs[asset]))
        return self._code[asset]

    def build(self, scope: Construct, construct_id: str, spec: FunctionSpec) -> PipelineFunction:
        return PipelineFunction(scope, construct_id, kit=self, spec=spec)
