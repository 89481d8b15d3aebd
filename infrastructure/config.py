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

import hashlib
import json
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from mm_contracts.models.base import CanonicalUuid
from mm_contracts.models.capacity import ChallengeCapacity, EnvironmentCapacity
from mm_contracts.models.challenge import ChallengeConfig, ScorerCredentialsMode, ScorerEnvironment
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, PhaseConfig, Platform, ScoringPhase, submission_id_fits
from mm_contracts.names import DEFAULT_SUBMISSION_TOPIC, environment_ssm_prefix
from mm_contracts.settings import TokenSource
from mm_contracts.url_policy import url_refusal

CONFIG_DIR = Path(__file__).resolve().parent / "config"
DEFAULT_ENVIRONMENT = "example"

_ARN = r"^arn:aws[a-zA-Z-]*:"
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


class EnvironmentConfigError(ValueError):
    """The environment configuration is invalid; the message names each offending setting."""


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )


class KafkaAuthentication(StrEnum):
    """How the router's event source mapping authenticates to MSK (decision 054)."""

    IAM = "iam"
    SASL_SCRAM_512 = "sasl_scram_512"
    MTLS = "mtls"  # client certificate from Secrets Manager (CLIENT_CERTIFICATE_TLS_AUTH)


class StartingPosition(StrEnum):
    LATEST = "LATEST"
    TRIM_HORIZON = "TRIM_HORIZON"


class FunctionSizing(_Model):
    memory_mb: int = Field(default=256, ge=128, le=10_240)
    timeout_seconds: int = Field(default=60, ge=3, le=900)
    reserved_concurrency: int | None = Field(default=None, ge=1)


# A complete secret ARN (with Secrets Manager's 6-character suffix): grants and KMS conditions match it exactly.
_SECRET_SUFFIX = r"[A-Za-z0-9/_+=.@-]*-[A-Za-z0-9]{6}$"


class KafkaSettings(_Model):
    """The MSK source. Secrets for `sasl_scram_512` and `mtls` live in Secrets Manager, per environment, under a
    customer-managed key (`secretKmsKeyArn`): MSK refuses SCRAM secrets under the AWS-managed key, and the
    router's role can only be granted kms:Decrypt on a key we name. Naming convention (decision 054):
    SCRAM `AmazonMSK_mm-processor-<env>` (MSK requires the `AmazonMSK_` prefix), client certificate
    `mm-processor/<env>/kafka-client-certificate` (JSON `certificate` chain + `privateKey`, PEM).
    """

    cluster_arn: str = Field(pattern=_ARN + "kafka:")
    # The v5 topic (the seed design's KAFKA_TOPIC). The v6 topic is the platform's own name (V6_SUBMISSION_TOPIC):
    # the router reads a record as v6 by that topic, so it is not a setting (decision 084).
    topic: str = DEFAULT_SUBMISSION_TOPIC
    # The v5 mapping's consumer group (default mm-processor-<env>); the v6 mapping joins `<group>-v6`: every
    # Kafka event source needs a consumer group of its own.
    consumer_group_id: str | None = None
    batch_size: int = Field(default=100, ge=1, le=10_000)
    batching_window_seconds: int = Field(default=1, ge=0, le=300)
    starting_position: StartingPosition = StartingPosition.LATEST
    authentication: KafkaAuthentication = KafkaAuthentication.IAM
    sasl_scram_secret_arn: str | None = Field(
        default=None, pattern=_ARN + r"secretsmanager:[a-z0-9-]+:\d{12}:secret:AmazonMSK_" + _SECRET_SUFFIX
    )
    client_certificate_secret_arn: str | None = Field(
        default=None, pattern=_ARN + r"secretsmanager:[a-z0-9-]+:\d{12}:secret:" + _SECRET_SUFFIX
    )
    # The customer-managed key both secrets are encrypted with (a key ARN, not an alias: IAM scopes by key ARN).
    secret_kms_key_arn: str | None = Field(default=None, pattern=_ARN + r"kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
    # mTLS: alarm when the client certificate expires in fewer days than this (decision 056).
    certificate_expiry_warning_days: int = Field(default=30, ge=7, le=365)
    # Bounded retries so one poison batch never blocks a partition (provisioned mode, see decision log).
    retry_attempts: int = Field(default=10, ge=0, le=10_000)
    max_record_age_seconds: int = Field(default=21_600, ge=60, le=604_800)
    minimum_pollers: int = Field(default=1, ge=1, le=200)
    maximum_pollers: int = Field(default=2, ge=1, le=2000)
    # Whole failed batches in the on-failure bucket are kept this long (decision 055).
    failure_record_retention_days: int = Field(default=30, ge=7, le=3650)

    @model_validator(mode="after")
    def _auth(self) -> Self:
        auth = self.authentication
        if auth is KafkaAuthentication.SASL_SCRAM_512 and not self.sasl_scram_secret_arn:
            raise ValueError("kafka.saslScramSecretArn is required when kafka.authentication is sasl_scram_512")
        if auth is KafkaAuthentication.MTLS and not self.client_certificate_secret_arn:
            raise ValueError("kafka.clientCertificateSecretArn is required when kafka.authentication is mtls")
        if auth is not KafkaAuthentication.IAM and not self.secret_kms_key_arn:
            raise ValueError(
                f"kafka.secretKmsKeyArn is required when kafka.authentication is {auth.value}: the secret must be "
                "encrypted with a customer-managed key (the event source cannot read it under aws/secretsmanager)"
            )
        unused = [
            name
            for name, value, used_by in (
                ("saslScramSecretArn", self.sasl_scram_secret_arn, KafkaAuthentication.SASL_SCRAM_512),
                ("clientCertificateSecretArn", self.client_certificate_secret_arn, KafkaAuthentication.MTLS),
            )
            if value and auth is not used_by
        ]
        if unused:
            raise ValueError(f"kafka.{unused[0]} is set but kafka.authentication is {auth.value}: remove one")
        if self.maximum_pollers < self.minimum_pollers:
            raise ValueError("kafka.maximumPollers must be >= kafka.minimumPollers")
        if self.topic == V6_SUBMISSION_TOPIC:
            raise ValueError(
                f"kafka.topic is the v5 topic; {V6_SUBMISSION_TOPIC} is v6's and is subscribed when platforms has v6"
            )
        return self

    def topic_of(self, platform: Platform) -> str:
        """The Kafka topic a platform's submissions arrive on."""
        return V6_SUBMISSION_TOPIC if platform is Platform.V6 else self.topic

    @property
    def authentication_secret_arn(self) -> str | None:
        """The secret the event source mapping authenticates with (None for IAM)."""
        if self.authentication is KafkaAuthentication.SASL_SCRAM_512:
            return self.sasl_scram_secret_arn
        if self.authentication is KafkaAuthentication.MTLS:
            return self.client_certificate_secret_arn
        return None


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
    # auth0_proxy only: a scheduled function keeps a token in `<ssmPrefix>/auth0/scorer-token` (SecureString) for
    # task definitions to reference as ACCESS_TOKEN (Topcoder's ecs-runner, decisions 087 and 091). With
    # static_parameter the token parameter already exists and is what a task definition references.
    scorer_token_parameter: bool = False
    # How often it checks the stored token (the token lives hours; a check reads one parameter).
    scorer_token_refresh_minutes: int = Field(default=30, ge=5, le=720)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.source is TokenSource.AUTH0_PROXY and not (self.auth0_proxy_url and self.auth0_credentials_secret_arn):
            raise ValueError("token.auth0ProxyUrl and token.auth0CredentialsSecretArn are required for auth0_proxy")
        if self.scorer_token_parameter and self.source is not TokenSource.AUTH0_PROXY:
            raise ValueError(
                f"token.scorerTokenParameter needs token.source auth0_proxy: with {self.source.value} the token "
                "parameter <ssmPrefix>/auth0/token already holds a token a task definition can reference"
            )
        return self

    def scorer_token_refusal(self, scorer_environments: dict[str, ScorerEnvironment]) -> str | None:
        """Why this token config cannot serve these challenges (challengeId -> scorerEnvironment), or None.

        Topcoder's ecs-runner needs ACCESS_TOKEN from a parameter its task definition references; with the Auth0
        proxy only the scorer-token parameter is one.
        """
        runners = sorted(c for c, env in scorer_environments.items() if env is ScorerEnvironment.TOPCODER_ECS_RUNNER)
        if runners and self.source is TokenSource.AUTH0_PROXY and not self.scorer_token_parameter:
            return (
                f"token.scorerTokenParameter must be true: challenges {', '.join(runners)} use scorerEnvironment "
                "topcoder_ecs_runner, whose task definition takes ACCESS_TOKEN from an SSM parameter, and with "
                "token.source auth0_proxy only the scorer-token parameter holds one (decision 091)"
            )
        return None


class PhaseSettings(_Model):
    """One phase config of a challenge (runtime: `mm_contracts.models.phase.PhaseConfig`)."""

    phase: ScoringPhase
    start_seed: int = Field(default=1, ge=0, le=2**63 - 1)
    number_of_tests: int = Field(default=1, ge=1, le=1_000_000)
    timeout_seconds: int | None = Field(default=None, ge=30, le=86_400)  # None: the challenge's timeoutSeconds
    on_submission: bool = True  # a new submission launches a run of this phase

    def runtime(self) -> PhaseConfig:
        return PhaseConfig(
            phase=self.phase,
            start_seed=self.start_seed,
            number_of_tests=self.number_of_tests,
            timeout=self.timeout_seconds,
            on_submission=self.on_submission,
        )


class ChallengeSettings(_Model):
    """One challenge: its processor function, queue, scorer task definition and reporting."""

    challenge_id: CanonicalUuid
    name: str = Field(min_length=1, max_length=200)
    legacy_id: int | None = Field(default=None, ge=1)
    active: bool = True
    # The platform that serves this challenge (decision 084); default: the environment's single platform.
    platform: Platform | None = None
    scorer_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    # Imported scorer task definition (created outside this stack) and the roles it uses, for iam:PassRole.
    task_definition_arn: str = Field(pattern=_ARN + "ecs:[a-z0-9-]+:\\d{12}:task-definition/[A-Za-z0-9_-]+:\\d+$")
    task_role_arn: str = Field(pattern=_ARN + "iam::\\d{12}:role/")
    execution_role_arn: str = Field(pattern=_ARN + "iam::\\d{12}:role/")
    scorer_container_name: str = "scorer"
    timeout_seconds: int = Field(default=3600, ge=30, le=86_400)
    cpu: int | None = None
    memory_mb: int | None = None
    # SQS ESM maximumConcurrency (2 is the AWS minimum): how many invocations of the challenge function run at
    # once. It bounds invocations, not scorer tasks: `capacity` bounds the tasks running (decision 097).
    max_concurrency: int = Field(default=5, ge=2, le=1000)
    # Caps on this challenge's running scorer tasks, priority order and supersede policy; carried into the SSM
    # challenge config (`ChallengeConfig.capacity`), which operators may change at run time.
    capacity: ChallengeCapacity = Field(default_factory=ChallengeCapacity)
    # Pin to a shard stack instead of the hashed one (to move a challenge: decision 050).
    shard: int | None = Field(default=None, ge=1, le=MAX_CHALLENGE_SHARDS)
    scorer_credentials_mode: ScorerCredentialsMode = ScorerCredentialsMode.TASK_DEFINITION_SECRETS
    scorer_environment: ScorerEnvironment = ScorerEnvironment.MM_PROCESSOR
    # The phase configs; none: one phase, `testType`, on every new submission (the v5 seed's single run).
    phases: tuple[PhaseSettings, ...] = ()
    # v5 reviews (required for a v5 challenge); v6 summations: `scorecardId` (optional); `reviewTypeId` is also
    # passed to Topcoder's ecs-runner (REVIEW_TYPE_ID) when set.
    review_type_id: CanonicalUuid | None = None
    reviewer_id: CanonicalUuid | None = None
    score_card_id: int | str | None = None
    scorecard_id: str | None = Field(default=None, min_length=1, max_length=64)
    test_type: str = Field(default="provisional", pattern=r"^(example|provisional|system)$")
    report_on_success: bool = False

    @property
    def task_definition_family(self) -> str:
        return self.task_definition_arn.rsplit("/", 1)[1].rsplit(":", 1)[0]

    @property
    def served_by(self) -> Platform:
        """The challenge's platform (the environment config fills a missing one, or refuses it)."""
        if self.platform is None:
            raise EnvironmentConfigError(f"challenges[{self.challenge_id}].platform: not set")
        return self.platform


class ChallengeDefaults(_Model):
    """Settings for challenges named only in CHALLENGE_IDS (a seed-design override) and not listed in full."""

    scorer_type: str
    task_definition_arn: str = Field(pattern=_ARN + "ecs:")
    task_role_arn: str = Field(pattern=_ARN + "iam::")
    execution_role_arn: str = Field(pattern=_ARN + "iam::")
    platform: Platform | None = None
    phases: tuple[PhaseSettings, ...] | None = None
    review_type_id: str | None = None
    reviewer_id: str | None = None
    score_card_id: int | str | None = None
    scorecard_id: str | None = None
    capacity: ChallengeCapacity | None = None


class CapacitySettings(EnvironmentCapacity):
    """The environment's capacity (decision 097): `EnvironmentCapacity` (the runtime model, one source) plus the
    thresholds of the two capacity alarms.

    The runtime part is written by the core stack as the SSM parameter `<ssmPrefix>/capacity` (JSON) when
    `writeChallengeConfig` is true; operators may change that parameter at run time (the functions cache it
    60 s), and the next deploy writes the config's values again.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )

    # Alarm when the oldest waiting run of the environment has waited longer than this.
    oldest_wait_alarm_minutes: int = Field(default=60, ge=1, le=10_080)
    # Alarm when the environment's cap has been reached for this long (at least one sweeper interval).
    cap_reached_alarm_minutes: int = Field(default=30, ge=1, le=1_440)

    def runtime(self) -> EnvironmentCapacity:
        """The SSM parameter's document: exactly the `EnvironmentCapacity` fields of this block."""
        return EnvironmentCapacity.model_validate(
            {name: getattr(self, name) for name in EnvironmentCapacity.model_fields}
        )


class SmokeSettings(_Model):
    """The post-deploy smoke check's synthetic submission (`mm-processor smoke`, decision 083).

    A fixed test submission that exists in this environment's Topcoder (so the scorer can fetch it and the
    completion function can report on it); the smoke deletes its status item afterwards, so every smoke runs
    the same submission again. `memberId` and `url` are what the router would have read from its Kafka record.
    """

    challenge_id: CanonicalUuid  # one of this environment's active challenges (checked when the smoke runs)
    # The test submission's id in the form of the smoke challenge's platform: a UUID (v5) or a 14-character
    # nanoid (v6); checked against the challenge's platform below (EnvironmentConfig._smoke_fits).
    submission_id: str = Field(min_length=1, max_length=64)
    member_id: int = Field(ge=1)
    url: str = Field(pattern=r"^https://")  # on allowedUrlHosts, as the router requires
    # How long the smoke waits for a final state with its report settled (the scorer's run included).
    timeout_seconds: int = Field(default=900, ge=30, le=86_400)


def stable_shard(challenge_id: str, shards: int) -> int:
    """The shard (1..shards) of a canonical challengeId: a SHA-256 digest, the same on every machine and run.

    Python's `hash()` of a str is salted per process, so it would move challenges between synths.
    """
    digest = hashlib.sha256(challenge_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


# Each function's defaults; a sizing block in the JSON overrides only the fields it names (`_defaults`).
# The router, completion, sweeper and certificate monitor reserve concurrency so the challenge queues can never
# starve them (decision 052). The router: 5 invocations per Kafka poller, 2 pollers by default. The sweeper: 1
# also rules out two overlapping sweeps (Lambda retries a throttled scheduled run later).
_SIZING_DEFAULTS: dict[str, FunctionSizing] = {
    "router": FunctionSizing(memory_mb=512, timeout_seconds=60, reserved_concurrency=10),
    "challenge_processor": FunctionSizing(memory_mb=256, timeout_seconds=30),
    "completion": FunctionSizing(memory_mb=256, timeout_seconds=60, reserved_concurrency=20),
    "timeout_sweeper": FunctionSizing(memory_mb=256, timeout_seconds=120, reserved_concurrency=1),
    "certificate_monitor": FunctionSizing(memory_mb=128, timeout_seconds=60, reserved_concurrency=1),
    # One run at a time: two overlapping runs would both fetch and write (decision 091).
    "scorer_token_refresher": FunctionSizing(memory_mb=128, timeout_seconds=60, reserved_concurrency=1),
}


class EnvironmentConfig(_Model):
    environment: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    network: NetworkSettings
    kafka: KafkaSettings
    ecs: EcsSettings
    # The platform profile (decision 084): which Topcoder contracts this environment serves. Both during a
    # migration from v5 to v6 (docs/deploy.md); each challenge is served by exactly one of them.
    platforms: tuple[Platform, ...] = Field(default=(Platform.V5,), min_length=1, max_length=2)
    # Submission API v5 (reviews): required when platforms has v5. review-api-v6 (summations), e.g.
    # https://api.topcoder-dev.com/v6: required when platforms has v6.
    submission_api_url: str | None = Field(default=None, pattern=r"^https://")
    review_api_url: str | None = Field(default=None, pattern=r"^https://")
    allowed_url_hosts: tuple[str, ...] = Field(min_length=1)
    token: TokenConfig = TokenConfig()
    # Default `/mm-processor/<environment>`: environments sharing an account never share a parameter (decision 051).
    ssm_prefix: str = Field(default="", pattern=r"^/[A-Za-z0-9/_.-]+[^/]$")  # filled by `_defaults`
    router: FunctionSizing = _SIZING_DEFAULTS["router"]
    challenge_processor: FunctionSizing = _SIZING_DEFAULTS["challenge_processor"]
    completion: FunctionSizing = _SIZING_DEFAULTS["completion"]
    timeout_sweeper: FunctionSizing = _SIZING_DEFAULTS["timeout_sweeper"]
    certificate_monitor: FunctionSizing = _SIZING_DEFAULTS["certificate_monitor"]
    scorer_token_refresher: FunctionSizing = _SIZING_DEFAULTS["scorer_token_refresher"]
    # The account's Lambda concurrency quota in this region (AWS default 1,000); the reservations and the
    # challenge queues' maximumConcurrency are validated against it (decision 052).
    account_concurrency_limit: int = Field(default=1000, ge=1)
    sweeper_interval_minutes: int = Field(default=5, ge=1, le=60)
    # Caps on running scorer tasks environment-wide, RunTask pacing, capacity alarm thresholds (decision 097).
    capacity: CapacitySettings = CapacitySettings()
    log_retention_days: int = Field(default=30, ge=1, le=3653)
    status_ttl_days: int = Field(default=90, ge=1, le=3650)
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    # About 15 resources per challenge: 30 keeps a shard stack under CloudFormation's 500 (decision 040).
    challenges_per_stack: int = Field(default=25, ge=1, le=MAX_CHALLENGES_PER_STACK)
    # Challenges are hashed into this many shard stacks; changing it moves challenges (decision 050).
    challenge_shards: int = Field(default=16, ge=1, le=MAX_CHALLENGE_SHARDS)
    # Production keeps the tables and the key on stack deletion; a developer's environment destroys them (053).
    retain_data: bool = True
    write_challenge_config: bool = True  # write each challenge's SSM config and challenge-table row
    challenge_defaults: ChallengeDefaults | None = None
    challenges: tuple[ChallengeSettings, ...] = Field(min_length=1)
    # The smoke check's test submission; None: `mm-processor smoke` can only run its health checks.
    smoke: SmokeSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: Any) -> Any:
        """Defaults that depend on other settings: the SSM prefix of this environment, and sizing blocks that
        override only the fields they name (the others keep that function's defaults)."""
        if not isinstance(raw, dict):
            return raw
        merged = dict(raw)
        merged["challenges"] = _challenges_with_default_platform(merged)
        if "ssmPrefix" not in merged and "ssm_prefix" not in merged and isinstance(merged.get("environment"), str):
            merged["ssmPrefix"] = environment_ssm_prefix(merged["environment"].strip())
        for field, default in _SIZING_DEFAULTS.items():
            for key in (field, to_camel(field)):
                if isinstance(merged.get(key), dict):
                    given = {to_camel(name): value for name, value in merged[key].items()}
                    merged[key] = {**default.model_dump(by_alias=True), **given}
        return merged

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {', '.join(map(str, LOG_RETENTION_DAYS))} days")
        return value

    @model_validator(mode="after")
    def _platform_profile(self) -> Self:
        if len(set(self.platforms)) != len(self.platforms):
            raise ValueError("platforms: each platform at most once")
        for platform, field, value in (
            (Platform.V5, "submissionApiUrl", self.submission_api_url),
            (Platform.V6, "reviewApiUrl", self.review_api_url),
        ):
            if platform in self.platforms and not value:
                raise ValueError(f"{field} is required when platforms has {platform.value}")
            if platform not in self.platforms and value:
                raise ValueError(f"{field} is set but platforms has no {platform.value}: remove it")
        for challenge in self.challenges:
            where = f"challenges[{challenge.challenge_id}]"
            if challenge.platform is None:
                raise ValueError(f"{where}.platform is required: the environment serves {', '.join(self.platforms)}")
            if challenge.platform not in self.platforms:
                raise ValueError(
                    f"{where}.platform is {challenge.platform.value}, not one of the environment's platforms "
                    f"({', '.join(self.platforms)})"
                )
            try:
                self.challenge_config(challenge)
            except ValidationError as error:
                problems = "; ".join(_field_error(err) for err in error.errors())
                raise ValueError(f"{where}: {problems}") from None
        return self

    @property
    def accepted_topics(self) -> tuple[str, ...]:
        """The Kafka topics the router subscribes and accepts: one per platform, in `platforms` order."""
        return tuple(self.kafka.topic_of(platform) for platform in self.platforms)

    def challenge_config(self, challenge: ChallengeSettings) -> ChallengeConfig:
        """The runtime config (`<ssmPrefix>/challenges/{id}/config`) of one challenge; validated with the
        environment, so a config the processors would refuse fails the synth instead."""
        return ChallengeConfig(
            challenge_id=challenge.challenge_id,
            scorer_type=challenge.scorer_type,
            ecs_cluster=self.ecs.cluster_arn,
            ecs_task_definition=challenge.task_definition_arn,
            scorer_container_name=challenge.scorer_container_name,
            timeout=challenge.timeout_seconds,
            cpu=challenge.cpu,
            memory_limit=challenge.memory_mb,
            subnets=list(self.ecs.subnets),
            security_groups=list(self.ecs.security_group_ids),
            scorer_credentials_mode=challenge.scorer_credentials_mode,
            scorer_environment=challenge.scorer_environment,
            platform=challenge.served_by,
            phases=tuple(phase.runtime() for phase in challenge.phases),
            review_type_id=challenge.review_type_id,
            reviewer_id=challenge.reviewer_id,
            score_card_id=challenge.score_card_id,
            scorecard_id=challenge.scorecard_id,
            test_type=challenge.test_type,
            report_on_success=challenge.report_on_success,
            capacity=challenge.capacity,
        )

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

    @model_validator(mode="after")
    def _smoke_fits(self) -> Self:
        """The smoke submission's URL must be one the router would accept. Its challenge being deployed is checked
        by the smoke itself: a CHALLENGE_IDS override deploying a subset must not fail the synth."""
        if self.smoke is None:
            return self
        refusal = url_refusal(self.smoke.url, self.allowed_url_hosts)
        if refusal is not None:
            raise ValueError(f"smoke.url is refused by the submission URL policy: {refusal.value}")
        platform = self.smoke_platform
        if platform is not None and not submission_id_fits(self.smoke.submission_id, platform):
            form = "a 14-character nanoid (A-Za-z0-9_-)" if platform is Platform.V6 else "a canonical UUID"
            raise ValueError(f"smoke.submissionId must be {form}: the smoke challenge is served by {platform.value}")
        return self

    @model_validator(mode="after")
    def _capacity_fits(self) -> Self:
        """Caps that name a phase the challenge never runs, and alarms shorter than one sweep, are refused: the
        gauges the capacity alarms watch are published once per sweeper run."""
        for challenge in self.challenges:
            phases = {phase.phase for phase in self.challenge_config(challenge).effective_phases}
            unknown = sorted(set(challenge.capacity.max_running_tasks_per_phase) - phases)
            if unknown:
                raise ValueError(
                    f"challenges[{challenge.challenge_id}].capacity.maxRunningTasksPerPhase names "
                    f"{', '.join(unknown)}, not a phase of this challenge ({', '.join(sorted(phases))})"
                )
        minutes = self.capacity.cap_reached_alarm_minutes
        if minutes < self.sweeper_interval_minutes:
            raise ValueError(
                f"capacity.capReachedAlarmMinutes={minutes} is shorter than sweeperIntervalMinutes="
                f"{self.sweeper_interval_minutes}: the CapacityFull gauge is published once per sweep"
            )
        return self

    @model_validator(mode="after")
    def _scorer_token_serves_the_runners(self) -> Self:
        refusal = self.token.scorer_token_refusal({c.challenge_id: c.scorer_environment for c in self.challenges})
        if refusal is not None:
            raise ValueError(refusal)
        return self

    @property
    def smoke_platform(self) -> Platform | None:
        """The platform of the smoke challenge: its own when it is configured here, else the single platform."""
        if self.smoke is None:
            return None
        challenge = next((c for c in self.challenges if c.challenge_id == self.smoke.challenge_id), None)
        if challenge is not None and challenge.platform is not None:
            return challenge.platform
        return self.platforms[0] if len(self.platforms) == 1 else None

    @model_validator(mode="after")
    def _shards_fit(self) -> Self:
        pinned_out = [c for c in self.challenges if c.shard is not None and c.shard > self.challenge_shards]
        if pinned_out:
            listed = ", ".join(f"{c.challenge_id} (shard {c.shard})" for c in pinned_out)
            raise ValueError(f"challenges: pinned to a shard above challengeShards={self.challenge_shards}: {listed}")
        shards = self.shard_assignment()
        full = {shard: members for shard, members in shards.items() if len(members) > self.challenges_per_stack}
        if full:
            room = [
                s for s in range(1, self.challenge_shards + 1) if len(shards.get(s, ())) < self.challenges_per_stack
            ]
            problems = "; ".join(
                f"shard {shard:02d} holds {len(members)} challenges ({', '.join(c.challenge_id for c in members)})"
                for shard, members in sorted(full.items())
            )
            raise ValueError(
                f"challenges: {problems}, more than challengesPerStack={self.challenges_per_stack}. Either pin "
                f'some of them to a shard with room (`"shard": N`; shards with room: '
                f"{', '.join(f'{s:02d}' for s in room) or 'none'}), or raise challengeShards (now "
                f"{self.challenge_shards}), which moves most challenges to other stacks: follow the procedure "
                "in docs/decisions/050-stable-shards.md"
            )
        return self

    @model_validator(mode="after")
    def _concurrency_fits(self) -> Self:
        router = self.router.reserved_concurrency
        pollers = self.kafka.maximum_pollers
        if router is not None and router < KAFKA_INVOCATIONS_PER_POLLER * pollers:
            raise ValueError(
                f"router.reservedConcurrency={router} is less than the {KAFKA_INVOCATIONS_PER_POLLER * pollers} "
                f"concurrent invocations kafka.maximumPollers={pollers} can make ({KAFKA_INVOCATIONS_PER_POLLER} "
                "per poller): the router would be throttled at full load. Raise it or lower kafka.maximumPollers"
            )
        reserved = self.reserved_concurrency()
        total = sum(reserved.values())
        spelled = ", ".join(f"{name} {value}" for name, value in reserved.items())
        available = self.account_concurrency_limit - LAMBDA_UNRESERVED_MINIMUM
        if total and total > available:
            raise ValueError(
                f"concurrency: the reservations add up to {total} ({spelled}), more than the {available} Lambda "
                f"lets an account reserve (accountConcurrencyLimit {self.account_concurrency_limit} minus the "
                f"{LAMBDA_UNRESERVED_MINIMUM} it keeps unreserved). Lower the reservedConcurrency settings or raise "
                "the account's Lambda concurrency quota and accountConcurrencyLimit"
            )
        if self.challenge_processor.reserved_concurrency is None:
            queues = sum(c.max_concurrency for c in self.challenges)
            left = self.account_concurrency_limit - total
            if queues > left:
                raise ValueError(
                    f"concurrency: the challenge queues' maxConcurrency adds up to {queues} "
                    f"({len(self.challenges)} challenges), more than the {left} the account has left for them "
                    f"(accountConcurrencyLimit {self.account_concurrency_limit} minus {total} reserved: "
                    f"{spelled or 'none'}). Lower challenges[].maxConcurrency (2 is the minimum), or raise the "
                    "account's Lambda concurrency quota and accountConcurrencyLimit"
                )
        return self

    def reserved_concurrency(self) -> dict[str, int]:
        """Reserved concurrency per function that will exist (challenge processors together), JSON names."""
        sizings = {"router": self.router, "completion": self.completion, "timeoutSweeper": self.timeout_sweeper}
        if self.kafka.authentication.value == "mtls":  # the certificate monitor exists only with mTLS
            sizings["certificateMonitor"] = self.certificate_monitor
        if self.token.scorer_token_parameter:  # the scorer-token refresher exists only then (decision 091)
            sizings["scorerTokenRefresher"] = self.scorer_token_refresher
        reserved = {name: s.reserved_concurrency for name, s in sizings.items() if s.reserved_concurrency}
        if self.challenge_processor.reserved_concurrency:
            reserved[f"challengeProcessor x{len(self.challenges)}"] = (
                self.challenge_processor.reserved_concurrency * len(self.challenges)
            )
        return reserved

    def shard_of(self, challenge: ChallengeSettings) -> int:
        """The challenge's shard stack: its pin, else the hash of its id (never its position in the list)."""
        return challenge.shard or stable_shard(challenge.challenge_id, self.challenge_shards)

    def shard_assignment(self) -> dict[int, tuple[ChallengeSettings, ...]]:
        """Shard number -> its challenges sorted by id; only non-empty shards, in shard order."""
        shards: dict[int, list[ChallengeSettings]] = {}
        for challenge in self.challenges:
            shards.setdefault(self.shard_of(challenge), []).append(challenge)
        return {
            shard: tuple(sorted(members, key=lambda c: c.challenge_id)) for shard, members in sorted(shards.items())
        }

    def challenge(self, challenge_id: str) -> ChallengeSettings:
        for challenge in self.challenges:
            if challenge.challenge_id == challenge_id:
                return challenge
        raise KeyError(challenge_id)


def _challenges_with_default_platform(raw: dict[str, Any]) -> Any:
    """A challenge without `platform` is served by the environment's platform when it has exactly one."""
    challenges = raw.get("challenges")
    platforms = raw.get("platforms", [Platform.V5.value])
    if not isinstance(challenges, list | tuple) or not isinstance(platforms, list | tuple) or len(platforms) != 1:
        return challenges
    return [
        {**entry, "platform": platforms[0]} if isinstance(entry, dict) and entry.get("platform") is None else entry
        for entry in challenges
    ]


_RUNTIME_FIELDS = {"timeout": "timeoutSeconds", "memoryLimit": "memoryMb", "ecsTaskDefinition": "taskDefinitionArn"}


def _field_error(error: Any) -> str:
    """A runtime-config error in the deploy-time spelling (`phases.1.timeoutSeconds: ...`)."""
    location = [_RUNTIME_FIELDS.get(to_camel(str(part)), to_camel(str(part))) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(location)}: {message}" if location else message


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
            f"{_location(err['loc'], raw) or 'config'}: {str(err['msg']).removeprefix('Value error, ')}"
            for err in error.errors()
        )
        raise EnvironmentConfigError(f"{source}: {problems}") from None


def _location(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """`challenges.1.phases.0.timeoutSeconds` -> `challenges[<challengeId>].phases.0.timeoutSeconds`."""
    parts = [str(part) for part in loc]
    challenges = raw.get("challenges")
    if len(loc) >= 2 and loc[0] == "challenges" and isinstance(loc[1], int) and isinstance(challenges, list):
        entry = challenges[loc[1]] if loc[1] < len(challenges) else None
        if isinstance(entry, dict) and entry.get("challengeId"):
            parts[:2] = [f"challenges[{entry['challengeId']}]"]
    return ".".join(parts)


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
