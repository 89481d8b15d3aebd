"""The embedded AWS serves DynamoDB one request at a time, so a failed transaction never undoes another's write.

moto's TransactWriteItems restores a deep copy of each table it touched when a condition fails; served
concurrently (the local pipeline's workers are separate processes), that copy would put back the table as it was
before another worker's write. DynamoDB isolates transactions (docs: "Isolation levels for DynamoDB transactions"),
so the emulator must too, or a run's queue entry can vanish and the run wait for ever.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local_pipeline.awsenv import LocalAws

TABLE = "isolation"
WRITERS = 4
WRITES_EACH = 150


@pytest.fixture
def emulator() -> Iterator[LocalAws]:
    with LocalAws() as aws:
        aws.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield aws


def _failing_transactions(client: Any, canceled: type[Exception], stop: threading.Event) -> None:
    # A condition that never holds: each call snapshots the table and puts the snapshot back. `canceled` is looked up
    # once, before the threads start: botocore builds a client's exception classes on first use without a lock, so
    # two threads asking at once can each get their own class, and one's error then escapes the other's `suppress`.
    while not stop.is_set():
        with contextlib.suppress(canceled):
            client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": TABLE,
                            "Key": {"pk": {"S": "guard"}},
                            "UpdateExpression": "SET touched = :one",
                            "ConditionExpression": "attribute_exists(never)",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    }
                ]
            )


def _writer(client: Any, index: int) -> None:
    for n in range(WRITES_EACH):
        client.put_item(TableName=TABLE, Item={"pk": {"S": f"w{index}-{n}"}})


def test_concurrent_failed_transactions_never_undo_another_workers_writes(emulator: LocalAws) -> None:
    stop = threading.Event()
    client = emulator.client("dynamodb")
    canceled = client.exceptions.TransactionCanceledException
    spoilers = [threading.Thread(target=_failing_transactions, args=(client, canceled, stop)) for _ in range(3)]
    writers = [threading.Thread(target=_writer, args=(emulator.client("dynamodb"), i)) for i in range(WRITERS)]
    for thread in spoilers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in spoilers:
        thread.join()

    written = {
        item["pk"]["S"]
        for page in client.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True)
        for item in page["Items"]
    }
    assert len(written) == WRITERS * WRITES_EACH
