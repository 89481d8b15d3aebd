"""Per-challenge configuration from SSM (`/mm-processor/challenges/{id}/config`), cached by version (decision 121).

Shared by the challenge processor (one challenge per function) and the completion function (any
challenge): both hand in `name_for(challenge_id) -> parameter name`.

**Versions, not timers.** An SSM parameter version is immutable. A caller that read the version in a capacity pool
item (`configVersion`, written by the sweeper and the operator's `caps set`) passes it (`observed_version=`) or
`observe`s it: the cached config of that version is used whatever its age, and a different version is read once
(`GetParameter Name=<name>:<version>`). Without a version observed in the last `max_age_seconds` the cache is a TTL,
as before. `VersionedCache` holds that rule for both loaders (this one and the environment's caps).

Only a successfully parsed config is cached; a failure is never cached, so the next call reads SSM
again. A caller that suspects a cached config is stale (e.g. ECS said the task definition is gone)
passes `force_refresh=True` (the latest version is read).

Why not Powertools Parameters: its cache runs on the wall clock (a test cannot expire it without
sleeping) and it folds every SSM error into one `GetParameterError` whose only distinction is the
message text; here the reason (missing / unreadable / not JSON / invalid fields) is a value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mm_adapters import aws
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.ports import Clock

_MAX_DETAIL = 400
_VERSIONED_READ_REFUSED = frozenset({"ParameterVersionNotFound", "AccessDeniedException"})


class ConfigErrorReason(StrEnum):
    PARAMETER_MISSING = "parameter_missing"
    PARAMETER_UNREADABLE = "parameter_unreadable"  # SSM refused or failed (access, throttling, network)
    NOT_JSON = "not_json"
    INVALID_FIELDS = "invalid_fields"
    CHALLENGE_MISMATCH = "challenge_mismatch"  # the document names another challenge


class ChallengeConfigError(Exception):
    """The challenge's configuration cannot be used; `reason` is a stable code, the message says why."""

    def __init__(self, challenge_id: str, parameter_name: str, reason: ConfigErrorReason, detail: str) -> None:
        self.challenge_id = challenge_id
        self.parameter_name = parameter_name
        self.reason = reason
        self.detail = detail[:_MAX_DETAIL]
        super().__init__(f"challenge config {parameter_name} ({challenge_id}): {reason.value}: {self.detail}")


_Value = TypeVar("_Value")


@dataclass(frozen=True)
class _Entry(Generic[_Value]):
    value: _Value
    version: int | None  # the SSM parameter version it was read at (None: the response named none)
    fetched_at: float


class VersionedCache(Generic[_Value]):
    """Parsed parameters per key, with the version each was read at and the versions callers saw in pool items.

    An entry is used when the version observed in the last `max_age` seconds is its own, or (the pool item lags
    behind a newer read: a forced refresh, or the sweeper has not caught up yet) when it is newer than that and
    younger than `max_age`; with no recent observation, when it is younger than `max_age` (the TTL). So a change
    takes effect as soon as its version is observed, and never later than the TTL after the last observation.
    """

    def __init__(self, max_age: float) -> None:
        self._max_age = max_age
        self._entries: dict[str, _Entry[_Value]] = {}
        self._observed: dict[str, tuple[int, float]] = {}  # key -> (version, when observed)

    def observe(self, key: str, version: int | None, now: float) -> None:
        """A version seen in a pool item. None (an item written before the first sweep) changes nothing."""
        if version is not None:
            self._observed[key] = (int(version), now)

    def observed(self, key: str, now: float) -> int | None:
        """The version observed in the last `max_age` seconds, else None (the TTL decides)."""
        seen = self._observed.get(key)
        if seen is None or now - seen[1] >= self._max_age:
            return None
        return seen[0]

    def usable(self, key: str, now: float) -> _Value | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        young = now - entry.fetched_at < self._max_age
        observed = self.observed(key, now)
        if observed is None:
            return entry.value if young else None
        if entry.version == observed or (young and entry.version is not None and entry.version > observed):
            return entry.value
        return None

    def version_of(self, key: str) -> int | None:
        entry = self._entries.get(key)
        return entry.version if entry is not None else None

    def store(self, key: str, value: _Value, version: int | None, now: float) -> None:
        if self._max_age > 0:
            self._entries[key] = _Entry(value, version, now)

    def drop(self, key: str | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)


def read_parameter(client: Any, name: str, version: int | None, **options: Any) -> dict[str, Any]:
    """`GetParameter` of `name` at `version` (`<name>:<version>`), or of its latest version when `version` is None
    or the versioned read is refused: SSM no longer has that version (a parameter deleted and created again restarts
    at 1; SSM keeps the last 100 versions), or a policy that does not cover the selector (never seen: a safety net,
    one more read rather than no config). Returns the response's `Parameter`; SSM's errors propagate to the caller,
    which names them."""
    if version is not None:
        try:
            return dict(client.get_parameter(Name=f"{name}:{version}", **options)["Parameter"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _VERSIONED_READ_REFUSED:
                raise
    return dict(client.get_parameter(Name=name, **options)["Parameter"])


def parameter_version(parameter: dict[str, Any]) -> int | None:
    version = parameter.get("Version")
    return int(version) if version is not None else None


class ChallengeConfigLoader:
    """`get(challenge_id)` -> `ChallengeConfig`, cached per challenge by version (`VersionedCache`)."""

    def __init__(
        self,
        name_for: Callable[[str], str],
        max_age_seconds: int,
        ssm_client: Any | None = None,
        *,
        clock: Clock = time.monotonic,  # only differences matter: a monotonic clock suits the TTL
    ) -> None:
        self._name_for = name_for
        self._max_age = max_age_seconds
        self._client = ssm_client
        self._clock = clock
        self._cache: VersionedCache[ChallengeConfig] = VersionedCache(max_age_seconds)

    @classmethod
    def under_prefix(cls, parameter_prefix: str, max_age_seconds: int) -> ChallengeConfigLoader:
        """The loader of every challenge's `<parameter_prefix>/<challenge id>/config` (completion, sweeper)."""
        prefix = parameter_prefix.rstrip("/")
        return cls(lambda challenge_id: f"{prefix}/{challenge_id}/config", max_age_seconds)

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("ssm")

    def get(
        self, challenge_id: str, *, force_refresh: bool = False, observed_version: int | None = None
    ) -> ChallengeConfig:
        """The config; `observed_version`: the version the caller read in a pool item or run item (`observe`)."""
        now = self._clock()
        self._cache.observe(challenge_id, observed_version, now)
        if not force_refresh:
            cached = self._cache.usable(challenge_id, now)
            if cached is not None:
                return cached
        self._cache.drop(challenge_id)  # a failed refresh must not leave a stale config behind
        version = None if force_refresh else self._cache.observed(challenge_id, now)
        config, read_version = self._load(challenge_id, version)
        self._cache.store(challenge_id, config, read_version, now)
        return config

    def observe(self, challenge_id: str, version: int | None) -> None:
        """The config version read in the challenge's pool item (`configVersion`); None changes nothing."""
        self._cache.observe(challenge_id, version, self._clock())

    def version_of(self, challenge_id: str) -> int | None:
        """The SSM version of the cached config (what a launch records on the run item), None if unknown."""
        return self._cache.version_of(challenge_id)

    def invalidate(self, challenge_id: str | None = None) -> None:
        self._cache.drop(challenge_id)

    def _load(self, challenge_id: str, version: int | None) -> tuple[ChallengeConfig, int | None]:
        name = self._name_for(challenge_id)
        try:
            parameter = read_parameter(self.client, name, version, WithDecryption=True)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            if code == "ParameterNotFound":
                raise ChallengeConfigError(
                    challenge_id, name, ConfigErrorReason.PARAMETER_MISSING, "no such SSM parameter"
                ) from None
            raise ChallengeConfigError(
                challenge_id, name, ConfigErrorReason.PARAMETER_UNREADABLE, f"SSM GetParameter failed: {code}"
            ) from None
        except BotoCoreError as error:
            raise ChallengeConfigError(
                challenge_id, name, ConfigErrorReason.PARAMETER_UNREADABLE, f"SSM unreachable: {type(error).__name__}"
            ) from None
        return parse_challenge_config(challenge_id, name, parameter["Value"]), parameter_version(parameter)


def parse_challenge_config(challenge_id: str, parameter_name: str, text: str) -> ChallengeConfig:
    """Parse and validate one config document; every failure is a `ChallengeConfigError` naming the fields."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ChallengeConfigError(
            challenge_id, parameter_name, ConfigErrorReason.NOT_JSON, f"not JSON ({error.msg}, line {error.lineno})"
        ) from None
    if not isinstance(document, dict):
        raise ChallengeConfigError(
            challenge_id,
            parameter_name,
            ConfigErrorReason.NOT_JSON,
            f"expected a JSON object, got {type(document).__name__}",
        )
    try:
        config = ChallengeConfig.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'document'}: {err['msg']}" for err in error.errors()
        )
        raise ChallengeConfigError(challenge_id, parameter_name, ConfigErrorReason.INVALID_FIELDS, problems) from None
    if not _same_challenge(config.challenge_id, challenge_id):
        raise ChallengeConfigError(
            challenge_id,
            parameter_name,
            ConfigErrorReason.CHALLENGE_MISMATCH,
            f"challengeId in the document is {config.challenge_id}",
        )
    return config


def _same_challenge(a: str, b: str) -> bool:
    try:
        return UUID(a) == UUID(b)
    except ValueError:
        return a == b


__all__ = [
    "ChallengeConfigError",
    "ChallengeConfigLoader",
    "ConfigErrorReason",
    "VersionedCache",
    "parameter_version",
    "parse_challenge_config",
    "read_parameter",
]
