"""One challenge's deploy-time settings, its phases, the CHALLENGE_IDS defaults, and its stable shard."""

from __future__ import annotations

import hashlib

from pydantic import Field

from infrastructure.config.base import ARN, MAX_CHALLENGE_SHARDS, ConfigModel, EnvironmentConfigError
from mm_contracts.models.base import CanonicalUuid
from mm_contracts.models.capacity import ChallengeCapacity
from mm_contracts.models.challenge import ScorerCredentialsMode, ScorerEnvironment
from mm_contracts.models.phase import PhaseConfig, Platform, ScoringPhase


class PhaseSettings(ConfigModel):
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
            timeout_seconds=self.timeout_seconds,
            on_submission=self.on_submission,
        )


class ChallengeSettings(ConfigModel):
    """One challenge: its processor function, queue, scorer task definition and reporting."""

    challenge_id: CanonicalUuid
    name: str = Field(min_length=1, max_length=200)
    legacy_id: int | None = Field(default=None, ge=1)
    active: bool = True
    # The platform that serves this challenge (decision 084); default: the environment's single platform.
    platform: Platform | None = None
    scorer_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    # Imported scorer task definition (created outside this stack) and the roles it uses, for iam:PassRole.
    task_definition_arn: str = Field(pattern=ARN + "ecs:[a-z0-9-]+:\\d{12}:task-definition/[A-Za-z0-9_-]+:\\d+$")
    task_role_arn: str = Field(pattern=ARN + "iam::\\d{12}:role/")
    execution_role_arn: str = Field(pattern=ARN + "iam::\\d{12}:role/")
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


class ChallengeDefaults(ConfigModel):
    """Settings for challenges named only in CHALLENGE_IDS (a seed-design override) and not listed in full."""

    scorer_type: str
    task_definition_arn: str = Field(pattern=ARN + "ecs:")
    task_role_arn: str = Field(pattern=ARN + "iam::")
    execution_role_arn: str = Field(pattern=ARN + "iam::")
    platform: Platform | None = None
    phases: tuple[PhaseSettings, ...] | None = None
    review_type_id: str | None = None
    reviewer_id: str | None = None
    score_card_id: int | str | None = None
    scorecard_id: str | None = None
    capacity: ChallengeCapacity | None = None


def stable_shard(challenge_id: str, shards: int) -> int:
    """The shard (1..shards) of a canonical challengeId: a SHA-256 digest, the same on every machine and run.

    Python's `hash()` of a str is salted per process, so it would move challenges between synths.
    """
    digest = hashlib.sha256(challenge_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1
