"""The base of every function's settings model: the environment mapping read by field name, and its refusal."""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Lambda retries a failed asynchronous invocation twice, about 1 and then 2 minutes later (decision 074).
LAMBDA_ASYNC_RETRY_WINDOW_SECONDS = 180


class SettingsError(RuntimeError):
    """The function's environment is incomplete or invalid; the message names the variables."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class EnvSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    environment_name: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")
    powertools_service_name: str
    powertools_metrics_namespace: str = "MMProcessor"
    powertools_log_level: str = "INFO"

    @classmethod
    def env_var_names(cls) -> frozenset[str]:
        return frozenset(name.upper() for name in cls.model_fields)

    @classmethod
    def required_env_var_names(cls) -> frozenset[str]:
        return frozenset(name.upper() for name, field in cls.model_fields.items() if field.is_required())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"{str(err['loc'][0]).upper() if err['loc'] else cls.__name__}: {err['msg']}" for err in error.errors()
            )
            raise SettingsError(f"{cls.__name__} from environment: {problems}") from None

    def to_env(self) -> dict[str, str]:
        """The environment a deployment sets for this function (all fields, as strings)."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, tuple | list):
                text = ",".join(str(v) for v in value)
            elif isinstance(value, StrEnum):
                text = value.value
            else:
                text = str(value)
            env[name.upper()] = text
        return env
