"""`batch_get_all` (mm_adapters/batch_get.py): unprocessed keys are retried with exponential backoff, every round's
items are kept, and keys still unprocessed after the last round fail loudly (the message is retried)."""

from __future__ import annotations

from typing import Any

import pytest

from mm_adapters.batch_get import FIRST_BACKOFF_SECONDS, MAX_ROUNDS, UnprocessedKeysError, batch_get_all


class ThrottledClient:
    """Answers each BatchGetItem with the next scripted response and records what it was asked."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self.responses = responses
        self.requests: list[dict[str, Any]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(RequestItems)
        return self.responses[len(self.requests) - 1]


def _keys(*ids: str) -> dict[str, Any]:
    return {"Keys": [{"pk": {"S": i}} for i in ids], "ConsistentRead": True}


def test_unprocessed_keys_are_asked_again_after_a_growing_pause_and_every_rounds_items_are_kept() -> None:
    client = ThrottledClient(
        [
            {"Responses": {"runs": [{"pk": {"S": "a"}}]}, "UnprocessedKeys": {"runs": _keys("b", "c")}},
            {"Responses": {"runs": [{"pk": {"S": "b"}}]}, "UnprocessedKeys": {"runs": _keys("c")}},
            {"Responses": {"runs": [{"pk": {"S": "c"}}], "pools": [{"pk": {"S": "p"}}]}},
        ]
    )
    pauses: list[float] = []

    found = batch_get_all(client, {"runs": _keys("a", "b", "c"), "pools": _keys("p")}, sleep=pauses.append)

    assert [item["pk"]["S"] for item in found["runs"]] == ["a", "b", "c"]
    assert [item["pk"]["S"] for item in found["pools"]] == ["p"]
    assert client.requests[1] == {"runs": _keys("b", "c")}  # only what was left, not the whole request again
    assert client.requests[2] == {"runs": _keys("c")}
    assert pauses == [FIRST_BACKOFF_SECONDS, 2 * FIRST_BACKOFF_SECONDS]


def test_a_table_with_nothing_found_is_an_empty_list_and_one_answer_needs_no_pause() -> None:
    client = ThrottledClient([{"Responses": {"runs": []}}])
    pauses: list[float] = []

    found = batch_get_all(client, {"runs": _keys("a"), "pools": _keys("p")}, sleep=pauses.append)

    assert found == {"runs": [], "pools": []}
    assert pauses == []


def test_keys_still_unprocessed_after_the_last_round_raise() -> None:
    throttled = {"Responses": {}, "UnprocessedKeys": {"runs": _keys("a")}}
    client = ThrottledClient([throttled] * MAX_ROUNDS)
    pauses: list[float] = []

    with pytest.raises(UnprocessedKeysError, match="unprocessed"):
        batch_get_all(client, {"runs": _keys("a")}, sleep=pauses.append)
    assert len(client.requests) == MAX_ROUNDS
    assert pauses == [FIRST_BACKOFF_SECONDS * 2**n for n in range(MAX_ROUNDS - 1)]
