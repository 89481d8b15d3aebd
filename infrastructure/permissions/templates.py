"""The synthesized templates as IAM reads them: references resolved to ARNs, each role's grants, wildcard matching.

Pure Python over template dicts: no CDK import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from infrastructure.config import EnvironmentConfig

# What the MSK event source mapping needs to reach the cluster's VPC (with-msk-permissions.html, VPC permissions).
MSK_NETWORK_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)


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
        """Every (effect, action, resource) the role's policies hold, resources resolved; managed ones as known."""
        grants: list[Grant] = []
        for source, document in self._policy_documents(stack, role_logical_id):
            for statement in as_list(document["Statement"]):
                if "NotAction" in statement or "NotResource" in statement:
                    raise ValueError(f"{source}: NotAction/NotResource are not evaluated here")
                for action in as_list(statement["Action"]):
                    for resource in as_list(statement["Resource"]):
                        grants.append(Grant(statement["Effect"], action, self.resolve(stack, resource), source))
        return [*grants, *self._managed_grants(stack, role_logical_id)]

    def _policy_documents(self, stack: str, role_logical_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The role's inline policies and the `AWS::IAM::Policy` resources attached to it, with their source."""
        role = self.templates[stack]["Resources"][role_logical_id]
        documents: list[tuple[str, dict[str, Any]]] = [
            (f"{role_logical_id} inline {policy['PolicyName']}", policy["PolicyDocument"])
            for policy in role["Properties"].get("Policies", [])
        ]
        for logical_id, policy in self.templates[stack]["Resources"].items():
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
                documents.append((logical_id, policy["Properties"]["PolicyDocument"]))
        return documents

    def _managed_grants(self, stack: str, role_logical_id: str) -> list[Grant]:
        role = self.templates[stack]["Resources"][role_logical_id]
        grants: list[Grant] = []
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            resolved = self.resolve(stack, arn)
            name = resolved.split(":policy/", 1)[-1]
            if name not in MANAGED_POLICIES:
                raise ValueError(f"{role_logical_id}: managed policy {resolved} is not known to the check")
            grants.extend(Grant("Allow", action, "*", f"managed {name}") for action in MANAGED_POLICIES[name][0])
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
