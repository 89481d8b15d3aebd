"""A Query in the DynamoDB emulator (local_pipeline.emulator.dynamodb_queries) reads only its partition (table key)
or its matching items (index), never the whole table sorted, and answers what moto answers: items, order, counts,
pages."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from local_pipeline.emulator import dynamodb_queries

RUNS, CONFIGS = "runs", "configs"
PHASES = ("EXAMPLE", "PROVISIONAL", "SYSTEM", "ZZZ")
QUERIES: dict[str, dict[str, Any]] = {
    "partition": {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "sub-2"}}},
    "descending, first page": {
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "sub-2"}},
        "ScanIndexForward": False,
        "Limit": 2,
    },
    "next page": {
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "sub-2"}},
        "Limit": 2,
        "ExclusiveStartKey": {"pk": {"S": "sub-2"}, "sk": {"S": "PROVISIONAL"}},
    },
    "range condition and filter": {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "FilterExpression": "attempt > :one",
        "ExpressionAttributeValues": {":p": {"S": "sub-3"}, ":s": {"S": "S"}, ":one": {"N": "1"}},
    },
    "absent partition": {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nope"}}},
    "index": {
        "IndexName": "byState",
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":s": {"S": "WAITING"}},
    },
    "index with a range condition, descending": {
        "IndexName": "byStateDeadline",
        "KeyConditionExpression": "#s = :s AND deadlineAt < :before",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":s": {"S": "RUNNING"}, ":before": {"N": "1015"}},
        "ScanIndexForward": False,
    },
    "index, first page": {
        "IndexName": "byStateDeadline",
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":s": {"S": "WAITING"}},
        "Limit": 3,
    },
    "index, next page, filtered": {
        "IndexName": "byStateDeadline",
        "KeyConditionExpression": "#s = :s",
        "FilterExpression": "attempt > :one",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":s": {"S": "WAITING"}, ":one": {"N": "1"}},
        "ExclusiveStartKey": {
            "pk": {"S": "sub-1"},
            "sk": {"S": "SYSTEM"},
            "state": {"S": "WAITING"},
            "deadlineAt": {"N": "1006"},
        },
    },
    "index, absent value": {
        "IndexName": "byState",
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":s": {"S": "GONE"}},
    },
}


def _answers() -> list[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=RUNS,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "N" if name == "deadlineAt" else "S"}
                for name in ("pk", "sk", "state", "deadlineAt")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "byState",
                    "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "byStateDeadline",
                    "KeySchema": [
                        {"AttributeName": "state", "KeyType": "HASH"},
                        {"AttributeName": "deadlineAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName=CONFIGS,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(5):
            client.put_item(TableName=CONFIGS, Item={"pk": {"S": f"c{n}"}, "v": {"N": str(n)}})
            for attempt, phase in enumerate(reversed(PHASES)):  # written out of order
                state = "WAITING" if (n + attempt) % 2 else "RUNNING"
                item = {
                    "pk": {"S": f"sub-{n}"},
                    "sk": {"S": phase},
                    "state": {"S": state},
                    "attempt": {"N": str(attempt)},
                }
                if (n + attempt) % 3:  # some items are not in byStateDeadline
                    item["deadlineAt"] = {"N": str(1000 + (7 * n + 3 * attempt) % 20)}
                client.put_item(TableName=RUNS, Item=item)
        answers: list[Any] = [
            {k: v for k, v in client.query(TableName=RUNS, **query).items() if k != "ResponseMetadata"}
            for query in QUERIES.values()
        ]
        answers.append(
            client.query(
                TableName=CONFIGS, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "c3"}}
            )["Items"]
        )
        return answers


def test_a_table_key_query_answers_what_moto_answers() -> None:
    unwrapped = _answers()
    assert dynamodb_queries.install()
    try:
        assert _answers() == unwrapped
    finally:
        dynamodb_queries.uninstall()
    assert [item["sk"]["S"] for item in unwrapped[0]["Items"]] == sorted(PHASES)  # moto's order, kept
    index_answers = [unwrapped[list(QUERIES).index(name)] for name in QUERIES if name.startswith("index")]
    assert all(answer["Count"] for answer in index_answers[:3])  # the index queries find something to compare


def test_a_query_never_reads_the_whole_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto sorts every item of the table for each query, table key or index; wrapped, none does."""
    whole_table_reads: list[str] = []
    moto_all_items = Table.all_items

    def counted(self: Table) -> Any:
        whole_table_reads.append(self.name)
        return moto_all_items(self)

    monkeypatch.setattr(Table, "all_items", counted)
    assert dynamodb_queries.install()
    try:
        _answers()
    finally:
        dynamodb_queries.uninstall()
    assert whole_table_reads == []
