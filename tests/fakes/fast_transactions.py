"""moto at benchmark scale: the same answers, without costs that grow with the whole table (benchmarks only).

- TransactWriteItems: moto 5 backs up a transaction by deep-copying every table it names, once per item of the
  transaction, so a transaction costs time in proportion to the whole table: thousands of runs make every admission
  slower than the last. moto's own implementation is kept (conditions, `CancellationReasons`, every item action);
  only the backup changes: the touched items are saved before and put back when the transaction is cancelled, the
  same result as restoring the tables (a transaction changes nothing else; the harness runs one call at a time).
- Query on a base table with a sort key: moto sorts every item of the table to find one partition's; here it is
  handed that partition's items only (moto then filters and sorts them as before). Index queries are unchanged.

`install()` patches the process's moto; `uninstall()` undoes it. The fault matrix and the tests keep stock moto.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table

_original: Callable[..., None] | None = None
_original_query: Callable[..., Any] | None = None


class _NoTableCopy:
    """`copy` for moto's dynamodb models module: a Table is not copied (the items are saved instead)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _key_of(backend: Any, op: dict[str, Any], op_type: str) -> tuple[str, dict[str, Any]] | None:
    table_name = op.get("TableName")
    if not table_name or table_name not in backend.tables:
        return None
    if op_type != "Put":
        return table_name, op["Key"]
    table = backend.tables[table_name]
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return table_name, key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    assert _original is not None
    saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        found = _key_of(self, op, op_type) if isinstance(op, dict) else None
        if found is None:
            continue
        table_name, key = found
        with contextlib.suppress(Exception):  # a malformed key: moto's own call below answers it
            current = self.get_item(table_name, key)
            saved.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    try:
        _original(self, transact_items)
    except Exception:
        for table_name, key, attributes in reversed(saved):
            if attributes is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, attributes)
        raise


def _query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    assert _original_query is not None
    if kwargs.get("index_name") or not self.range_key_attr or hash_key is None:
        return _original_query(self, hash_key, *args, **kwargs)
    partition = list(self.items.get(hash_key, {}).values())
    self.all_items = lambda: partition  # type: ignore[method-assign]
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


def install() -> None:
    global _original, _original_query
    if _original is not None:
        return
    _original = dynamodb_models.DynamoDBBackend.transact_write_items
    _original_query = Table.query
    dynamodb_models.copy = _NoTableCopy()  # type: ignore[assignment]
    dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    Table.query = _query  # type: ignore[method-assign]


def uninstall() -> None:
    global _original, _original_query
    if _original is None:
        return
    dynamodb_models.DynamoDBBackend.transact_write_items = _original  # type: ignore[method-assign]
    dynamodb_models.copy = copy
    if _original_query is not None:
        Table.query = _original_query  # type: ignore[method-assign]
    _original = _original_query = None
