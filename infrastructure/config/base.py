"""What every environment config model shares: the base model, the error, ARN pattern and the platform limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class EnvironmentConfigError(ValueError):
    """The environment configuration is invalid; the message names each offending setting."""


class ConfigModel(BaseModel):
    """camelCase JSON, unknown keys refused, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )


# Every ARN setting starts so (any partition).
ARN = r"^arn:aws[a-zA-Z-]*:"
# A shard stack holds at most this many challenge processors (CloudFormation: 500 resources per stack).
MAX_CHALLENGES_PER_STACK = 30
# Shard stacks are numbered 01..99 (`mm-<env>-challenges-NN`, decision 050).
MAX_CHALLENGE_SHARDS = 99
# Lambda keeps this much of the account's concurrency for functions without a reservation (decision 052).
LAMBDA_UNRESERVED_MINIMUM = 100
# A provisioned Kafka event poller invokes the function at most this many times at once (decision 052).
KAFKA_INVOCATIONS_PER_POLLER = 5
# The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
