"""Batch packing and backoff shared by the router's SNS and SQS batch calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

BASE_SECONDS = 0.1
CAP_SECONDS = 2.0
MAX_BATCH_ENTRIES = 10  # SNS PublishBatch and SQS SendMessageBatch
MAX_BATCH_BYTES = 262_144  # both services: the sum of all messages in one batch call


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is ASCII (`str.isascii` is a flag check)."""
    return len(text) if text.isascii() else len(text.encode())


def backoff_seconds(attempt: int, jitter: Callable[[], float]) -> float:
    """Delay after failed attempt `attempt` (1-based): full jitter in [0, min(cap, base * 2^(attempt-1)))."""
    return min(CAP_SECONDS, BASE_SECONDS * 2 ** (attempt - 1)) * jitter()


def pack(
    items: Sequence[T],
    size_of: Callable[[T], int],
    *,
    max_entries: int = MAX_BATCH_ENTRIES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[T]]:
    """Consecutive groups of at most `max_entries` items whose sizes add up to at most `max_bytes`.

    Small messages give exactly ceil(N / max_entries) groups. An item larger than `max_bytes` on its own
    travels alone (the service then refuses that entry, not its neighbours).
    """
    group: list[T] = []
    total = 0
    for item in items:
        size = size_of(item)
        if group and (len(group) >= max_entries or total + size > max_bytes):
            yield group
            group, total = [], 0
        group.append(item)
        total += size
    if group:
        yield group
