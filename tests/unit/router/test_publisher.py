"""SNS PublishBatch: chunking, attributes, per-entry retries, SenderFault, outages."""

from __future__ import annotations

import math
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE
from router_lambda.batching import MAX_BATCH_BYTES, backoff_seconds, pack
from router_lambda.publisher import OutboundMessage, Publisher
from tests.builders import new_uuid
from tests.unit.router.support import TOPIC_ARN, FakeSns


def messages(n: int, body: str = '{"x": 1}') -> list[OutboundMessage]:
    return [OutboundMessage(key=i, body=body, challenge_id=new_uuid()) for i in range(n)]


def publisher(sns: FakeSns, attempts: int = 4) -> tuple[Publisher, list[float]]:
    sleeps: list[float] = []
    return Publisher(TOPIC_ARN, lambda: sns, max_attempts=attempts, sleep=sleeps.append, jitter=lambda: 1.0), sleeps


@pytest.mark.parametrize("n", [1, 9, 10, 11, 25])
def test_ceil_n_over_10_calls_with_unique_ids_and_the_challenge_attribute(n: int) -> None:
    sns = FakeSns()
    batch = messages(n)
    result = publisher(sns)[0].publish(batch)
    assert len(sns.calls) == math.ceil(n / 10)
    assert all(len(call) <= 10 for call in sns.calls)
    for call in sns.calls:
        assert len({entry["Id"] for entry in call}) == len(call)
    assert result.published == set(range(n))
    by_id = {m.entry_id: m for m in batch}
    for entry in sns.published:
        assert entry["MessageAttributes"] == {
            CHALLENGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": by_id[entry["Id"]].challenge_id}
        }


def test_failed_entries_are_retried_with_backoff_until_they_succeed() -> None:
    # Given SNS fails two entries transiently on the first two sends
    def rule(call: int, entry: dict[str, Any]) -> dict[str, Any] | None:
        if call <= 2 and entry["Id"] in {"r1", "r3"}:
            return {"Code": "InternalError", "Message": "try again", "SenderFault": False}
        return None

    sns = FakeSns(rule=rule)
    pub, sleeps = publisher(sns)
    # When five messages are published
    result = pub.publish(messages(5))
    # Then only the failed entries were re-sent, with exponential backoff, and all went out
    assert [[e["Id"] for e in call] for call in sns.calls] == [
        ["r0", "r1", "r2", "r3", "r4"],
        ["r1", "r3"],
        ["r1", "r3"],
    ]
    assert sleeps == [0.1, 0.2]
    assert result.published == {0, 1, 2, 3, 4}
    assert result.failed == {}
    assert result.rejected == {}
    assert result.retries == 4


def test_entries_still_failing_after_max_attempts_are_failed() -> None:
    sns = FakeSns(rule=lambda call, e: {"Code": "Throttled", "SenderFault": False} if e["Id"] == "r0" else None)
    pub, sleeps = publisher(sns, attempts=3)
    result = pub.publish(messages(2))
    assert len(sns.calls) == 3
    assert result.published == {1}
    assert set(result.failed) == {0}
    assert sleeps == [0.1, 0.2]


def test_sender_fault_is_not_retried() -> None:
    sns = FakeSns(
        rule=lambda call, e: (
            {"Code": "InvalidParameter", "Message": "bad", "SenderFault": True} if e["Id"] == "r0" else None
        )
    )
    pub, sleeps = publisher(sns)
    result = pub.publish(messages(2))
    assert len(sns.calls) == 1
    assert sleeps == []
    assert result.rejected == {0: "InvalidParameter: bad"}
    assert result.published == {1}
    assert result.failed == {}


def test_entries_missing_from_the_response_are_retried() -> None:
    class Forgetful(FakeSns):
        def publish_batch(self, **kwargs: Any) -> dict[str, Any]:
            response = super().publish_batch(**kwargs)
            if len(self.calls) == 1:
                response["Successful"] = response["Successful"][:1]
            return response

    sns = Forgetful()
    result = publisher(sns)[0].publish(messages(3))
    assert len(sns.calls) == 2
    assert result.published == {0, 1, 2}


def test_a_raising_call_marks_sns_unavailable_for_the_rest_of_the_batch() -> None:
    sns = FakeSns(error=EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com"))
    result = publisher(sns)[0].publish(messages(25))
    assert len(sns.calls) == 1  # no more slow calls once SNS is known down
    assert set(result.failed) == set(range(25))
    assert result.published == set()


def test_pack_respects_entry_and_byte_limits() -> None:
    assert [len(g) for g in pack(list(range(23)), lambda _: 1)] == [10, 10, 3]
    big = MAX_BATCH_BYTES // 3 + 1
    assert [len(g) for g in pack([big] * 5, lambda s: s)] == [2, 2, 1]
    assert [len(g) for g in pack([MAX_BATCH_BYTES * 2, 1], lambda s: s)] == [1, 1]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    assert [backoff_seconds(a, lambda: 1.0) for a in (1, 2, 3, 10)] == [0.1, 0.2, 0.4, 2.0]
    assert backoff_seconds(3, lambda: 0.5) == 0.2
