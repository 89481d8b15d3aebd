"""Per-challenge configuration from SSM (`/mm-processor/challenges/{id}/config`), cached with a TTL.

Shared by the challenge processor (one challenge per function) and the completion function (any
challenge): both hand in `name_for(challenge_id) -> parameter name`.

Only a successfully parsed config is cached; a failure is never cached, so the next call reads SSM
again. A caller that suspects a cached config is stale (e.g. ECS said the task definition is gone)
passes `force_refresh=True`.

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
from typing import Any
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mm_adapters import aws
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.ports import Clock

_MAX_DETAIL = 400


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


@dataclass(frozen=True)
class _Entry:
    config: ChallengeConfig
    fetched_at: float


class ChallengeConfigLoader:
    """`get(challenge_id)` -> `ChallengeConfig`, from a per-challenge cache at most `max_age_seconds` old."""

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
        self._cache: dict[str, _Entry] = {}

    @classmethod
    def under_prefix(cls, parameter_prefix: str, max_age_seconds: int) -> ChallengeConfigLoader:
        """The loader of every challenge's `<parameter_prefix>/<challenge id>/config` (completion, sweeper)."""
        prefix = parameter_prefix.rstrip("/")
        return cls(lambda challenge_id: f"{prefix}/{challenge_id}/config", max_age_seconds)

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("ssm")

    def get(self, challenge_id: str, *, force_refresh: bool = False) -> ChallengeConfig:
        entry = self._cache.get(challenge_id)
        now = self._clock()
        if entry is not None and not force_refresh and now - entry.fetched_at < self._max_age:
            return entry.config
        self._cache.pop(challenge_id, None)  # a failed refresh must not leave a stale config behind
        config = self._load(challenge_id)
        if self._max_age > 0:
            self._cache[challenge_id] = _Entry(config, now)
        return config

    def invalidate(self, challenge_id: str | None = None) -> None:
        if challenge_id is None:
            self._cache.clear()
        else:
            self._cache.pop(challenge_id, None)

    def _load(self, challenge_id: str) -> ChallengeConfig:
        name = self._name_for(challenge_id)
        try:
            response = self.client.get_parameter(Name=name, WithDecryption=True)
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
        return parse_challenge_config(challenge_id, name, response["Parameter"]["Value"])


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


__all__ = ["ChallengeConfigError", "ChallengeConfigLoader", "ConfigErrorReason", "parse_challenge_config"]
