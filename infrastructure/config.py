"""Typed configuration of one deployment environment (`infrastructure/config/<env>.json`).

Pure pydantic, no CDK import: the CDK app, the local pipeline and the tests all read environments through
`load_environment()`, so they see the same values. Deploy-time overrides from the seed design still work, as
environment variables or `-c NAME=value` context (context wins): VPC_ID, PRIVATE_SUBNET_IDS, MSK_CLUSTER_ARN,
KAFKA_TOPIC, ECS_CLUSTER_ARN, ECS_SUBNETS, ECS_SECURITY_GROUP, SUBMISSION_API_URL, CHALLENGE_IDS, ALARM_EMAIL,
AWS_ACCOUNT, AWS_REGION_NAME.

An invalid or missing setting raises `EnvironmentConfigError` naming the setting, so `cdk synth` fails with a
message a platform engineer can act on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from mm_shared.constants import DEFAULT_SSM_PREFIX, DEFAULT_SUBMISSION_TOPIC
from mm_shared.models.base import CanonicalUuid
from mm_shared.models.challenge import ScorerCredentialsMode
from mm_shared.settings import TokenSource

CONFIG_DIR = Path(__file__).resolve().parent / "config"
DEFAULT_ENVIRONMENT = "example"

_ARN = r"^arn:aws[a-zA-Z-]*:"
# A shard stack holds at most this many challenge processors (CloudFormation: 500 resources per stack).
MAX_CHALLENGES_PER_STACK = 30
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


class EnvironmentConfigError(ValueError):
    """The environment configuration is invalid; the message names each offending setting."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )


class KafkaAuthentication(StrEnum):
    IAM = "iam"
    SASL_SCRAM_512 = "sasl_scram_512"


class StartingPosition(StrEnum):
    LATEST = "LATEST"
    TRIM_HORIZON = "TRIM_HORIZON"


class FunctionSizing(_Model):
    memory_mb: int = Field(default=256, ge=128, le=10_240)
    timeout_seconds: int = Field(default=60, ge=3, le=900)
    reserved_concurrency: int | None = Field(default=None, ge=1)


class KafkaSettings(_Model):
    cluster_arn: str = Field(pattern=_ARN + "kafka:")
    topic: str = DEFAULT_SUBMISSION_TOPIC
    consumer_group_id: str | None = None  # default: mm-processor-<env>
    batch_size: int = Field(default=100, ge=1, le=10_000)
    batching_window_seconds: int = Field(default=1, ge=0, le=300)
    starting_position: StartingPosition = StartingPosition.LATEST
    authentication: KafkaAuthentication = KafkaAuthentication.IAM
    sasl_scram_secret_arn: str | None = Field(default=None, pattern=_ARN + "secretsmanager:")
    # Bounded retries so one poison batch never blocks a partition (provisioned mode, see decision log).
    retry_attempts: int = Field(default=10, ge=0, le=10_000)
    max_record_age_seconds: int = Field(default=21_600, ge=60, le=604_800)
    minimum_pollers: int = Field(default=1, ge=1, le=200)
    maximum_pollers: int = Field(default=2, ge=1, le=2000)

    @model_validator(mode="after")
    def _auth(self) -> Self:
        if self.authentication is KafkaAuthentication.SASL_SCRAM_512 and not self.sasl_scram_secret_arn:
            raise ValueError("kafka.saslScramSecretArn is required when kafka.authentication is sasl_scram_512")
        if self.maximum_pollers < self.minimum_pollers:
            raise ValueError("kafka.maximumPollers must be >= kafka.minimumPollers")
        return self


class NetworkSettings(_Model):
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    private_subnet_ids: tuple[str, ...] = Field(min_length=1)
    availability_zones: tuple[str, ...] = Field(min_length=1)
    # Run the functions inside the VPC (needs VPC endpoints or NAT: see docs/deploy.md).
    functions_in_vpc: bool = True

    @field_validator("private_subnet_ids")
    @classmethod
    def _subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for subnet in value:
            if not re.fullmatch(r"subnet-[0-9a-f]{8,17}", subnet):
                raise ValueError(f"not a subnet id: {subnet!r}")
        return value


class EcsSettings(_Model):
    cluster_arn: str = Field(pattern=_ARN + "ecs:[a-z0-9-]+:\\d{12}:cluster/")
    subnets: tuple[str, ...] = Field(min_length=1)  # scorer tasks run here (private, no public IP)
    security_group_ids: tuple[str, ...] = Field(min_length=1)


class TokenConfig(_Model):
    source: TokenSource = TokenSource.STATIC_PARAMETER
    auth0_proxy_url: str | None = None
    auth0_credentials_secret_arn: str | None = Field(default=None, pattern=_ARN + "secretsmanager:")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.source is TokenSource.AUTH0_PROXY and not (self.auth0_proxy_url and self.auth0_credentials_secret_arn):
            raise ValueError("token.auth0ProxyUrl and token.auth0CredentialsSecretArn are required for auth0_proxy")
        return self


class ChallengeSettings(_Model):
    """One challenge: its processor function, queue, scorer task definition and reporting."""

    challenge_id: CanonicalUuid
    name: str = Field(min_length=1, max_length=200)
    legacy_id: int | None = Field(default=None, ge=1)
    active: bool = True
    scorer_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    # Imported scorer task definition (created outside this stack) and the roles it uses, for iam:PassRole.
    task_definition_arn: str = Field(pattern=_ARN + "ecs:[a-z0-9-]+:\\d{12}:task-definition/[A-Za-z0-9_-]+:\\d+$")
    task_role_arn: str = Field(pattern=_ARN + "iam::\\d{12}:role/")
    execution_role_arn: str = Field(pattern=_ARN + "iam::\\d{12}:role/")
    scorer_container_name: str = "scorer"
    timeout_seconds: int = Field(default=3600, ge=30, le=86_400)
    cpu: int | None = None
    memory_mb: int | None = None
    max_concurrency: int = Field(default=5, ge=2, le=1000)  # SQS ESM maximumConcurrency (2 is the AWS minimum)
    scorer_credentials_mode: ScorerCredentialsMode = ScorerCredentialsMode.TASK_DEFINITION_SECRETS
    review_type_id: CanonicalUuid
    reviewer_id: CanonicalUuid
    score_card_id: int | str
    test_type: str = Field(default="provisional", pattern=r"^(example|provisional|system)$")
    report_on_success: bool = False

    @property
    def task_definition_family(self) -> str:
        return self.task_definition_arn.rsplit("/", 1)[1].rsplit(":", 1)[0]


class ChallengeDefaults(_Model):
    """Settings for challenges named only in CHALLENGE_IDS (a seed-design override) and not listed in full."""

    scorer_type: str
    task_definition_arn: str = Field(pattern=_ARN + "ecs:")
    task_role_arn: str = Field(pattern=_ARN + "iam::")
    execution_role_arn: str = Field(pattern=_ARN + "iam::")
    review_type_id: str
    reviewer_id: str
    score_card_id: int | str


class EnvironmentConfig(_Model):
    environment: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    network: NetworkSettings
    kafka: KafkaSettings
    ecs: EcsSettings
    submission_api_url: str = Field(pattern=r"^https://")
    allowed_url_hosts: tuple[str, ...] = Field(min_length=1)
    token: TokenConfig = TokenConfig()
    ssm_prefix: str = Field(default=DEFAULT_SSM_PREFIX, pattern=r"^/[A-Za-z0-9/_.-]+[^/]$")
    router: FunctionSizing = FunctionSizing(memory_mb=512, timeout_seconds=60)
    challenge_processor: FunctionSizing = FunctionSizing(memory_mb=256, timeout_seconds=30)
    completion: FunctionSizing = FunctionSizing(memory_mb=256, timeout_seconds=60)
    timeout_sweeper: FunctionSizing = FunctionSizing(memory_mb=256, timeout_seconds=120)
    sweeper_interval_minutes: int = Field(default=5, ge=1, le=60)
    log_retention_days: int = Field(default=30, ge=1, le=3653)
    status_ttl_days: int = Field(default=90, ge=1, le=3650)
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    # About 15 resources per challenge: 30 keeps a shard stack under CloudFormation's 500 (decision 040).
    challenges_per_stack: int = Field(default=25, ge=1, le=MAX_CHALLENGES_PER_STACK)
    write_challenge_config: bool = True  # write each challenge's SSM config and challenge-table row
    challenge_defaults: ChallengeDefaults | None = None
    challenges: tuple[ChallengeSettings, ...] = Field(min_length=1)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {', '.join(map(str, LOG_RETENTION_DAYS))} days")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [c.challenge_id for c in self.challenges]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"challenges: duplicate challengeId {duplicates}")
        legacy = [c.legacy_id for c in self.challenges if c.legacy_id is not None]
        if len(legacy) != len(set(legacy)):
            raise ValueError("challenges: duplicate legacyId")
        return self

    def challenge(self, challenge_id: str) -> ChallengeSettings:
        for challenge in self.challenges:
            if challenge.challenge_id == challenge_id:
                return challenge
        raise KeyError(challenge_id)


# ------------------------------------------------------------------ loading with overrides
_OVERRIDES: dict[str, tuple[str, ...]] = {
    # override name -> path into the raw JSON (camelCase keys)
    "VPC_ID": ("network", "vpcId"),
    "PRIVATE_SUBNET_IDS": ("network", "privateSubnetIds"),
    "MSK_CLUSTER_ARN": ("kafka", "clusterArn"),
    "KAFKA_TOPIC": ("kafka", "topic"),
    "ECS_CLUSTER_ARN": ("ecs", "clusterArn"),
    "ECS_SUBNETS": ("ecs", "subnets"),
    "ECS_SECURITY_GROUP": ("ecs", "securityGroupIds"),
    "SUBMISSION_API_URL": ("submissionApiUrl",),
    "ALARM_EMAIL": ("alarmEmail",),
    "AWS_ACCOUNT": ("account",),
    "AWS_REGION_NAME": ("region",),
}
_LIST_OVERRIDES = {"PRIVATE_SUBNET_IDS", "ECS_SUBNETS", "ECS_SECURITY_GROUP"}
OVERRIDE_NAMES = (*_OVERRIDES, "CHALLENGE_IDS")


def _set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _apply_challenge_ids(raw: dict[str, Any], value: str) -> None:
    """CHALLENGE_IDS: deploy exactly these challenges; ids not listed in full use `challengeDefaults`."""
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    listed = {str(c.get("challengeId", "")).lower(): c for c in raw.get("challenges", [])}
    defaults = raw.get("challengeDefaults")
    selected: list[dict[str, Any]] = []
    for challenge_id in wanted:
        if challenge_id.lower() in listed:
            selected.append(listed[challenge_id.lower()])
        elif defaults:
            selected.append({"challengeId": challenge_id, "name": challenge_id, **defaults})
        else:
            raise EnvironmentConfigError(
                f"CHALLENGE_IDS: {challenge_id} is not in `challenges` and there are no `challengeDefaults`"
            )
    raw["challenges"] = selected


def load_environment(
    name: str = DEFAULT_ENVIRONMENT,
    *,
    overrides: Mapping[str, str] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> EnvironmentConfig:
    """Read `<config_dir>/<name>.json`, apply overrides (env vars and/or CDK context), validate."""
    path = config_dir / f"{name}.json"
    if not re.fullmatch(r"[a-z0-9-]+", name) or not path.is_file():
        available = sorted(p.stem for p in config_dir.glob("*.json"))
        raise EnvironmentConfigError(f"env: no configuration {path.name!r} (available: {', '.join(available)})")
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise EnvironmentConfigError(f"{path}: not valid JSON ({error})") from None
    return parse_environment(raw, overrides=overrides, source=str(path))


def parse_environment(
    raw: dict[str, Any], *, overrides: Mapping[str, str] | None = None, source: str = "<config>"
) -> EnvironmentConfig:
    raw = json.loads(json.dumps(raw))  # deep copy
    for override, value in (overrides or {}).items():
        if value in (None, ""):
            continue
        if override == "CHALLENGE_IDS":
            _apply_challenge_ids(raw, value)
        elif override in _OVERRIDES:
            parsed: Any = [v.strip() for v in value.split(",") if v.strip()] if override in _LIST_OVERRIDES else value
            _set_path(raw, _OVERRIDES[override], parsed)
    try:
        return EnvironmentConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in error.errors()
        )
        raise EnvironmentConfigError(f"{source}: {problems}") from None


def overrides_from(environ: Mapping[str, str], context: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Collect overrides: environment variables first, CDK context (`-c NAME=value`) wins."""
    found = {name: environ[name] for name in OVERRIDE_NAMES if environ.get(name)}
    for name in OVERRIDE_NAMES:
        if context and context.get(name) not in (None, ""):
            found[name] = str(context[name])
    return found


def environment_from_os(name: str | None = None) -> EnvironmentConfig:
    """Convenience for tools: the environment named by `name` or MM_ENV, with OS environment overrides."""
    return load_environment(name or os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT), overrides=overrides_from(os.environ))
