"""The router construct (`mm_constructs/router.py`): its Kafka event sources, its role, its audit-marks table.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import pytest

from infrastructure.wiring import WiringPlan
from mm_contracts.tables import AUDIT_MARKS_TTL_ATTRIBUTE, audit_marks_table_definition
from tests.infrastructure.templates import as_list, by_name, functions, resources, role_statements, statements_for
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_kafka_event_source_runs_in_provisioned_mode_with_bounded_retries(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    core = synthesized.templates["mm-example-core"]
    (esm,) = [r["Properties"] for _, r in resources(core, "AWS::Lambda::EventSourceMapping")]
    source = plan.kafka_source()
    failure_bucket = next(
        lid
        for lid, b in resources(core, "AWS::S3::Bucket")
        if b["Properties"]["BucketName"] == plan.names.router_failure_bucket(plan.config.account, plan.config.region)
    )
    assert esm["EventSourceArn"] == plan.config.kafka.cluster_arn
    assert esm["Topics"] == [source.topic]
    assert esm["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": source.consumer_group_id}
    assert esm["ProvisionedPollerConfig"] == {
        "MinimumPollers": source.minimum_pollers,
        "MaximumPollers": source.maximum_pollers,
    }
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["MaximumRetryAttempts"] == source.retry_attempts
    assert esm["MaximumRecordAgeInSeconds"] == source.max_record_age_seconds
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["BatchSize"] == source.batch_size
    assert esm["MaximumBatchingWindowInSeconds"] == source.batching_window_seconds
    assert esm["StartingPosition"] == source.starting_position
    assert esm["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [failure_bucket, "Arn"]}}}


def test_router_role_holds_only_what_the_router_does(synthesized: Synthesized, plan: WiringPlan) -> None:
    core = synthesized.templates["mm-example-core"]
    _stack, _lid, fn = functions(synthesized)["mm-example-router"]
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = {a for s in role_statements(core, role_id) for a in as_list(s["Action"])}
    assert actions == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ec2:CreateNetworkInterface",  # the router is in the VPC (decision 048)
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:SendMessage",  # the audit queue
        "s3:PutObject",  # the event source mapping's failure bucket (decision 055)
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kafka:DescribeCluster",
        "kafka:GetBootstrapBrokers",
        "kafka:ListScramSecrets",
        "sns:Publish",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",  # audit marks only (decision 075)
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:ReadData",
        "kafka-cluster:DescribeGroup",
        "kafka-cluster:AlterGroup",
    }
    statements = role_statements(core, role_id)
    assert statements_for(statements, "kafka-cluster:ReadData")[0]["Resource"] == plan.kafka_topic_arn()
    assert statements_for(statements, "kafka-cluster:AlterGroup")[0]["Resource"] == plan.kafka_group_arn()


def test_router_audit_marks_table_expires_its_items_and_only_the_router_writes_it(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    # Decision 075: one mark per audited Kafka record, expiring by TTL; the router may read and write only it.
    core = synthesized.templates["mm-example-core"]
    stack, marks_id, marks = by_name(synthesized, "AWS::DynamoDB::Table", "TableName")[plan.names.audit_marks_table]
    assert stack == "mm-example-core"
    definition = audit_marks_table_definition(plan.names.audit_marks_table)
    assert marks["Properties"]["KeySchema"] == definition["KeySchema"]
    assert marks["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": AUDIT_MARKS_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    _stack, _lid, fn = functions(synthesized)["mm-example-router"]
    assert fn["Properties"]["Environment"]["Variables"]["AUDIT_MARKS_TABLE_NAME"] == plan.names.audit_marks_table
    statements = role_statements(core, fn["Properties"]["Role"]["Fn::GetAtt"][0])
    (write,) = statements_for(statements, "dynamodb:BatchWriteItem")
    assert write["Resource"] == {"Fn::GetAtt": [marks_id, "Arn"]}
