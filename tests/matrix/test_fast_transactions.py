"""The benchmark's cheaper moto transaction backup (`tests/fakes/fast_transactions.py`) answers exactly as stock moto:
the same CancellationReasons, and a cancelled transaction leaves every item as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mm_capacity.store import capacity_table_definition
from tests.fakes import boto_session, fast_transactions

TABLE = "mm-matrix-capacity"
T = TypeVar("T")


def _item(pk: str, sk: str, used: int) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "used": {"N": str(used)}}


def _cancelled_transaction(client: Any) -> tuple[list[Any], list[Any]]:
    """Seed two items, then a transaction that puts a new one, bumps one, and fails its condition on the last."""
    client.put_item(TableName=TABLE, Item=_item("POOL", "ENV", 3))
    client.put_item(TableName=TABLE, Item=_item("POOL", "CHALLENGE#a", 2))
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": _item("QUEUE#a", "01#x", 0)}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "POOL"}, "sk": {"S": "ENV"}},
                        "UpdateExpression": "ADD used :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "POOL"}, "sk": {"S": "CHALLENGE#a"}},
                        "UpdateExpression": "ADD used :one",
                        "ConditionExpression": "used < :cap",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":cap": {"N": "2"}},
                    }
                },
            ]
        )
    codes = [reason.get("Code") for reason in raised.value.response.get("CancellationReasons", [])]
    items = sorted(client.scan(TableName=TABLE)["Items"], key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    return codes, items


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        client = boto_session().client("dynamodb", region_name="us-east-1")
        client.create_table(**capacity_table_definition(TABLE))
        yield client


def _stock_and_fast(client: Any, scenario: Callable[[Any], T]) -> tuple[T, T]:
    """The scenario's answer under stock moto, then on a fresh table with the fast transactions installed."""
    stock = scenario(client)
    client.delete_table(TableName=TABLE)
    client.create_table(**capacity_table_definition(TABLE))
    fast_transactions.install()
    try:
        fast = scenario(client)
    finally:
        fast_transactions.uninstall()
    return stock, fast


def test_a_cancelled_transaction_is_answered_and_rolled_back_as_stock_moto_does(table: Any) -> None:
    stock, fast = _stock_and_fast(table, _cancelled_transaction)
    assert fast == stock
    codes, items = fast
    assert codes == ["None", "None", "ConditionalCheckFailed"]
    assert [(i["sk"]["S"], i["used"]["N"]) for i in items] == [("CHALLENGE#a", "2"), ("ENV", "3")]


def _queries(client: Any) -> list[Any]:
    for index in range(5):
        client.put_item(TableName=TABLE, Item=_item("QUEUE#a", f"01#{index:03d}", index))
        client.put_item(TableName=TABLE, Item=_item("QUEUE#b", f"01#{index:03d}", index))
    request = {"TableName": TABLE, "KeyConditionExpression": "pk = :pk", "ConsistentRead": True}
    return [
        client.query(**request, ExpressionAttributeValues={":pk": {"S": "QUEUE#a"}}, Limit=3)["Items"],
        client.query(
            **{**request, "KeyConditionExpression": "pk = :pk AND sk < :sk"},
            ExpressionAttributeValues={":pk": {"S": "QUEUE#b"}, ":sk": {"S": "01#003"}},
            Select="COUNT",
        )["Count"],
        client.query(**request, ExpressionAttributeValues={":pk": {"S": "QUEUE#none"}})["Items"],
    ]


def test_a_partition_query_answers_as_stock_moto_does(table: Any) -> None:
    stock, fast = _stock_and_fast(table, _queries)
    assert fast == stock
    assert [item["sk"]["S"] for item in fast[0]] == ["01#000", "01#001", "01#002"]
    assert fast[1:] == [3, []]
