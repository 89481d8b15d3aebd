"""DynamoDB: the challenge table and the status table, shaped exactly like `mm_shared.tables`; challenge rows.

On-demand, point-in-time recovery, AWS-owned encryption (decision 044). The status table is RETAINed: it
is the record of what was scored and reported. The challenge table is DESTROYed: the stacks rewrite it
from config.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from infrastructure.mm_constructs.arns import Arns
from infrastructure.mm_constructs.nag import acknowledge
from infrastructure.wiring import WiringPlan, dynamodb_item
from mm_shared.constants import STATUS_TABLE_TTL_ATTRIBUTE
from mm_shared.models.challenge import ChallengeRecord
from mm_shared.tables import challenge_table_definition, status_table_definition

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER, "B": dynamodb.AttributeType.BINARY}


def _attribute(definition: dict[str, Any], name: str) -> dynamodb.Attribute:
    types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}
    return dynamodb.Attribute(name=name, type=_TYPES[types[name]])


def _key(definition: dict[str, Any], schema: list[dict[str, str]]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for element in schema:
        role = "partition_key" if element["KeyType"] == "HASH" else "sort_key"
        keys[role] = _attribute(definition, element["AttributeName"])
    return keys


def table_from_definition(
    scope: Construct, construct_id: str, definition: dict[str, Any], *, removal_policy: RemovalPolicy, ttl: str | None
) -> dynamodb.Table:
    """A CDK table from a `mm_shared.tables` definition: same keys, GSIs and projections."""
    table = dynamodb.Table(
        scope,
        construct_id,
        table_name=definition["TableName"],
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.DEFAULT,  # AWS-owned key (decision 044)
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=ttl,
        removal_policy=removal_policy,
        **_key(definition, definition["KeySchema"]),
    )
    for index in definition.get("GlobalSecondaryIndexes", []):
        projection = index["Projection"]
        table.add_global_secondary_index(
            index_name=index["IndexName"],
            projection_type=dynamodb.ProjectionType[projection["ProjectionType"]],
            non_key_attributes=projection.get("NonKeyAttributes"),
            **_key(definition, index["KeySchema"]),
        )
    return table


class DataTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, plan: WiringPlan) -> None:
        super().__init__(scope, construct_id)
        self.challenge_table = table_from_definition(
            self,
            "ChallengeTable",
            challenge_table_definition(plan.names.challenge_table),
            removal_policy=RemovalPolicy.DESTROY,
            ttl=None,
        )
        self.status_table = table_from_definition(
            self,
            "StatusTable",
            status_table_definition(plan.names.status_table),
            removal_policy=RemovalPolicy.RETAIN,
            ttl=STATUS_TABLE_TTL_ATTRIBUTE,
        )


class ChallengeRows(Construct):
    """Writes one challenge's challenge-table rows (its item and a legacy-id alias) and deletes them on removal."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str,
        records: list[ChallengeRecord],
        role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        items = [dynamodb_item(record) for record in records]
        keys = [{"challengeId": item["challengeId"]} for item in items]
        physical_id = cr.PhysicalResourceId.of(f"{table_name}/{records[0].challenge_id}")
        put = cr.AwsSdkCall(
            service="DynamoDB",
            action="batchWriteItem",
            parameters={"RequestItems": {table_name: [{"PutRequest": {"Item": item}} for item in items]}},
            physical_resource_id=physical_id,
        )
        delete = cr.AwsSdkCall(
            service="DynamoDB",
            action="batchWriteItem",
            parameters={"RequestItems": {table_name: [{"DeleteRequest": {"Key": key}} for key in keys]}},
            physical_resource_id=physical_id,
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Rows",
            on_create=put,
            on_update=put,
            on_delete=delete,
            role=role,
            install_latest_aws_sdk=False,
        )


def challenge_rows_role(scope: Construct, construct_id: str, *, table: dynamodb.ITable, arns: Arns) -> iam.Role:
    """One role for the custom-resource provider of a stack: BatchWriteItem on the challenge table only."""
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="Writes challenge-table rows from config (AwsCustomResource provider)",
    )
    role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:BatchWriteItem"], resources=[table.table_arn]))
    log_groups = f"arn:{arns.partition}:logs:{arns.region}:{arns.account}:log-group:/aws/lambda/*"
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_groups],
        )
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5",
        "The AwsCustomResource provider's function name is generated by CDK, so its log group is only known "
        "as a /aws/lambda/* pattern",
        applies_to=(f"Resource::{log_groups}",),
    )
    return role
