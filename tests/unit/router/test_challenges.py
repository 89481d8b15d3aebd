"""Challenge resolution: UUID, legacy id via v5ChallengeId or alias item, cache, read budget."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mm_contracts.models.bus import SubmissionFields, SubmissionPayload
from router_lambda.challenges import ChallengeCache, ChallengeResolver, Resolution
from router_lambda.reasons import Reason
from tests.builders import new_uuid, submission_payload
from tests.fakes.clock import VirtualClock
from tests.unit.router.support import CHALLENGE_TABLE, FakeDynamoDB, alias_item, challenge_item


def submission(challenge_id: Any, **overrides: Any) -> SubmissionFields:
    payload = submission_payload(**overrides)
    payload["challengeId"] = challenge_id
    return SubmissionPayload.model_validate(payload)


def resolver(
    ddb: FakeDynamoDB, *, ttl: float = 60, clock: VirtualClock | None = None
) -> tuple[ChallengeResolver, list[float]]:
    sleeps: list[float] = []
    clock = clock or VirtualClock()
    return (
        ChallengeResolver(
            CHALLENGE_TABLE,
            lambda: ddb,
            ChallengeCache(ttl, clock),
            max_attempts=3,
            sleep=sleeps.append,
            jitter=lambda: 1.0,
        ),
        sleeps,
    )


def test_uuid_challenge_resolves_when_active() -> None:
    cid = new_uuid()
    ddb = FakeDynamoDB().add(challenge_item(cid, legacy_id=30_001))
    (result,) = resolver(ddb)[0].resolve([submission(cid)])
    assert result == Resolution(challenge_id=cid, legacy_challenge_id=30_001)


def test_legacy_id_with_v5_challenge_id_reads_only_the_uuid() -> None:
    # Given a legacy numeric challengeId and its UUID in v5ChallengeId
    cid = new_uuid()
    ddb = FakeDynamoDB().add(challenge_item(cid))
    # When resolved
    (result,) = resolver(ddb)[0].resolve([submission(30_054_321, v5ChallengeId=cid)])
    # Then it routes to the UUID, carries the legacy id, and no alias item is read
    assert result == Resolution(challenge_id=cid, legacy_challenge_id=30_054_321)
    assert ddb.calls == [[cid]]


def test_legacy_id_without_v5_challenge_id_goes_through_the_alias_item() -> None:
    cid = new_uuid()
    ddb = FakeDynamoDB().add(challenge_item(cid), alias_item(30_054_321, cid))
    (result,) = resolver(ddb)[0].resolve([submission("30054321", v5ChallengeId="not-a-uuid")])
    assert result == Resolution(challenge_id=cid, legacy_challenge_id=30_054_321)
    assert ddb.calls == [["legacy:30054321"], [cid]]  # two rounds: alias, then its target


def test_unresolvable_legacy_id_is_rejected() -> None:
    ddb = FakeDynamoDB().add({"challengeId": {"S": "legacy:7"}})  # alias without aliasOf
    res, _ = resolver(ddb)
    no_alias, bad_alias = res.resolve([submission(8), submission(7)])
    assert no_alias.verdict is not None
    assert no_alias.verdict.reason is Reason.LEGACY_CHALLENGE_UNRESOLVED
    assert bad_alias.verdict is not None
    assert bad_alias.verdict.reason is Reason.LEGACY_CHALLENGE_UNRESOLVED


def test_unknown_inactive_and_malformed_challenges_are_rejected() -> None:
    inactive, unknown, malformed = new_uuid(), new_uuid(), new_uuid()
    ddb = FakeDynamoDB().add(
        challenge_item(inactive, active=False), {"challengeId": {"S": malformed}, "active": {"S": "maybe"}}
    )
    results = resolver(ddb)[0].resolve([submission(inactive), submission(unknown), submission(malformed)])
    assert [r.verdict.reason if r.verdict else None for r in results] == [
        Reason.CHALLENGE_INACTIVE,
        Reason.CHALLENGE_UNKNOWN,
        Reason.CHALLENGE_RECORD_INVALID,
    ]
    assert all(r.verdict is not None and r.verdict.challenge_id for r in results)


def test_one_read_per_distinct_key_per_batch() -> None:
    # Given 30 submissions over 3 challenges (one of them legacy, through an alias to another)
    a, b = new_uuid(), new_uuid()
    ddb = FakeDynamoDB().add(challenge_item(a), challenge_item(b), alias_item(99, a))
    batch = (
        [submission(a) for _ in range(10)] + [submission(b) for _ in range(10)] + [submission(99) for _ in range(10)]
    )
    # When resolved
    results = resolver(ddb)[0].resolve(batch)
    # Then each distinct key was read once, the alias target (already read) not again
    assert sorted(ddb.keys_read) == sorted([a, b, "legacy:99"])
    assert len(ddb.calls) == 1
    assert {r.challenge_id for r in results} == {a, b}


def test_warm_cache_avoids_a_second_read_within_ttl_and_expires_after() -> None:
    cid, missing = new_uuid(), new_uuid()
    ddb = FakeDynamoDB().add(challenge_item(cid))
    clock = VirtualClock()
    res, _ = resolver(ddb, ttl=60, clock=clock)
    res.resolve([submission(cid), submission(missing)])
    assert len(ddb.calls) == 1
    # Within the TTL: positive and negative answers come from the cache
    clock.now += 59
    again = res.resolve([submission(cid), submission(missing)])
    assert len(ddb.calls) == 1
    assert again[1].verdict is not None
    assert again[1].verdict.reason is Reason.CHALLENGE_UNKNOWN
    # After the TTL: read again (a challenge created meanwhile is seen)
    ddb.add(challenge_item(missing))
    clock.now += 2
    later = res.resolve([submission(cid), submission(missing)])
    assert len(ddb.calls) == 2
    assert later[1].challenge_id == missing


def test_ttl_zero_disables_the_cache() -> None:
    cid = new_uuid()
    ddb = FakeDynamoDB().add(challenge_item(cid))
    res, _ = resolver(ddb, ttl=0)
    res.resolve([submission(cid)])
    res.resolve([submission(cid)])
    assert len(ddb.calls) == 2


def test_unprocessed_keys_are_retried_alone_with_backoff() -> None:
    a, b = new_uuid(), new_uuid()
    ddb = FakeDynamoDB(unprocessed_script=[{b}]).add(challenge_item(a), challenge_item(b))
    res, sleeps = resolver(ddb)
    results = res.resolve([submission(a), submission(b)])
    assert [r.challenge_id for r in results] == [a, b]
    assert ddb.calls == [sorted([a, b]), [b]]
    assert sleeps == [0.1]


def test_keys_left_unprocessed_are_unavailable_and_not_cached() -> None:
    a = new_uuid()
    ddb = FakeDynamoDB(unprocessed_script=[{a}, {a}, {a}]).add(challenge_item(a))
    res, sleeps = resolver(ddb)
    (result,) = res.resolve([submission(a)])
    assert result.unavailable
    assert len(ddb.calls) == 3
    assert sleeps == [0.1, 0.2]
    (retry,) = res.resolve([submission(a)])  # the next batch asks again
    assert retry.challenge_id == a


def test_dynamodb_errors_make_records_unavailable_not_rejected() -> None:
    a = new_uuid()
    error = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "BatchGetItem")
    ddb = FakeDynamoDB(error=error).add(challenge_item(a))
    res, _ = resolver(ddb)
    (result,) = res.resolve([submission(a)])
    assert result.unavailable
    assert result.verdict is None
    ddb.error = None
    (retry,) = res.resolve([submission(a)])
    assert retry.challenge_id == a


def test_more_than_100_keys_are_split_into_requests_of_100() -> None:
    ids = [new_uuid() for _ in range(150)]
    ddb = FakeDynamoDB().add(*(challenge_item(i) for i in ids))
    results = resolver(ddb)[0].resolve([submission(i) for i in ids])
    assert [len(c) for c in ddb.calls] == [100, 50]
    assert all(r.challenge_id for r in results)
