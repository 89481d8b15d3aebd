"""A table-key Query reads its partition, not the whole table: the third place the emulator reaches into moto, in
its DynamoDB process only (decision 115; the others: `dynamodb_transactions`, `dynamodb_responses`).

moto 5.2.5's `Table.query` (moto/dynamodb/models/table.py) finds a table-key query's candidates by sorting every
item of the table (`Table.all_items()`) and keeping those whose hash key matches: O(n log n) per query, so the
status table's per-submission queries cost O(n^2 log n) over a run. For such a query (no index, a string hash key)
`install()` makes `all_items()` answer, for that one call, the items of the queried partition, in moto's own
order; moto then does everything else itself (the range-key sort, the conditions, the filter, the pages and
`LastEvaluatedKey`), and since it keeps only that partition's items anyway, the answer is moto's.

An index query (the sweeper's, the completion's) is found by a pass over `all_items()` keeping the items whose
index hash-key attributes equal the query's (`hash_key_conditions`), and then sorted again by moto
(`Table.sorted_items`: index keys, then the table's hash and range key, which no two items share, so a total
order). `all_items()` answers, for that call, only the items whose hash-key attributes match, in no sorted order:
one tight pass without the whole-table sort or moto's per-item checks. moto repeats its own checks on them and
sorts them, so the answer is moto's. Any other key type or a query without hash-key conditions takes moto's path.

Pinned like the others: nothing changes unless moto is exactly `PINNED_MOTO_VERSION`;
tests/local_pipeline/test_emulator_dynamodb_queries.py compares wrapped and unwrapped answers.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from local_pipeline.emulator.dynamodb_transactions import PINNED_MOTO_VERSION

_WRAPPED = "_mm_partition_query_wrapper"
_log = logging.getLogger(__name__)
_lock = threading.Lock()


def partition_items(table: Table, hash_key: DynamoType) -> list[Item]:
    """The items of one partition, in `all_items()`'s order (by hash, then range key)."""
    partition = table.items.get(hash_key)
    if partition is None:
        return []
    if table.range_key_attr:
        return sorted(partition.values(), key=lambda item: item.range_key)
    return [partition]  # type: ignore[list-item]


def index_candidates(table: Table, hash_key_conditions: list[tuple[str, DynamoType]]) -> list[Item]:
    """The items whose attributes equal every index hash-key condition, unsorted (moto sorts them itself)."""
    conditions = list(hash_key_conditions)
    candidates: list[Item] = []
    stored: Any
    for stored in table.items.values():
        for item in stored.values() if table.range_key_attr else (stored,):
            attrs = item.attrs
            # moto's own test, so no item it would keep is left out
            if all(attrs.get(name) and attrs[name] == value for name, value in conditions):
                candidates.append(item)
    return candidates


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    def query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name") if len(args) < 7 else args[6]
        hash_key_conditions: list[tuple[str, DynamoType]] = kwargs.get("hash_key_conditions") or []
        if index_name:
            if not hash_key_conditions:
                return original(self, hash_key, *args, **kwargs)
        elif not isinstance(hash_key, DynamoType) or hash_key.type != "S":
            return original(self, hash_key, *args, **kwargs)
        with _lock:
            items = (
                index_candidates(self, hash_key_conditions)
                if index_name
                else partition_items(self, cast(DynamoType, hash_key))
            )
            self.all_items = lambda: items  # type: ignore[method-assign]
            try:
                return original(self, hash_key, *args, **kwargs)
            finally:
                del self.all_items

    setattr(query, _WRAPPED, original)
    query.__doc__ = original.__doc__
    return query


def install() -> bool:
    """Wrap moto's `Table.query` (see the module docstring); False, changing nothing, on another moto version or
    when already installed."""
    installed = Table.query
    if hasattr(installed, _WRAPPED):
        return False
    version = importlib.metadata.version("moto")
    if version != PINNED_MOTO_VERSION:
        _log.warning("moto %s is not %s: Query left as moto has it", version, PINNED_MOTO_VERSION)
        return False
    Table.query = _wrap(installed)  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """moto's own `Table.query` back (for tests)."""
    original = getattr(Table.query, _WRAPPED, None)
    if original is not None:
        Table.query = original  # type: ignore[method-assign]
