"""What each function's role must grant, and whether the synthesized templates grant exactly that (decision 048).

moto evaluates no IAM, so this reads the templates as IAM would: a function's needs come from its configuration
(VPC -> the ENI actions Lambda checks at CreateFunction, its log group, tracing, its event sources and
destinations, the KMS key of each topic or queue it touches) and from its code (`aws_calls`, each action mapped
to the resources it targets in this environment). Each need must be allowed by a statement of the function's
role (inline policies, attached `AWS::IAM::Policy` resources, known managed policies), resource patterns matched
after resolving `Ref` / `Fn::GetAtt` / `Fn::Join` / `Fn::ImportValue` to ARNs, and no Deny may match it. The
reverse: a granted (action, resource) no need covers is a grant the code never uses, unless it is one of the
few CDK adds with its own grants (`CDK_GRANT_EXTRAS`, each with its reason).

Pure Python over template dicts: no CDK import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from infrastructure.aws_calls import aws_calls
from infrastructure.config import ChallengeSettings, EnvironmentConfig
from infrastructure.wiring import ResourceRefs, WiringPlan
from mm_contracts.models.challenge import ScorerCredentialsMode
from mm_contracts.names import STATUS_TABLE_OVERDUE_INDEX, static_token_parameter_name
from mm_contracts.settings import TokenSource

ENI_ACTIONS_ON_INTERFACES = (
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
ENI_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
# What the MSK event source mapping needs to reach the cluster's VPC (with-msk-permissions.html, VPC permissions).
MSK_NETWORK_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)
SAMPLE_ID = "example-id"
# Deploy-time references a function's settings need only to be built (the values never matter here).
_NO_REFS = ResourceRefs(
    sns_topic_arn="-", challenge_table_name="-", status_table_name="-", audit_queue_url="-"
)  # stands for an id only known at run time (a task, a network interface, a log stream)

# Documents of the AWS managed policies CDK attaches to our roles (a role with another one fails the check).
MANAGED_POLICIES: dict[str, tuple[tuple[str, ...], str]] = {
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaMSKExecutionRole.html
    "service-role/AWSLambdaMSKExecutionRole": (
        (
            "kafka:DescribeCluster",
            "kafka:DescribeClusterV2",
            "kafka:GetBootstrapBrokers",
            *MSK_NETWORK_ACTIONS,
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ),
        "attached by CDK's ManagedKafkaEventSource to the router role (the event source mapping's own needs)",
    ),
}

# Actions CDK's own grants add beyond what the service uses here; the check accepts them, nothing else.
CDK_GRANT_EXTRAS: dict[str, str] = {
    "sqs:GetQueueUrl": "queue.grantSendMessages/grantConsumeMessages (on-failure destinations, SQS event source)",
    "sqs:GetQueueAttributes": "queue.grantSendMessages (on-failure destinations)",
    "sqs:ChangeMessageVisibility": "queue.grantConsumeMessages (SQS event source)",
    "kms:Encrypt": "key.grantEncryptDecrypt behind queue.grantSendMessages (on-failure destination)",
    "kms:ReEncrypt*": "key.grantEncryptDecrypt behind queue.grantSendMessages (on-failure destination)",
    "kafka:DescribeCluster": "ManagedKafkaEventSource's cluster statement (the mapping uses DescribeClusterV2)",
    "kafka:ListScramSecrets": "ManagedKafkaEventSource's cluster statement",
}


@dataclass(frozen=True)
class Need:
    action: str
    resource: str  # a concrete ARN ("*" for actions without resource-level permissions)
    why: str


@dataclass(frozen=True)
class Grant:
    effect: str
    action: str  # may hold IAM wildcards
    resource: str  # resolved, may hold IAM wildcards
    source: str  # which policy


@dataclass(frozen=True)
class Function:
    stack: str
    logical_id: str
    name: str
    properties: dict[str, Any]


@dataclass
class Findings:
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    cdk_extras_seen: set[str] = field(default_factory=set)


def _wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE if ignore_case else 0)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return bool(_wildcard(pattern, ignore_case=ignore_case).match(value))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Templates:
    """The synthesized templates of one environment, with references resolved to ARNs as IAM sees them."""

    def __init__(self, templates: dict[str, dict[str, Any]], config: EnvironmentConfig) -> None:
        self.templates = templates
        self.config = config
        self.partition = config.kafka.cluster_arn.split(":")[1]
        self.exports: dict[str, tuple[str, Any]] = {
            output["Export"]["Name"]: (stack, output["Value"])
            for stack, template in templates.items()
            for output in template.get("Outputs", {}).values()
            if isinstance(output.get("Export", {}).get("Name"), str)
        }

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.config.region if region else ''}:"
            f"{self.config.account if account else ''}:{resource}"
        )

    def resource(self, stack: str, logical_id: str) -> dict[str, Any]:
        return dict(self.templates[stack]["Resources"][logical_id])

    def resources(self, type_: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for stack, template in self.templates.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] == type_:
                    yield stack, logical_id, resource

    def by_name(self, type_: str, name_property: str, name: str) -> tuple[str, str, dict[str, Any]] | None:
        for stack, logical_id, resource in self.resources(type_):
            if self.resolve(stack, resource.get("Properties", {}).get(name_property)) == name:
                return stack, logical_id, resource
        return None

    def resolve(self, stack: str, value: Any) -> str:
        if value is None or isinstance(value, str):
            return value  # type: ignore[return-value]
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._ref(stack, argument)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self._get_att(stack, logical_id, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(self.resolve(stack, part) for part in parts)
            if function == "Fn::ImportValue":
                name = self.resolve(stack, argument)
                exporting_stack, exported = self.exports[name]
                return self.resolve(exporting_stack, exported)
        raise ValueError(f"{stack}: cannot resolve {value!r}")

    def _ref(self, stack: str, name: str) -> str:
        pseudo = {
            "AWS::Partition": self.partition,
            "AWS::Region": self.config.region,
            "AWS::AccountId": self.config.account,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        resource = self.templates[stack]["Resources"].get(name)
        if resource is None:
            return f"${{{stack}/{name}}}"
        props = resource.get("Properties", {})
        named = {
            "AWS::SNS::Topic": lambda: self.arn("sns", self.resolve(stack, props["TopicName"])),
            "AWS::DynamoDB::Table": lambda: self.resolve(stack, props["TableName"]),
            "AWS::Lambda::Function": lambda: self.resolve(stack, props["FunctionName"]),
            "AWS::Logs::LogGroup": lambda: self.resolve(stack, props["LogGroupName"]),
            "AWS::S3::Bucket": lambda: self.resolve(stack, props["BucketName"]),
        }
        if resource["Type"] in named:
            try:
                return named[resource["Type"]]()
            except KeyError:  # no physical name: only the placeholder
                pass
        return f"${{{stack}/{name}}}"

    def _get_att(self, stack: str, logical_id: str, attribute: str) -> str:
        resource = self.templates[stack]["Resources"][logical_id]
        props = resource.get("Properties", {})
        type_ = resource["Type"]
        try:
            if attribute == "Arn":
                if type_ == "AWS::DynamoDB::Table":
                    return self.arn("dynamodb", f"table/{self.resolve(stack, props['TableName'])}")
                if type_ == "AWS::SQS::Queue":
                    return self.arn("sqs", self.resolve(stack, props["QueueName"]))
                if type_ == "AWS::Logs::LogGroup":
                    return self.arn("logs", f"log-group:{self.resolve(stack, props['LogGroupName'])}:*")
                if type_ == "AWS::Lambda::Function":
                    return self.arn("lambda", f"function:{self.resolve(stack, props['FunctionName'])}")
                if type_ == "AWS::S3::Bucket":
                    return self.arn("s3", self.resolve(stack, props["BucketName"]), region=False, account=False)
                if type_ == "AWS::KMS::Key":
                    return self.arn("kms", f"key/${{{stack}/{logical_id}}}")
            if attribute == "TopicArn" and type_ == "AWS::SNS::Topic":
                return self.arn("sns", self.resolve(stack, props["TopicName"]))
        except KeyError:
            pass
        return f"${{{stack}/{logical_id}.{attribute}}}"

    # ---------------------------------------------------------------- roles
    def grants(self, stack: str, role_logical_id: str) -> list[Grant]:
        role = self.templates[stack]["Resources"][role_logical_id]
        documents: list[tuple[str, dict[str, Any]]] = [
            (f"{role_logical_id} inline {policy['PolicyName']}", policy["PolicyDocument"])
            for policy in role["Properties"].get("Policies", [])
        ]
        for logical_id, policy in self.templates[stack]["Resources"].items():
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
                documents.append((logical_id, policy["Properties"]["PolicyDocument"]))
        grants: list[Grant] = []
        for source, document in documents:
            for statement in as_list(document["Statement"]):
                if "NotAction" in statement or "NotResource" in statement:
                    raise ValueError(f"{source}: NotAction/NotResource are not evaluated here")
                for action in as_list(statement["Action"]):
                    for resource in as_list(statement["Resource"]):
                        grants.append(Grant(statement["Effect"], action, self.resolve(stack, resource), source))
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            resolved = self.resolve(stack, arn)
            name = resolved.split(":policy/", 1)[-1]
            if name not in MANAGED_POLICIES:
                raise ValueError(f"{role_logical_id}: managed policy {resolved} is not known to the check")
            for action in MANAGED_POLICIES[name][0]:
                grants.append(Grant("Allow", action, "*", f"managed {name}"))
        return grants

    def functions(self) -> list[Function]:
        return [
            Function(
                stack, logical_id, self.resolve(stack, resource["Properties"]["FunctionName"]), resource["Properties"]
            )
            for stack, logical_id, resource in self.resources("AWS::Lambda::Function")
            if "FunctionName" in resource.get("Properties", {})
        ]

    def key_of(self, type_: str, name_property: str, name: str) -> str | None:
        """The KMS key ARN protecting the queue or topic of that name, if it is encrypted."""
        found = self.by_name(type_, name_property, name)
        if found is None:
            return None
        stack, _, resource = found
        key = resource["Properties"].get("KmsMasterKeyId")
        return None if key is None else self.resolve(stack, key)


def allowed(grants: Iterable[Grant], action: str, resource: str) -> bool:
    applicable = [g for g in grants if matches(g.action, action, ignore_case=True) and matches(g.resource, resource)]
    return any(g.effect == "Allow" for g in applicable) and not any(g.effect == "Deny" for g in applicable)


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
            resources = self._code_resources(kind, challenge, call.iam_action)
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

    # ---------------------------------------------------------------- code -> resources
    def _code_resources(self, kind: str, challenge: ChallengeSettings | None, action: str) -> list[str] | None:
        names, t, config = self.names, self.t, self.config
        status = t.arn("dynamodb", f"table/{names.status_table}")
        capacity = t.arn("dynamodb", f"table/{names.capacity_table}")
        capacity_parameter = t.arn("ssm", f"parameter/{self.plan.capacity_parameter().lstrip('/')}")
        challenge_queues = [t.arn("sqs", names.challenge_queue(c.challenge_id)) for c in config.challenges]
        token = config.token
        static_token = [t.arn("ssm", f"parameter/{static_token_parameter_name(config.ssm_prefix).lstrip('/')}")]
        auth0_secret = [token.auth0_credentials_secret_arn] if token.auth0_credentials_secret_arn else []
        reads_static = token.source is TokenSource.STATIC_PARAMETER
        configs = [
            t.arn("ssm", f"parameter/{self.plan.challenge_config_parameter(c.challenge_id).lstrip('/')}")
            for c in config.challenges
        ]
        # Only the capacity table: its queue entries come and go (DeleteItem), its pool partition is read whole
        # (Query), and no transaction deletes or merely checks a run item (decision 097: a test holds the
        # store's transactions to this).
        capacity_only = {
            "dynamodb:DeleteItem": [capacity],
            "dynamodb:Query": [capacity],
            "dynamodb:ConditionCheckItem": [capacity],
        }
        if kind == "router":
            return {
                "sns:Publish": [t.arn("sns", names.submissions_topic)],
                "dynamodb:BatchGetItem": [
                    t.arn("dynamodb", f"table/{names.challenge_table}"),
                    t.arn("dynamodb", f"table/{names.audit_marks_table}"),
                ],
                "dynamodb:BatchWriteItem": [t.arn("dynamodb", f"table/{names.audit_marks_table}")],
                "sqs:SendMessage": [t.arn("sqs", names.audit_queue)],
            }.get(action)
        if kind == "challenge":
            assert challenge is not None
            # Only the insecure mode makes the processor itself read the token (challenge_lambda.credentials).
            insecure = challenge.scorer_credentials_mode is ScorerCredentialsMode.ENVIRONMENT_TOKEN_INSECURE
            own_config = t.arn(
                "ssm", f"parameter/{self.plan.challenge_config_parameter(challenge.challenge_id).lstrip('/')}"
            )
            # The code invokes the completion function its environment names (a v6 challenge's skipped runs);
            # a challenge whose environment names none never makes the call.
            completion_function = self.plan.challenge_settings(challenge, _NO_REFS).completion_function_name
            return {
                "lambda:InvokeFunction": [t.arn("lambda", f"function:{completion_function}")]
                if completion_function
                else [],
                "dynamodb:BatchGetItem": [status],  # a submission's runs (supersede reads the member's others)
                "dynamodb:GetItem": [status, capacity],
                # a run is created WAITING in the enqueue transaction (status) with its queue entry (capacity)
                "dynamodb:PutItem": [status, capacity],
                "dynamodb:UpdateItem": [status, capacity],
                **capacity_only,
                "ecs:RunTask": [challenge.task_definition_arn],
                "ecs:TagResource": [self.sample_task],
                "ecs:StopTask": [self.sample_task],  # a superseded running task (decision 095)
                "iam:PassRole": [challenge.task_role_arn, challenge.execution_role_arn],
                # its admitted runs go to its own queue, never another challenge's
                "sqs:SendMessage": [t.arn("sqs", names.challenge_queue(challenge.challenge_id))],
                "ssm:GetParameter": [
                    own_config,
                    capacity_parameter,
                    *(static_token if insecure and reads_static else []),
                ],
                "secretsmanager:GetSecretValue": auth0_secret if insecure and not reads_static else [],
            }.get(action)
        if kind == "completion":
            return {
                "dynamodb:BatchGetItem": [status],  # the runs of a submission (`get_runs`, decision 084)
                "dynamodb:GetItem": [status, capacity],
                # a run's item is never created here: PutItem only for a transaction's queue entry (a requeue)
                "dynamodb:PutItem": [capacity],
                "dynamodb:UpdateItem": [status, capacity],
                **capacity_only,
                "ecs:DescribeTasks": [self.sample_task],
                # a transient start failure goes back to its challenge's queue (decision 072), and an admitted run
                # of any challenge to its queue (decision 096)
                "sqs:GetQueueUrl": challenge_queues,
                "sqs:SendMessage": challenge_queues,
                "ssm:GetParameter": [*configs, capacity_parameter, *(static_token if reads_static else [])],
                "secretsmanager:GetSecretValue": [] if reads_static else auth0_secret,
            }.get(action)
        if kind == "sweeper":
            return {
                **capacity_only,
                "dynamodb:Query": [
                    t.arn("dynamodb", f"table/{names.status_table}/index/{STATUS_TABLE_OVERDUE_INDEX}"),
                    capacity,
                ],
                "dynamodb:GetItem": [status, capacity],
                "dynamodb:PutItem": [capacity],  # a transaction's queue entry; never a run's item
                "dynamodb:BatchGetItem": [status],
                "dynamodb:UpdateItem": [status, capacity],
                "ecs:DescribeTasks": [self.sample_task],
                "ecs:StopTask": [self.sample_task],
                "ecs:ListTasks": ["*"],  # no resource-level permission; held to the cluster by condition
                "lambda:InvokeFunction": [t.arn("lambda", f"function:{names.completion_function}")],
                # the safety-net dispatch and overdue admissions: any challenge's caps and queue (decision 096)
                "sqs:GetQueueUrl": challenge_queues,
                "sqs:SendMessage": challenge_queues,
                "ssm:GetParameter": [*configs, capacity_parameter],
            }.get(action)
        if kind == "certificate-monitor":
            secret = config.kafka.client_certificate_secret_arn
            return {"secretsmanager:GetSecretValue": [secret] if secret else []}.get(action)
        if kind == "scorer-token-refresher":
            # its one parameter (read, then created or overwritten: decision 091), and the Auth0 credentials
            scorer_token = self.plan.scorer_token_parameter()
            parameter = [t.arn("ssm", f"parameter/{scorer_token.lstrip('/')}")] if scorer_token else []
            return {
                "ssm:GetParameter": parameter,
                "ssm:PutParameter": parameter,
                "secretsmanager:GetSecretValue": auth0_secret,
            }.get(action)
        return None


def check(templates: Templates, plan: WiringPlan) -> Findings:
    """Every need of every pipeline function granted, and every grant needed (or a known CDK extra)."""
    findings = Findings()
    needs_of = NeedsOf(templates, plan)
    for function in templates.functions():
        if needs_of.function_key(function.name) is None:
            findings.missing.append(f"{function.name}: a function the permission check does not know")
            continue
        role = function.properties["Role"]
        role_id = role["Fn::GetAtt"][0]
        grants = templates.grants(function.stack, role_id)
        needs = needs_of.of(function)
        for need in needs:
            if not allowed(grants, need.action, need.resource):
                findings.missing.append(f"{function.name}: missing {need.action} on {need.resource} ({need.why})")
        for grant in grants:
            if grant.effect != "Allow" or grant.source.startswith("managed "):
                continue
            used = any(
                matches(grant.action, n.action, ignore_case=True) and matches(grant.resource, n.resource) for n in needs
            )
            if used:
                continue
            if grant.action in CDK_GRANT_EXTRAS:
                findings.cdk_extras_seen.add(grant.action)
                continue
            findings.unused.append(
                f"{function.name}: {grant.action} on {grant.resource} is granted but never used ({grant.source})"
            )
    return findings
