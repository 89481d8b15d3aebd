"""The DynamoDB emulator's answers (local_pipeline.emulator.dynamodb_responses) are moto's own, byte for byte as
JSON, with the items put in as JSON instead of through moto's model-driven serializer."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import ResponseSerializer
from moto.dynamodb.responses import DynamoResult

from local_pipeline.emulator import dynamodb_responses

MOTO_EXECUTE = DynamoResult.execute_result
STATUS = "status"
RECORD = {
    "pk": {"S": "run-1"},
    "sk": {"S": "EXAMPLE"},
    "state": {"S": "RUNNING"},
    "attempt": {"N": "2"},
    "history": {"L": [{"M": {"at": {"S": "2026-01-01T00:00:00Z"}, "state": {"S": "WAITING"}}}] * 3},
    "tags": {"SS": ["a", "b"]},
    "done": {"BOOL": False},
    "none": {"NULL": True},
    "empty": {"M": {}},
}


def _session(client: Any) -> None:
    """Every item operation the pipeline's functions and engine use, with hits, misses and pages."""
    client.create_table(
        TableName=STATUS,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "state", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byState",
                "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(4):
        client.put_item(TableName=STATUS, Item={**RECORD, "pk": {"S": f"run-{n}"}})
    client.put_item(TableName=STATUS, Item=RECORD, ReturnValues="ALL_OLD")
    key = {"pk": {"S": "run-1"}, "sk": {"S": "EXAMPLE"}}
    client.get_item(TableName=STATUS, Key=key, ConsistentRead=True)
    client.get_item(TableName=STATUS, Key={"pk": {"S": "nope"}, "sk": {"S": "EXAMPLE"}})
    client.get_item(
        TableName=STATUS, Key=key, ProjectionExpression="#s, history[0]", ExpressionAttributeNames={"#s": "state"}
    )
    for returned in ("ALL_NEW", "UPDATED_OLD", "NONE"):
        client.update_item(
            TableName=STATUS,
            Key=key,
            UpdateExpression="SET attempt = attempt + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues=returned,
            ReturnConsumedCapacity="TOTAL",
        )
    client.query(TableName=STATUS, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "run-2"}})
    client.query(
        TableName=STATUS,
        IndexName="byState",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": "RUNNING"}},
        Limit=2,
    )
    client.query(TableName=STATUS, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "none"}})
    client.scan(TableName=STATUS, Limit=3, ReturnConsumedCapacity="INDEXES")
    client.batch_get_item(
        RequestItems={
            STATUS: {
                "Keys": [key, {"pk": {"S": "run-3"}, "sk": {"S": "EXAMPLE"}}, {"pk": {"S": "x"}, "sk": {"S": "y"}}]
            }
        },
        ReturnConsumedCapacity="TOTAL",
    )
    client.delete_item(TableName=STATUS, Key=key, ReturnValues="ALL_OLD")
    client.put_item(TableName=STATUS, Item={**RECORD, "blob": {"B": b"\x00\x01"}})  # moto's serializer: base64
    client.get_item(TableName=STATUS, Key=key)


@pytest.fixture
def both_answers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, Any]]:
    """(operation, moto's answer, the fast answer) for every DynamoDB answer of a session."""
    answers: list[tuple[str, Any, Any]] = []

    def compare(self: DynamoResult, context: Any) -> Any:
        ours = dynamodb_responses.fast_serialized(MOTO_EXECUTE, self, context)
        theirs = MOTO_EXECUTE(self, context)
        answers.append((str(context.operation_model.name), theirs, ours))
        return theirs

    monkeypatch.setattr(DynamoResult, "execute_result", compare)
    return answers


def _comparable(answer: Any) -> tuple[int, dict[str, Any], Any]:
    # moto adds its response headers (server, date, request id) to the answer it is handed back, after this.
    status, headers, body = answer
    return (
        status,
        {k: v for k, v in headers.items() if k not in ("server", "date", "x-amzn-requestid")},
        json.loads(body),
    )


def test_every_answer_is_motos_own(both_answers: list[tuple[str, Any, Any]]) -> None:
    with mock_aws():
        _session(boto3.client("dynamodb", region_name="us-east-1"))
    fast = [(operation, theirs, ours) for operation, theirs, ours in both_answers if ours is not None]
    assert {operation for operation, _, _ in fast} == {
        "PutItem",
        "GetItem",
        "UpdateItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "DeleteItem",
    }
    for operation, theirs, ours in fast:
        assert _comparable(ours) == _comparable(theirs), operation
    binary = [theirs for _, theirs, ours in both_answers if ours is None and '"B"' in theirs[2]]
    assert binary  # left to moto's serializer


def test_moto_serializes_no_item_once_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Items (the costly part: each attribute value through every member of the AttributeValue union) never reach
    moto's serializer; what is left of an answer does."""
    handed: list[Any] = []
    moto_serialize = ResponseSerializer.serialize

    def spy(self: ResponseSerializer, result: Any) -> Any:
        handed.append(result)
        return moto_serialize(self, result)

    monkeypatch.setattr(ResponseSerializer, "serialize", spy)
    assert dynamodb_responses.install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            _session(client)
    finally:
        dynamodb_responses.uninstall()
    assert DynamoResult.execute_result is MOTO_EXECUTE
    with_items = [r for r in handed if isinstance(r, dict) and {"Item", "Items", "Attributes", "Responses"} & set(r)]
    assert all('"B"' in json.dumps(r, default=str) for r in with_items)  # only the binary item's answer


def test_items_are_made_dynamodb_json_as_moto_makes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's `dynamo_to_dict` tests every node for five kinds in turn; the plain kinds are handled directly, the
    rest (binary values, datetimes, objects with `to_json`) by moto's own."""
    from datetime import UTC, datetime

    from moto.dynamodb import responses as handlers
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import dynamo_to_dict

    item = {
        "pk": DynamoType({"S": "run-1"}),
        "n": DynamoType({"N": "3"}),
        "flag": DynamoType({"BOOL": True}),
        "nothing": DynamoType({"NULL": True}),
        "tags": DynamoType({"SS": ["a", "b"]}),
        "nested": DynamoType({"M": {"l": {"L": [{"S": "x"}, {"M": {"deep": {"N": "1"}}}]}}}),
        "blob": DynamoType({"B": "aGVsbG8="}),
        "blobs": DynamoType({"BS": ["aGVsbG8="]}),
    }
    result = {"Items": [item, item], "Count": 2, "ScannedCount": 2, "When": datetime(2026, 1, 1, tzinfo=UTC)}
    converted: list[Any] = []

    def counted(obj: Any) -> Any:
        converted.append(type(obj))
        return dynamo_to_dict(obj)

    monkeypatch.setattr(handlers, "dynamo_to_dict", counted)  # moto's, as the wrapper will fall back to it
    assert dynamodb_responses.install()
    try:
        fast = handlers.dynamo_to_dict
        assert fast is not counted
        assert fast(result) == dynamo_to_dict(result)
    finally:
        dynamodb_responses.uninstall()
    assert handlers.dynamo_to_dict is counted
    assert set(converted) == {DynamoType, datetime}  # only the binary values and the datetime reached moto's
    assert len(converted) == 5  # B and BS in each of the two items, the datetime
