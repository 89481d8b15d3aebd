"""`EnvironmentConfig`: one deployment environment, and the checks that span its sections.

The sections (kafka, network, token, challenges, capacity, sizing, smoke) live in their own modules; this one
holds what needs several of them at once: the platform profile, the runtime config of each challenge, shards,
concurrency, capacity alarms against the sweep interval, the smoke submission against the URL policy.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infrastructure.config.base import (
    KAFKA_INVOCATIONS_PER_POLLER,
    LAMBDA_UNRESERVED_MINIMUM,
    LOG_RETENTION_DAYS,
    MAX_CHALLENGE_SHARDS,
    MAX_CHALLENGES_PER_STACK,
    ConfigModel,
)
from infrastructure.config.capacity import CapacitySettings
from infrastructure.config.challenges import ChallengeDefaults, ChallengeSettings, stable_shard
from infrastructure.config.kafka import KafkaSettings
from infrastructure.config.network import EcsSettings, NetworkSettings
from infrastructure.config.sizing import SIZING_DEFAULTS, FunctionSizing
from infrastructure.config.smoke import SmokeSettings
from infrastructure.config.token import TokenConfig
from infrastructure.config.tracing import TracingSettings
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.phase import Platform, submission_id_fits
from mm_contracts.names import environment_ssm_prefix
from mm_contracts.url_policy import url_refusal


class EnvironmentConfig(ConfigModel):
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
    router: FunctionSizing = SIZING_DEFAULTS["router"]
    challenge_processor: FunctionSizing = SIZING_DEFAULTS["challenge_processor"]
    completion: FunctionSizing = SIZING_DEFAULTS["completion"]
    timeout_sweeper: FunctionSizing = SIZING_DEFAULTS["timeout_sweeper"]
    certificate_monitor: FunctionSizing = SIZING_DEFAULTS["certificate_monitor"]
    scorer_token_refresher: FunctionSizing = SIZING_DEFAULTS["scorer_token_refresher"]
    # The account's Lambda concurrency quota in this region (AWS default 1,000); the reservations and the
    # challenge queues' maximumConcurrency are validated against it (decision 052).
    account_concurrency_limit: int = Field(default=1000, ge=1)
    sweeper_interval_minutes: int = Field(default=5, ge=1, le=60)
    # Caps on running scorer tasks environment-wide, RunTask pacing, capacity alarm thresholds (decision 097).
    capacity: CapacitySettings = CapacitySettings()
    log_retention_days: int = Field(default=30, ge=1, le=3653)
    # Lambda's active tracing, or OpenTelemetry through the ADOT layer (decision 112).
    tracing: TracingSettings = TracingSettings()
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
        for field, default in SIZING_DEFAULTS.items():
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
            timeout_seconds=challenge.timeout_seconds,
            cpu=challenge.cpu,
            memory_mb=challenge.memory_mb,
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
    def _tracing_layer_in_region(self) -> Self:
        refusal = self.tracing.layer_refusal(self.region)
        if refusal is not None:
            raise ValueError(refusal)
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


# Runtime fields the deploy-time config spells differently (the rest share one spelling, decision 101).
_RUNTIME_FIELDS = {"ecsTaskDefinition": "taskDefinitionArn"}


def _field_error(error: Any) -> str:
    """A runtime-config error in the deploy-time spelling (`phases.1.timeoutSeconds: ...`)."""
    location = [_RUNTIME_FIELDS.get(to_camel(str(part)), to_camel(str(part))) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{'.'.join(location)}: {message}" if location else message
