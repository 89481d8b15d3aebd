"""Typed configuration of one deployment environment (`infrastructure/config/<env>.json`).

Pure pydantic, no CDK import: the CDK app, the local pipeline and the tests all read environments through
`load_environment()`, so they see the same values. Deploy-time overrides from the seed design still work, as
environment variables or `-c NAME=value` context (context wins): VPC_ID, PRIVATE_SUBNET_IDS, MSK_CLUSTER_ARN,
KAFKA_TOPIC, ECS_CLUSTER_ARN, ECS_SUBNETS, ECS_SECURITY_GROUP, SUBMISSION_API_URL, CHALLENGE_IDS, ALARM_EMAIL,
AWS_ACCOUNT, AWS_REGION_NAME.

An invalid or missing setting raises `EnvironmentConfigError` naming the setting, so `cdk synth` fails with a
message a platform engineer can act on.

One module per section: `base` (the base model, the error, limits), `kafka`, `network` (VPC and ECS placement),
`token`, `tracing`, `challenges` (challenges, phases, shards), `capacity`, `sizing`, `smoke`; `environment` holds
`EnvironmentConfig` and the checks spanning sections; `loading` reads the JSON and applies overrides. Import
from this package (`from infrastructure.config import EnvironmentConfig, load_environment`), not its modules.
"""

from infrastructure.config.base import (
    KAFKA_INVOCATIONS_PER_POLLER,
    LAMBDA_UNRESERVED_MINIMUM,
    LOG_RETENTION_DAYS,
    MAX_CHALLENGE_SHARDS,
    MAX_CHALLENGES_PER_STACK,
    EnvironmentConfigError,
)
from infrastructure.config.capacity import CapacitySettings
from infrastructure.config.challenges import ChallengeDefaults, ChallengeSettings, PhaseSettings, stable_shard
from infrastructure.config.environment import EnvironmentConfig
from infrastructure.config.kafka import KafkaAuthentication, KafkaSettings, StartingPosition
from infrastructure.config.loading import (
    CONFIG_DIR,
    DEFAULT_ENVIRONMENT,
    OVERRIDE_NAMES,
    environment_from_os,
    load_environment,
    overrides_from,
    parse_environment,
)
from infrastructure.config.network import EcsSettings, NetworkSettings
from infrastructure.config.sizing import SIZING_DEFAULTS, FunctionSizing
from infrastructure.config.smoke import SmokeSettings
from infrastructure.config.token import TokenConfig
from infrastructure.config.tracing import TracingMode, TracingSettings

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_ENVIRONMENT",
    "KAFKA_INVOCATIONS_PER_POLLER",
    "LAMBDA_UNRESERVED_MINIMUM",
    "LOG_RETENTION_DAYS",
    "MAX_CHALLENGES_PER_STACK",
    "MAX_CHALLENGE_SHARDS",
    "OVERRIDE_NAMES",
    "SIZING_DEFAULTS",
    "CapacitySettings",
    "ChallengeDefaults",
    "ChallengeSettings",
    "EcsSettings",
    "EnvironmentConfig",
    "EnvironmentConfigError",
    "FunctionSizing",
    "KafkaAuthentication",
    "KafkaSettings",
    "NetworkSettings",
    "PhaseSettings",
    "SmokeSettings",
    "StartingPosition",
    "TokenConfig",
    "TracingMode",
    "TracingSettings",
    "environment_from_os",
    "load_environment",
    "overrides_from",
    "parse_environment",
    "stable_shard",
]
