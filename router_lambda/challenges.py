"""Challenge resolution against the challenge table, with a warm-invocation cache.

Per batch: one `BatchGetItem` round for every distinct key not in the cache (UUIDs and `legacy:<n>`
alias keys), then at most one more round for the alias targets. Each distinct key is read at most once
per batch (only `UnprocessedKeys` are asked again). Answers, negative ones included, are cached for
`CHALLENGE_CACHE_SECONDS`; "unavailable" is never cached. See docs/decisions/015.

The platform (decision 088): a record of the other platform than its challenge's is skipped
(`platform_mismatch`); a v6 record for a challenge not in the table is skipped (`challenge_not_served`); a v6
record for an inactive challenge is routed with a skip reason, so it still gets its terminal FAILED summation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mm_adapters.dynamodb_types import TypeDeserializer
from mm_contracts.models.bus import InboundSubmission, canonical_uuid
from mm_contracts.models.challenge import ChallengeRecord
from mm_contracts.models.phase import Platform
from mm_contracts.names import CHALLENGE_TABLE_PARTITION_KEY, legacy_challenge_alias_key
from router_lambda.batching import backoff_seconds
from router_lambda.observability import logger
from router_lambda.reasons import Reason
from router_lambda.records import Verdict

_BATCH_GET_LIMIT = 100  # DynamoDB BatchGetItem: at most 100 keys per request
_MAX_CACHE_ENTRIES = 10_000  # bounds memory against floods of random (negative) ids
_deserializer = TypeDeserializer()


class DynamoDBBatchGet(Protocol):
    """The slice of the boto3 DynamoDB client the resolver uses (a fake or a Stubber fits)."""

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]: ...


class Absent(Enum):
    NOT_FOUND = "not_found"
    INVALID = "invalid"  # the item exists but does not parse as a ChallengeRecord
    UNAVAILABLE = "unavailable"  # DynamoDB did not answer (never cached)


Lookup = ChallengeRecord | Absent


@dataclass(frozen=True)
class Resolution:
    """Where one submission goes: a UUID (routable), a verdict (rejected) or unavailable (retry)."""

    challenge_id: str | None = None
    legacy_challenge_id: int | None = None
    verdict: Verdict | None = None
    unavailable: bool = False
    # Routable, but not to be scored: the challenge processor records it FAILED with this reason (v6 only).
    skip_reason: str | None = None


class ChallengeCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, Lookup]] = {}

    def get(self, key: str) -> Lookup | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return value

    def put(self, key: str, value: Lookup) -> None:
        if value is Absent.UNAVAILABLE or self._ttl <= 0:
            return
        if len(self._entries) >= _MAX_CACHE_ENTRIES:
            self._evict()
        self._entries[key] = (self._clock() + self._ttl, value)

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (expires_at, _) in self._entries.items() if expires_at <= now]:
            del self._entries[key]
        while len(self._entries) >= _MAX_CACHE_ENTRIES:  # oldest insertion first
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class ChallengeResolver:
    def __init__(
        self,
        table_name: str,
        client: Callable[[], DynamoDBBatchGet],
        cache: ChallengeCache,
        *,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._table_name = table_name
        self._client = client
        self._cache = cache
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._jitter = jitter

    # ------------------------------------------------------------ resolution
    def resolve(self, submissions: Sequence[InboundSubmission]) -> list[Resolution]:
        keys = [self._first_key(submission) for submission in submissions]  # once per submission
        first_keys = set(keys)
        found = self._lookup(first_keys)
        targets = {
            target
            for key in first_keys
            if key.startswith("legacy:") and (target := _alias_target(found[key])) is not None
        }
        found.update(self._lookup(targets - found.keys()))
        return [self._resolution(submission, key, found) for submission, key in zip(submissions, keys, strict=True)]

    @staticmethod
    def _first_key(submission: InboundSubmission) -> str:
        if submission.challenge_uuid:
            return submission.challenge_uuid
        if submission.v5_challenge_id:  # legacy id with the UUID alongside: no alias read needed
            return submission.v5_challenge_id
        return legacy_challenge_alias_key(submission.challenge_id)

    def _resolution(self, submission: InboundSubmission, key: str, found: dict[str, Lookup]) -> Resolution:
        first = found[key]
        if first is Absent.UNAVAILABLE:
            return Resolution(unavailable=True)
        uuid = self._through_alias(submission, key, first) if key.startswith("legacy:") else key
        if isinstance(uuid, Resolution):
            return uuid
        record = found.get(uuid, Absent.UNAVAILABLE)
        if record is Absent.UNAVAILABLE:
            return Resolution(unavailable=True)
        if isinstance(record, Absent):
            return self._absent(submission, uuid, record)
        return self._routable(submission, uuid, record)

    @staticmethod
    def _through_alias(submission: InboundSubmission, key: str, alias: Lookup) -> str | Resolution:
        """The UUID a `legacy:<n>` alias item points to, or the rejection when it points nowhere."""
        target = _alias_target(alias)
        if target is not None:
            return target
        why = "no alias item" if alias is Absent.NOT_FOUND else "alias item without a valid aliasOf"
        return Resolution(
            verdict=Verdict(
                Reason.LEGACY_CHALLENGE_UNRESOLVED,
                f"legacy challenge id {submission.challenge_id} has no v5ChallengeId and {why} ({key})",
                submission.id,
                submission.challenge_id,
                submission.platform,
            )
        )

    def _absent(self, submission: InboundSubmission, uuid: str, record: Absent) -> Resolution:
        if record is Absent.INVALID:
            return self._reject(
                Reason.CHALLENGE_RECORD_INVALID, f"challenge table item {uuid} is malformed", submission, uuid
            )
        # the v6 topic carries every Marathon Match on the platform: most are not ours
        reason = Reason.CHALLENGE_NOT_SERVED if submission.platform is Platform.V6 else Reason.CHALLENGE_UNKNOWN
        return self._reject(reason, f"challenge {uuid} is not in the challenge table", submission, uuid)

    def _routable(self, submission: InboundSubmission, uuid: str, record: ChallengeRecord) -> Resolution:
        if record.platform is not submission.platform:
            return self._reject(
                Reason.PLATFORM_MISMATCH,
                f"a {submission.platform.value} record for challenge {uuid}, which takes "
                f"{record.platform.value} submissions",
                submission,
                uuid,
            )
        legacy_id = submission.legacy_challenge_number or submission.legacy_challenge_id or record.legacy_id
        if not record.active:
            if submission.platform is Platform.V6:  # ours but inactive: still a terminal FAILED summation (088)
                return _routable(uuid, legacy_id, Reason.CHALLENGE_INACTIVE.value)
            return self._reject(Reason.CHALLENGE_INACTIVE, f"challenge {uuid} is not active", submission, uuid)
        return _routable(uuid, legacy_id, None)

    @staticmethod
    def _reject(reason: Reason, detail: str, submission: InboundSubmission, uuid: str) -> Resolution:
        return Resolution(verdict=Verdict(reason, detail, submission.id, uuid, submission.platform))

    # ------------------------------------------------------------ reads
    def _lookup(self, keys: Iterable[str]) -> dict[str, Lookup]:
        result: dict[str, Lookup] = {}
        misses: list[str] = []
        for key in sorted(set(keys)):
            cached = self._cache.get(key)
            if cached is None:
                misses.append(key)
            else:
                result[key] = cached
        if misses:
            fetched = self._fetch(misses)
            for key, value in fetched.items():
                self._cache.put(key, value)
            result.update(fetched)
        return result

    def _fetch(self, keys: list[str]) -> dict[str, Lookup]:
        result: dict[str, Lookup] = {}
        unavailable = False
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            chunk = keys[start : start + _BATCH_GET_LIMIT]
            if unavailable:  # DynamoDB already failed after boto's retries: don't stall on every chunk
                result.update(dict.fromkeys(chunk, Absent.UNAVAILABLE))
                continue
            answered, unavailable = self._fetch_chunk(chunk)
            result.update(answered)
        return result

    def _fetch_chunk(self, chunk: list[str]) -> tuple[dict[str, Lookup], bool]:
        result: dict[str, Lookup] = {}
        pending = list(chunk)
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._client().batch_get_item(
                    RequestItems={
                        self._table_name: {"Keys": [{CHALLENGE_TABLE_PARTITION_KEY: {"S": key}} for key in pending]}
                    }
                )
            except (ClientError, BotoCoreError) as error:
                logger.error("challenge table read failed", extra={"error": type(error).__name__, "keys": len(pending)})
                result.update(dict.fromkeys(pending, Absent.UNAVAILABLE))
                return result, True
            for item in response.get("Responses", {}).get(self._table_name, []):
                key, value = _parse_item(item)
                if key in pending:
                    result[key] = value
            unprocessed = {
                str(k.get(CHALLENGE_TABLE_PARTITION_KEY, {}).get("S"))
                for k in response.get("UnprocessedKeys", {}).get(self._table_name, {}).get("Keys", [])
            }
            # Asked, answered, and not in the response: the item does not exist.
            for key in pending:
                if key not in result and key not in unprocessed:
                    result[key] = Absent.NOT_FOUND
            pending = [key for key in pending if key in unprocessed]
            if not pending:
                break
            if attempt < self._max_attempts:
                self._sleep(backoff_seconds(attempt, self._jitter))
        if pending:
            logger.warning("challenge table left keys unprocessed", extra={"keys": len(pending)})
            result.update(dict.fromkeys(pending, Absent.UNAVAILABLE))
        return result, False


@lru_cache(maxsize=1024)  # a few challenges, thousands of records each: one immutable Resolution per destination
def _routable(challenge_id: str, legacy_challenge_id: int | None, skip_reason: str | None) -> Resolution:
    return Resolution(challenge_id=challenge_id, legacy_challenge_id=legacy_challenge_id, skip_reason=skip_reason)


def _alias_target(value: Lookup) -> str | None:
    if not isinstance(value, ChallengeRecord) or not value.alias_of:
        return None
    return canonical_uuid(value.alias_of.strip())


def _parse_item(item: dict[str, Any]) -> tuple[str, Lookup]:
    plain = {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}
    key = str(plain.get(CHALLENGE_TABLE_PARTITION_KEY))
    try:
        return key, ChallengeRecord.model_validate(plain)
    except ValidationError:
        logger.error("malformed challenge table item", extra={"challenge_key": key})
        return key, Absent.INVALID


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
