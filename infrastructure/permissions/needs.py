"""What one function's role must grant: from its configuration (VPC, logs, tracing, event sources, destinations,
the keys of what it touches) and from its code (`code_resources`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infrastructure.aws_calls import aws_calls
from infrastructure.config import ChallengeSettings
from infrastructure.permissions.code_resources import CodeResources
from infrastructure.permissions.templates import MSK_NETWORK_ACTIONS, Function, Templates
from infrastructure.wiring import WiringPlan

ENI_ACTIONS_ON_INTERFACES = (
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


ENI_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")


# Stands for an id only known at run time (a task, a network interface, a log stream).
SAMPLE_ID = "example-id"


@dataclass(frozen=True)
class Need:
    action: str
    resource: str  # a concrete ARN ("*" for actions without resource-level permissions)
    why: str


# ------------------------------------------------------------------ needs
class NeedsOf:
    """What one function's role must grant, in one environment."""

    def __init__(self, templates: Templates, plan: WiringPlan) -> None:
        self.t = templates
        self.plan = plan
        self.names = plan.names
        self.config = plan.config
        cluster = self.config.ecs.cluster_arn
        self.sample_task = cluster.replace(":cluster/", ":task/", 1) + f"/{SAMPLE_ID}"
        self.code = CodeResources(templates, plan, self.sample_task)

    def function_key(self, name: str) -> tuple[str, ChallengeSettings | None] | None:
        names = self.names
        fixed = {
            names.router_function: "router",
            names.completion_function: "completion",
            names.sweeper_function: "sweeper",
            names.certificate_monitor_function: "certificate-monitor",
            names.scorer_token_refresher_function: "scorer-token-refresher",
        }
        if name in fixed:
            return fixed[name], None
        for challenge in self.config.challenges:
            if names.challenge_function(challenge.challenge_id) == name:
                return "challenge", challenge
        return None

    def of(self, function: Function) -> list[Need]:
        key = self.function_key(function.name)
        if key is None:
            raise ValueError(f"{function.name}: not a pipeline function the check knows")
        kind, challenge = key
        needs = [*self._configuration(function), *self._event_sources(function)]
        for call in sorted(aws_calls(kind)):
            resources = self.code.of(kind, challenge, call.iam_action)
            if resources is None:
                raise ValueError(f"{function.name}: no resource mapping for {call.iam_action} (add one)")
            needs.extend(Need(call.iam_action, r, f"code: {call.service}.{call.operation}") for r in resources)
        return [*needs, *self._keys(needs)]

    def _configuration(self, function: Function) -> list[Need]:
        props = function.properties
        needs: list[Need] = []
        vpc = props.get("VpcConfig")
        if vpc:
            interfaces = self.t.arn("ec2", f"network-interface/{SAMPLE_ID}")
            why = "VpcConfig: Lambda manages the function's ENIs (checked at CreateFunction)"
            needs.append(Need("ec2:CreateNetworkInterface", interfaces, why))
            for subnet in vpc["SubnetIds"]:
                subnet_arn = self.t.arn("ec2", f"subnet/{self.t.resolve(function.stack, subnet)}")
                needs.append(Need("ec2:CreateNetworkInterface", subnet_arn, why))
            for group in vpc["SecurityGroupIds"]:
                group_arn = self.t.arn("ec2", f"security-group/{self.t.resolve(function.stack, group)}")
                needs.append(Need("ec2:CreateNetworkInterface", group_arn, why))
            needs.extend(Need(a, interfaces, why) for a in ENI_ACTIONS_ON_INTERFACES)
            needs.extend(Need(a, "*", why) for a in ENI_DESCRIBE_ACTIONS)
        log_group = props.get("LoggingConfig", {}).get("LogGroup")
        if log_group is not None:
            name = self.t.resolve(function.stack, log_group)
            stream = self.t.arn("logs", f"log-group:{name}:log-stream:{SAMPLE_ID}")
            needs.extend(Need(a, stream, "its log group") for a in ("logs:CreateLogStream", "logs:PutLogEvents"))
        if props.get("TracingConfig", {}).get("Mode") == "Active":
            needs.extend(Need(a, "*", "active tracing") for a in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"))
        return needs

    def _event_sources(self, function: Function) -> list[Need]:
        needs: list[Need] = []
        ref = {"Ref": function.logical_id}
        for stack, _, mapping in self.t.resources("AWS::Lambda::EventSourceMapping"):
            props = mapping["Properties"]
            if stack != function.stack or props.get("FunctionName") != ref:
                continue
            source = self.t.resolve(stack, props["EventSourceArn"])
            if ":sqs:" in source:
                why = "SQS event source"
                needs.extend(
                    Need(a, source, why) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
                )
            elif ":kafka:" in source:
                needs.extend(self._kafka(stack, props, source))
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination is not None:
                needs.extend(self._destination(self.t.resolve(stack, destination), "event source on-failure"))
        for stack, _, config in self.t.resources("AWS::Lambda::EventInvokeConfig"):
            props = config["Properties"]
            if stack != function.stack or props.get("FunctionName") != ref:
                continue
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination is not None:
                needs.extend(self._destination(self.t.resolve(stack, destination), "async on-failure destination"))
        return needs

    def _kafka(self, stack: str, props: dict[str, Any], cluster: str) -> list[Need]:
        # https://docs.aws.amazon.com/lambda/latest/dg/with-msk-permissions.html
        why = "MSK event source mapping"
        needs = [Need(a, cluster, why) for a in ("kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers")]
        needs.extend(Need(a, "*", why) for a in MSK_NETWORK_ACTIONS)
        access = props.get("SourceAccessConfigurations", [])
        if not access:  # IAM access control
            needs.extend(
                Need(a, cluster, why)
                for a in ("kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration")
            )
            # Each mapping reads its one topic as its own consumer group (one mapping per platform).
            planned = {
                source.topic: (topic_arn, group_arn)
                for source, topic_arn, group_arn in zip(
                    self.plan.kafka_sources(), self.plan.kafka_topic_arns(), self.plan.kafka_group_arns(), strict=True
                )
            }
            for topic in props.get("Topics", []):
                if topic not in planned:
                    raise ValueError(f"{stack}: event source mapping on {topic!r}, a topic the plan does not subscribe")
                topic_arn, group_arn = planned[topic]
                needs.extend(Need(a, topic_arn, why) for a in ("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"))
                needs.extend(
                    Need(a, group_arn, why) for a in ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup")
                )
        for entry in access:
            if entry["Type"] in ("SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE"):
                secret = self.t.resolve(stack, entry["URI"])
                # with-msk-permissions.html, optional permissions: read the secret, and describe it (SASL/SCRAM, mTLS)
                needs.extend(
                    Need(a, secret, f"{why}: {entry['Type']} secret")
                    for a in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
                )
                key = self.config.kafka.secret_kms_key_arn
                if key:
                    needs.append(Need("kms:Decrypt", key, f"{why}: the secret's key"))
        return needs

    def _destination(self, arn: str, why: str) -> list[Need]:
        if ":sqs:" in arn:
            return [Need("sqs:SendMessage", arn, why)]
        if arn.startswith(f"arn:{self.t.partition}:s3:"):
            # https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html (S3 destinations)
            return [Need("s3:PutObject", f"{arn}/{SAMPLE_ID}", why), Need("s3:ListBucket", arn, why)]
        if ":sns:" in arn:
            return [Need("sns:Publish", arn, why)]
        if ":lambda:" in arn:
            return [Need("lambda:InvokeFunction", arn, why)]
        raise ValueError(f"unknown destination {arn}")

    def _keys(self, needs: list[Need]) -> list[Need]:
        """Each encrypted queue or topic a need reads or writes -> its key (SQS and SNS with a CMK)."""
        keys: list[Need] = []
        for need in needs:
            service, _, operation = need.action.partition(":")
            if service == "sqs" and operation in ("SendMessage", "ReceiveMessage"):
                key = self.t.key_of("AWS::SQS::Queue", "QueueName", need.resource.rsplit(":", 1)[-1])
                actions = ("kms:GenerateDataKey", "kms:Decrypt") if operation == "SendMessage" else ("kms:Decrypt",)
            elif service == "sns" and operation == "Publish":
                key = self.t.key_of("AWS::SNS::Topic", "TopicName", need.resource.rsplit(":", 1)[-1])
                actions = ("kms:GenerateDataKey", "kms:Decrypt")
            elif need.action == "secretsmanager:GetSecretValue" and need.resource in self._kafka_secrets():
                # Kafka secrets live under a customer-managed key (decision 054); read through Secrets Manager
                key = self.config.kafka.secret_kms_key_arn
                actions = ("kms:Decrypt",)
            else:
                continue
            if key is not None:
                keys.extend(Need(a, key, f"the key of {need.resource} ({need.action})") for a in actions)
        return keys

    def _kafka_secrets(self) -> set[str]:
        kafka = self.config.kafka
        return {arn for arn in (kafka.sasl_scram_secret_arn, kafka.client_certificate_secret_arn) if arn}
