"""The environment's caps (`<ssmPrefix>/capacity`, JSON), cached with a TTL like the challenge configs.

Only a parsed document is cached; a failure is never cached, so the next call reads SSM again. A missing or invalid
parameter raises `CapacityConfigError` (naming the parameter and the reason): callers log and count it and admit
nothing, because admitting without a known cap could start any number of tasks (waiting loses nothing).
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mm_adapters import aws
from mm_adapters.challenge_config import ConfigErrorReason
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.ports import Clock

_MAX_DETAIL = 400


class CapacityConfigError(Exception):
    """The environment's caps cannot be read or parsed; `reason` is a stable code, the message says why."""

    def __init__(self, parameter_name: str, reason: ConfigErrorReason, detail: str) -> None:
        self.parameter_name = parameter_name
        self.reason = reason
        self.detail = detail[:_MAX_DETAIL]
        super().__init__(f"capacity config {parameter_name}: {reason.value}: {self.detail}")


class EnvironmentCapacityLoader:
    """`get()` -> `EnvironmentCapacity`, from a cache at most `cache_seconds` old."""

    def __init__(
        self,
        parameter_name: str,
        cache_seconds: int,
        ssm_client: Any | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._name = parameter_name
        self._max_age = cache_seconds
        self._client = ssm_client
        self._clock = clock
        self._cached: tuple[EnvironmentCapacity, float] | None = None

    @property
    def parameter_name(self) -> str:
        return self._name

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("ssm")

    def get(self, force_refresh: bool = False) -> EnvironmentCapacity:
        now = self._clock()
        if self._cached is not None and not force_refresh and now - self._cached[1] < self._max_age:
            return self._cached[0]
        self._cached = None  # a failed refresh must not leave a stale cap behind
        capacity = self._load()
        if self._max_age > 0:
            self._cached = (capacity, now)
        return capacity

    def _load(self) -> EnvironmentCapacity:
        try:
            response = self.client.get_parameter(Name=self._name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            if code == "ParameterNotFound":
                raise CapacityConfigError(
                    self._name, ConfigErrorReason.PARAMETER_MISSING, "no such SSM parameter"
                ) from None
            raise CapacityConfigError(
                self._name, ConfigErrorReason.PARAMETER_UNREADABLE, f"SSM GetParameter failed: {code}"
            ) from None
        except BotoCoreError as error:
            raise CapacityConfigError(
                self._name, ConfigErrorReason.PARAMETER_UNREADABLE, f"SSM unreachable: {type(error).__name__}"
            ) from None
        return parse_environment_capacity(self._name, response["Parameter"]["Value"])


def parse_environment_capacity(parameter_name: str, text: str) -> EnvironmentCapacity:
    """Parse and validate the caps document; every failure is a `CapacityConfigError` naming the fields."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CapacityConfigError(
            parameter_name, ConfigErrorReason.NOT_JSON, f"not JSON ({error.msg}, line {error.lineno})"
        ) from None
    if not isinstance(document, dict):
        raise CapacityConfigError(
            parameter_name, ConfigErrorReason.NOT_JSON, f"expected a JSON object, got {type(document).__name__}"
        )
    try:
        return EnvironmentCapacity.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'document'}: {err['msg']}" for err in error.errors()
        )
        raise CapacityConfigError(parameter_name, ConfigErrorReason.INVALID_FIELDS, problems) from None


__all__ = ["CapacityConfigError", "EnvironmentCapacityLoader", "parse_environment_capacity"]
