"""`FunctionKit.build()`: the one place a Lambda function is defined (role, log group, security group, function).

Every function: Python 3.12 on arm64 (the layer is built for exactly that), X-Ray active (plus the ADOT layer
with `tracing.mode` otel, decision 112), an explicit log group with the environment's retention, its own role
and (in the VPC) its own security group or one shared by the functions of a stack that ask for it, memory and
timeout from config, and an environment built by a settings model (never by hand).

Every statement of a function role lives inline in the `AWS::IAM::Role` (decision 048): Lambda checks the
network-interface permissions at CreateFunction, and an inline policy exists as soon as the role does, so no
separate `AWS::IAM::Policy` (and no ordering between it and the function) is needed.
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
from infrastructure.mm_constructs.arns import Arns
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

# What Lambda needs to manage a VPC function's network interfaces, checked at CreateFunction
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions).
ENI_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")  # no resource-level permissions
ENI_CREATE_ACTION = "ec2:CreateNetworkInterface"  # network-interface, subnet and security-group resources
ENI_MANAGE_ACTIONS = (  # network-interface resources
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
ENI_ACTIONS = (ENI_CREATE_ACTION, *ENI_DESCRIBE_ACTIONS, *ENI_MANAGE_ACTIONS)
INLINE_POLICY_NAME = "Function"


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
    # Functions of one kit (one stack) naming the same key share one security group; None: one of its own.
    shared_security_group: str | None = None


class InlinePolicyRole(iam.Role):
    """A role whose every statement, ours or a CDK grant's, lands in one inline policy of the role itself.

    CDK grants call `add_to_principal_policy`; the inline `PolicyDocument` is rendered at synthesis, so
    statements added after construction still appear. The role is the dependable: it carries the policy.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        self.document = iam.PolicyDocument()
        super().__init__(scope, construct_id, inline_policies={INLINE_POLICY_NAME: self.document}, **kwargs)

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        self.document.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self)

    def add_to_policy(self, statement: iam.PolicyStatement) -> bool:
        self.document.add_statements(statement)
        return True


class PipelineFunction(Construct):
    """A function with its own role, log group and (in the VPC) security group, its own or a shared one."""

    def __init__(self, scope: Construct, construct_id: str, *, kit: FunctionKit, spec: FunctionSpec) -> None:
        super().__init__(scope, construct_id)
        self.role = InlinePolicyRole(
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
            if spec.shared_security_group is None:
                self.security_group = https_only_security_group(self, "SecurityGroup", kit.vpc, spec.function_name)
            else:
                self.security_group = kit.shared_security_group(spec.shared_security_group)
            self._grant_network_interfaces(kit, self.security_group)
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
            tracing=lambda_.Tracing.ACTIVE,  # in both tracing modes (decision 112)
            log_group=self.log_group,
            # The settings model's names, plus what Lambda's runtime itself reads for the tracing mode.
            environment={**spec.environment, **kit.config.tracing.exec_environment},
            layers=[kit.layer, *kit.tracing_layers],
            role=self.role,
            **network,
            **spec.extra,
        )
        self.log_group.grant_write(self.role)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords (tracing is active) and, in the VPC, "
            "ec2:DescribeNetworkInterfaces/DescribeSubnets support no resource-level permissions",
            applies_to=("Resource::*",),
        )
        # The rule reads only a role's inline policies, so it sees ours (decision 048); it has no finding ids.
        acknowledge(
            self.role,
            "Serverless-LambdaStarPermissions",
            "Resource * only where the action supports no resource-level permissions (X-Ray, ec2 Describe*, "
            "ecs:ListTasks held by an ecs:cluster condition); each is also acknowledged as its AwsSolutions-IAM5 "
            "finding",
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

    def _grant_network_interfaces(self, kit: FunctionKit, security_group: ec2.ISecurityGroup) -> None:
        """The ENI actions Lambda checks at CreateFunction, scoped wherever EC2 allows (decision 048)."""
        assert kit.vpc is not None
        arns = Arns.of(kit.config)
        ec2_arn = f"arn:{arns.partition}:ec2:{arns.region}:{arns.account}"
        interfaces = f"{ec2_arn}:network-interface/*"
        self.role.add_to_policy(iam.PolicyStatement(actions=list(ENI_DESCRIBE_ACTIONS), resources=["*"]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[ENI_CREATE_ACTION],
                resources=[
                    interfaces,
                    *(f"{ec2_arn}:subnet/{subnet.subnet_id}" for subnet in kit.vpc.private_subnets),
                    f"{ec2_arn}:security-group/{security_group.security_group_id}",
                ],
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=list(ENI_MANAGE_ACTIONS), resources=[interfaces]))
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Lambda names the function's network interfaces itself, so they are only known as network-interface/* "
            "of this account and region; the subnets and the security group are named exactly",
            applies_to=(f"Resource::{interfaces}",),
        )


def https_only_security_group(scope: Construct, construct_id: str, vpc: ec2.IVpc, user: str) -> ec2.SecurityGroup:
    """No ingress; egress TCP 443 only (AWS endpoints, NAT)."""
    group = ec2.SecurityGroup(
        scope,
        construct_id,
        vpc=vpc,
        description=f"{user}: HTTPS out only (AWS endpoints, NAT)",
        allow_all_outbound=False,
    )
    group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs and NAT")
    return group


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
        # tracing.mode otel: AWS's ADOT layer, one reference per stack (decision 112).
        self.tracing_layers: list[lambda_.ILayerVersion] = []
        if config.tracing.adot_layer_arn:
            self.tracing_layers.append(
                lambda_.LayerVersion.from_layer_version_arn(scope, "AdotLayer", config.tracing.adot_layer_arn)
            )
        self._scope = scope
        self._shared_groups: dict[str, ec2.SecurityGroup] = {}
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

    def shared_security_group(self, key: str) -> ec2.SecurityGroup:
        """The one security group of this kit's stack for every function that names `key`."""
        assert self.vpc is not None
        if key not in self._shared_groups:
            self._shared_groups[key] = https_only_security_group(
                self._scope, f"{key}SecurityGroup", self.vpc, f"{key} functions"
            )
        return self._shared_groups[key]

    def build(self, scope: Construct, construct_id: str, spec: FunctionSpec) -> PipelineFunction:
        return PipelineFunction(scope, construct_id, kit=self, spec=spec)
