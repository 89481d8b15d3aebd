"""TransactWriteItems without a copy of every table it touches: one of the three places the emulator reaches into
moto (the others: `dynamodb_responses`, `dynamodb_queries`), both in the DynamoDB emulator process only (decision 115).

moto 5.2.5's `DynamoDBBackend.transact_write_items` (moto/dynamodb/models/__init__.py) backs up each table a
transaction names with `copy.deepcopy(table)` (once per item of the transaction), applies the items one by one,
and on a failure puts the copies back. The copy is O(table size), so over a local run of n submissions the
transactions cost O(n^2): the largest share of the emulator's CPU at a few hundred submissions (issue 13).

`install()` wraps that method, in the DynamoDB emulator process only, so that:
- before moto runs, the items the transaction names (table, key) are deep-copied (absent ones remembered as such);
- while moto runs, a table's deep copy is the table itself (moto's own rollback then puts back the same object);
- where moto would have rolled back (it raises TransactionCanceledException, MultipleTransactionsException or
  MockValidationException), the named items are put back as they were, and the exception goes on unchanged.

Everything else is moto's own code: the conditions, the order, the cancellation reasons and the errors. The result
is the same as moto's when requests are served one at a time (the DynamoDB process serves them so, decision 098):
only the named items can have changed. A transaction the wrapper cannot account for item by item (a table with a
stream, whose records moto's copy would also roll back; an item whose key it cannot read) takes moto's own path.

Pinned: `install()` changes nothing unless moto is exactly `PINNED_MOTO_VERSION` (the locked version) and the
method is still moto's; tests/local_pipeline/test_emulator_transactions.py compares the wrapped and unwrapped
answers, so a moto upgrade means re-reading that method and moving the pin.
"""

from __future__ import annotations

import copy
import importlib.metadata
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TransactionCanceledException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

PINNED_MOTO_VERSION = "5.2.5"
_ROLLED_BACK_BY_MOTO = (TransactionCanceledException, MultipleTransactionsException, MockValidationException)
_WRAPPED = "_mm_item_snapshot_wrapper"

_log = logging.getLogger(__name__)
_patch_lock = threading.Lock()

Snapshot = tuple[Table, DynamoType, DynamoType | None, Item | None]


def _key_of(table: Table, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    """The key of one transaction item, as moto derives it."""
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def item_snapshots(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[Snapshot] | None:
    """A deep copy of every item the transaction names (None where absent); None when it cannot be told item by
    item (then moto's own whole-table copy is used)."""
    snapshots: dict[tuple[str, DynamoType, DynamoType | None], Snapshot] = {}
    for entry in transact_items:
        if len(entry) != 1:
            return None
        op_type, op = next(iter(entry.items()))
        table_name = op.get("TableName") if isinstance(op, dict) else None
        if not table_name or table_name not in backend.tables:
            continue  # moto backs up nothing for it, and the item fails before it writes anything
        table = backend.tables[table_name]
        if table.stream_shard is not None:
            return None
        try:
            hash_key, range_key = backend.get_keys_value(table, _key_of(table, op_type, op))
        except Exception:  # a key moto may read differently: its own path decides
            return None
        marker = (table_name, hash_key, range_key)
        if marker not in snapshots:
            snapshots[marker] = (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
    return list(snapshots.values())


def restore(snapshots: list[Snapshot]) -> None:
    """Put every named item back as it was before the transaction (moto's storage: `Table.items`)."""
    for table, hash_key, range_key, item in snapshots:
        if item is None:
            table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item  # type: ignore[assignment]  # a table without a range key


def _same_table(table: Table, memo: dict[int, Any]) -> Table:
    return table


@contextmanager
def _tables_not_copied() -> Iterator[None]:
    """While moto's transaction runs, `copy.deepcopy(table)` is the table (its rollback a no-op)."""
    Table.__deepcopy__ = _same_table  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del Table.__deepcopy__  # type: ignore[attr-defined]


def _wrap(original: Callable[..., None]) -> Callable[..., None]:
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with _patch_lock:
            snapshots = item_snapshots(self, transact_items) if len(transact_items) <= 100 else None
            if snapshots is None:
                return original(self, transact_items)
            with _tables_not_copied():
                try:
                    return original(self, transact_items)
                except _ROLLED_BACK_BY_MOTO:
                    restore(snapshots)
                    raise

    setattr(transact_write_items, _WRAPPED, original)
    transact_write_items.__doc__ = original.__doc__
    return transact_write_items


def install() -> bool:
    """Wrap moto's TransactWriteItems (see the module docstring); False, changing nothing, on another moto version
    or when already installed."""
    installed = DynamoDBBackend.transact_write_items
    if hasattr(installed, _WRAPPED):
        return False
    version = importlib.metadata.version("moto")
    if version != PINNED_MOTO_VERSION:
        _log.warning("moto %s is not %s: TransactWriteItems left as moto has it", version, PINNED_MOTO_VERSION)
        return False
    DynamoDBBackend.transact_write_items = _wrap(installed)  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """moto's own TransactWriteItems back (for tests)."""
    original = getattr(DynamoDBBackend.transact_write_items, _WRAPPED, None)
    if original is not None:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
