"""One consistent BatchGetItem request read to the end: unprocessed keys are retried with exponential backoff.

DynamoDB returns `UnprocessedKeys` when a batch exceeds the table's throughput or the response's 16 MB, and asks
callers to retry them with an exponential backoff, not at once
([BatchGetItem](https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html)). The
status store's `get_many` and the capacity store's new-run view both read through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

MAX_ROUNDS = 5
# 50 ms, 100 ms, 200 ms, 400 ms between the five rounds: under a second in all, well inside any function's timeout.
FIRST_BACKOFF_SECONDS = 0.05


class UnprocessedKeysError(RuntimeError):
    """Keys were still unprocessed after every round (sustained throttling): the caller's message is retried."""


def batch_get_all(
    client: Any,
    request_items: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, list[dict[str, Any]]]:
    """Every item the request finds, by table name (a key not found is simply absent)."""
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in request_items}
    request = request_items
    for round_number in range(MAX_ROUNDS):
        if round_number:
            sleep(FIRST_BACKOFF_SECONDS * 2 ** (round_number - 1))
        response = client.batch_get_item(RequestItems=request)
        for table, items in response.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return found
    raise UnprocessedKeysError(f"BatchGetItem left keys unprocessed after {MAX_ROUNDS} rounds (throttled)")


__all__ = ["FIRST_BACKOFF_SECONDS", "MAX_ROUNDS", "UnprocessedKeysError", "batch_get_all"]
