"""DynamoDB: the challenge, status and capacity tables, shaped exactly like their shared definitions; challenge rows.

On-demand, point-in-time recovery, AWS-owned encryption (decision 044). With `retainData` (production) the
tables are RETAINed and deletion-protected: the status table is the record of what was scored and reported,
a deleted challenge table stops all routing, and the capacity table holds the waiting runs' queue entries and
the slots in use (decision 097). A developer's environment (`retainData: false`) destroys them cleanly
(decision 053).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infrastructure.mm_constructs.functions import retention
from infrastructure.wiring import WiringPlan, dynamodb_item
from mm_capacity.store import capacity_table_definition
from mm_contracts.models.challenge import ChallengeRecord
from mm_contracts.names import CAPACITY_TABLE_TTL_ATTRIBUTE, STATUS_TABLE_TTL_ATTRIBUTE
from mm_contracts.tables import challenge_table_definition, status_table_definition

# What the capacity table takes from each function that keeps slots (challenge, completion, sweeper): reads
# (GetItem, Query of a partition), the atomic pool counters (UpdateItem), queue entries (PutItem, DeleteItem)
# and the item actions of TransactWriteItems, which IAM authorizes per item as these actions (decision 097).
CAPACITY_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)

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
    scope: Construct,
    construct_id: str,
    definition: dict[str, Any],
    *,
    removal_policy: RemovalPolicy,
    ttl: str | None,
    deletion_protection: bool = False,
) -> dynamodb.Table:
    """A CDK table from a `mm_contracts.tables` definition: same keys, GSIs and projections."""
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
        deletion_protection=deletion_protection,
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
        retain = plan.config.retain_data
        # RETAIN survives a stack deletion; deletion protection also refuses a replacement or a DeleteTable call.
        removal_policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        self.challenge_table = table_from_definition(
            self,
            "ChallengeTable",
            challenge_table_definition(plan.names.challenge_table),
            removal_policy=removal_policy,
            deletion_protection=retain,
            ttl=None,
        )
        # One item per run, keyed by `runId` (decision 084). CloudFormation replaces a table whose KeySchema
        # changes and cannot replace a custom-named resource: a new name and logical id, so the v5-only table
        # (`StatusTable`) leaves the template and is kept by its Retain policies (docs/deploy.md, upgrade).
        self.status_table = table_from_definition(
            self,
            "RunTable",
            status_table_definition(plan.names.status_table),
            removal_policy=removal_policy,
            deletion_protection=retain,
            ttl=STATUS_TABLE_TTL_ATTRIBUTE,
        )
        # Slots, waiting queues, member rounds and RunTask pace (decision 097): a table of its own, not a GSI on
        # the status table (CloudFormation adds one GSI per update; a GSI query is only eventually consistent).
        # Kept like the status table: its queue entries are the waiting runs' place, and its pools the slots.
        self.capacity_table = table_from_definition(
            self,
            "CapacityTable",
            capacity_table_definition(plan.names.capacity_table),
            removal_policy=removal_policy,
            deletion_protection=retain,
            ttl=CAPACITY_TABLE_TTL_ATTRIBUTE,
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
        if not isinstance(role, ChallengeRowsRole):
            # The provider is a stack singleton: it must log to the one log group its role may write to.
            raise TypeError("ChallengeRows needs a ChallengeRowsRole (it carries the provider's log group)")
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
            log_group=role.provider_log_group,
            install_latest_aws_sdk=False,
        )


class ChallengeRowsRole(iam.Role):
    """The role of a stack's AwsCustomResource provider, and the log group that provider writes to.

    BatchWriteItem on the challenge table only; logs only to its own log group, kept for the environment's
    retention (without one, Lambda creates `/aws/lambda/<generated name>` that never expires).
    """

    def __init__(self, scope: Construct, construct_id: str, *, table: dynamodb.ITable, log_retention_days: int) -> None:
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}ProviderLogs",
            retention=retention(log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,  # decision 045: logs expire by retention, not by stack
        )
        # Inline, so the role exists with its statements before the provider function runs.
        statements = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(actions=["dynamodb:BatchWriteItem"], resources=[table.table_arn]),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
            ]
        )
        super().__init__(
            scope,
            construct_id,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Writes challenge-table rows from config (AwsCustomResource provider)",
            inline_policies={"ChallengeRows": statements},
        )
        self.provider_log_group = log_group
