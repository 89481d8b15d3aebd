"""The DynamoDB emulator's TransactWriteItems (local_pipeline.emulator.dynamodb_transactions) rolls back only the
items a transaction names, with moto's own conditions, cancellation reasons and errors.

moto copies every table a transaction touches and, on a failure, puts the copy back: O(table size) per
transaction, and a write that landed on another item meanwhile would vanish with the copy. Here moto runs
in-process (mock_aws) with the wrapper installed and without it, and the answers are compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from local_pipeline.emulator import dynamodb_transactions

TABLE = "runs"
OTHER = "slots"


def _client() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def _create_tables(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.create_table(
        TableName=OTHER,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName=TABLE, Item={"pk": {"S": "run-1"}, "sk": {"S": "EXAMPLE"}, "state": {"S": "WAITING"}})
    client.put_item(TableName=TABLE, Item={"pk": {"S": "run-2"}, "sk": {"S": "EXAMPLE"}, "state": {"S": "RUNNING"}})
    client.put_item(TableName=OTHER, Item={"pk": {"S": "slot"}, "held": {"N": "1"}})


def _key(pk: str, sk: str = "EXAMPLE") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _admit(pk: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": _key(pk),
            "UpdateExpression": "SET #s = :launching",
            "ConditionExpression": "#s = :waiting",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {":launching": {"S": "LAUNCHING"}, ":waiting": {"S": "WAITING"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


TAKE_SLOT = {
    "Update": {
        "TableName": OTHER,
        "Key": {"pk": {"S": "slot"}},
        "UpdateExpression": "SET held = held + :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
}
NEW_RUN = {"Put": {"TableName": TABLE, "Item": {**_key("run-3"), "state": {"S": "WAITING"}}}}
DROP_RUN_2 = {"Delete": {"TableName": TABLE, "Key": _key("run-2")}}
TRANSACTIONS = {
    "admitted": [_admit("run-1"), TAKE_SLOT, NEW_RUN],
    "condition fails last": [TAKE_SLOT, NEW_RUN, DROP_RUN_2, _admit("run-2")],
    "condition fails first": [_admit("run-2"), TAKE_SLOT, NEW_RUN],
    "absent item fails": [
        TAKE_SLOT,
        {"ConditionCheck": {"TableName": TABLE, "Key": _key("run-9"), "ConditionExpression": "attribute_exists(pk)"}},
    ],
    "same item twice": [TAKE_SLOT, _admit("run-1"), {"Delete": {"TableName": TABLE, "Key": _key("run-1")}}],
    "missing key attribute": [TAKE_SLOT, {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "run-1"}}}}],
    "unknown table": [TAKE_SLOT, {"Delete": {"TableName": "nope", "Key": {"pk": {"S": "x"}}}}],
}


def _everything(client: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        name: sorted(client.scan(TableName=name, ConsistentRead=True)["Items"], key=repr) for name in (TABLE, OTHER)
    }


def _outcome(transact_items: list[dict[str, Any]]) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
    """(the error, or None, as botocore parsed it; every item afterwards) on a fresh moto account."""
    with mock_aws():
        client = _client()
        _create_tables(client)
        try:
            client.transact_write_items(TransactItems=transact_items)
            error = None
        except ClientError as raised:
            response = raised.response
            error = (response["Error"], response.get("CancellationReasons"))
        return error, _everything(client)


@pytest.fixture
def wrapped() -> Iterator[None]:
    assert dynamodb_transactions.install()
    yield
    dynamodb_transactions.uninstall()


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_the_answer_and_the_items_afterwards_are_motos_own(name: str) -> None:
    unwrapped = _outcome(TRANSACTIONS[name])
    assert dynamodb_transactions.install()
    try:
        assert _outcome(TRANSACTIONS[name]) == unwrapped
    finally:
        dynamodb_transactions.uninstall()


def test_a_failed_transaction_restores_its_items_and_keeps_a_write_made_meanwhile(
    wrapped: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker's write landing while a transaction runs (here: from inside its first update) survives the
    rollback; moto's own rollback, a copy of the whole table, would drop it."""
    moto_update = DynamoDBBackend.update_item

    def update_and_another_write(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        self.tables[TABLE].put_item({**_key("run-7"), "state": {"S": "WAITING"}})
        return moto_update(self, *args, **kwargs)

    with mock_aws():
        client = _client()
        _create_tables(client)
        before = _everything(client)
        monkeypatch.setattr(DynamoDBBackend, "update_item", update_and_another_write)
        with pytest.raises(ClientError) as raised:
            client.transact_write_items(TransactItems=[TAKE_SLOT, NEW_RUN, _admit("run-2")])
        monkeypatch.setattr(DynamoDBBackend, "update_item", moto_update)
        reasons: Any = raised.value.response["CancellationReasons"]
        assert [r["Code"] for r in reasons] == ["None", "None", "ConditionalCheckFailed"]
        assert reasons[2]["Item"]["state"] == {"S": "RUNNING"}  # ALL_OLD, as moto answers it
        after = _everything(client)
    assert after[OTHER] == before[OTHER]  # the slot's update undone
    assert {item["pk"]["S"] for item in after[TABLE]} == {"run-1", "run-2", "run-7"}  # run-3 undone, run-7 kept


def test_a_table_with_a_stream_takes_motos_own_path(wrapped: None) -> None:
    with mock_aws():
        client = _client()
        _create_tables(client)
        client.update_table(TableName=OTHER, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends["123456789012"]["us-east-1"]
        assert dynamodb_transactions.item_snapshots(backend, [NEW_RUN]) is not None
        assert dynamodb_transactions.item_snapshots(backend, [NEW_RUN, TAKE_SLOT]) is None


def test_another_moto_version_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamodb_transactions.importlib.metadata, "version", lambda name: "9.9.9")
    original = DynamoDBBackend.transact_write_items
    assert not dynamodb_transactions.install()
    assert DynamoDBBackend.transact_write_items is original


def test_the_pinned_version_is_the_locked_one() -> None:
    """Moving the lock's moto means re-reading `DynamoDBBackend.transact_write_items` and moving the pin."""
    import importlib.metadata

    assert importlib.metadata.version("moto") == dynamodb_transactions.PINNED_MOTO_VERSION
