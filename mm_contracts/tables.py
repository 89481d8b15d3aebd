"""DynamoDB table shapes: one definition for the tests and the local pipeline (`create_table` kwargs).

The CDK constructs declare the same key names from `mm_contracts.names`; a test compares the
synthesized template with these definitions, so the emulated tables and the deployed ones agree.
"""

from __future__ import annotations

from typing import Any

from mm_contracts.names import (
    CHALLENGE_TABLE_PARTITION_KEY,
    STATUS_TABLE_CHALLENGE_INDEX,
    STATUS_TABLE_OVERDUE_INDEX,
    STATUS_TABLE_PARTITION_KEY,
    STATUS_TABLE_TTL_ATTRIBUTE,
)

# What the `byChallenge` index projects besides its keys and `runId`: written when a run's item is created, never
# changed after (a rerun reopens the item and keeps them). A write that changes none of an index's attributes
# writes nothing to the index (decision 108).
CHALLENGE_INDEX_ATTRIBUTES = ("submissionId", "phase", "memberId", "platform")


def status_table_definition(table_name: str) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": STATUS_TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": "state", "AttributeType": "S"},
            {"AttributeName": "deadlineAt", "AttributeType": "N"},
            {"AttributeName": "challengeId", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": STATUS_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": STATUS_TABLE_OVERDUE_INDEX,
                "KeySchema": [
                    {"AttributeName": "state", "KeyType": "HASH"},
                    {"AttributeName": "deadlineAt", "KeyType": "RANGE"},
                ],
                # Keys only + what the sweeper needs to stop the task and name the run (submission, phase).
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": [
                        "submissionId",
                        "phase",
                        "taskArn",
                        "clusterArn",
                        "challengeId",
                        "createdAt",
                        "updatedAt",
                    ],
                },
            },
            {
                "IndexName": STATUS_TABLE_CHALLENGE_INDEX,
                "KeySchema": [
                    {"AttributeName": "challengeId", "KeyType": "HASH"},
                    {"AttributeName": "createdAt", "KeyType": "RANGE"},
                ],
                # Only what never changes after the item is created (decision 108): every later write of a run
                # (claims, state, deadline, report) leaves the index untouched, so it costs one write per run.
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(CHALLENGE_INDEX_ATTRIBUTES)},
            },
        ],
    }


STATUS_TABLE_TTL = {"AttributeName": STATUS_TABLE_TTL_ATTRIBUTE, "Enabled": True}


def challenge_table_definition(table_name: str) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": CHALLENGE_TABLE_PARTITION_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": CHALLENGE_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
    }


# The router's audit marks (decision 075): one item per Kafka record already audited, so a re-delivered
# record is not audited (or counted) again. Keyed by the record's coordinates; expires by TTL.
AUDIT_MARKS_PARTITION_KEY = "recordId"
AUDIT_MARKS_TTL_ATTRIBUTE = "expiresAt"


def audit_marks_table_definition(table_name: str) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": AUDIT_MARKS_PARTITION_KEY, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": AUDIT_MARKS_PARTITION_KEY, "KeyType": "HASH"}],
    }


AUDIT_MARKS_TTL = {"AttributeName": AUDIT_MARKS_TTL_ATTRIBUTE, "Enabled": True}
