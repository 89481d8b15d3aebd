"""Challenge configuration (SSM JSON) and the challenge table item."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AliasChoices, ConfigDict, Field, field_validator, model_validator

from mm_contracts.models.base import CanonicalUuid, ContractModel
from mm_contracts.models.phase import PhaseConfig, Platform, ScoringPhase


class ScorerCredentialsMode(StrEnum):
    """How the scorer task gets its Topcoder M2M credentials. Never through plain-text overrides by default."""

    # Default: the task definition's `secrets` inject the credentials; the pipeline passes nothing.
    TASK_DEFINITION_SECRETS = "task_definition_secrets"
    # The pipeline passes the *name* of the SSM SecureString; the scorer resolves it with its task role.
    PARAMETER_REFERENCE = "parameter_reference"
    # Compatibility with the seed design's scorers: the token in the container environment.
    # Visible in DescribeTasks, EventBridge events and CloudTrail. Off unless a challenge opts in.
    ENVIRONMENT_TOKEN_INSECURE = "environment_token_insecure"


class ScorerEnvironment(StrEnum):
    """Which environment variable names the scorer task reads (decision 087)."""

    MM_PROCESSOR = "mm_processor"  # `MM_*` (mm_contracts.models.task.TaskEnv)
    # Also the names Topcoder's own ecs-runner reads (SUBMISSION_ID, TEST_PHASE, PHASE_CONFIG_TYPE, ...);
    # its ACCESS_TOKEN still comes only from the task definition's `secrets`, never from overrides.
    TOPCODER_ECS_RUNNER = "topcoder_ecs_runner"


class PriorityClass(StrEnum):
    """What a waiting run is, for ordering: its phase, or a rerun of any phase."""

    SYSTEM = "SYSTEM"
    PROVISIONAL = "PROVISIONAL"
    EXAMPLE = "EXAMPLE"
    RERUN = "RERUN"


# Final scores first, then what members watch during the match, then examples, then operators' reruns.
DEFAULT_PRIORITY_ORDER: tuple[PriorityClass, ...] = (
    PriorityClass.SYSTEM,
    PriorityClass.PROVISIONAL,
    PriorityClass.EXAMPLE,
    PriorityClass.RERUN,
)


class SupersedePolicy(StrEnum):
    """What a member's new submission does to their older runs of the same phase (decision 095)."""

    NONE = "none"
    CANCEL_WAITING = "cancel_waiting"
    CANCEL_WAITING_AND_STOP_RUNNING = "cancel_waiting_and_stop_running"


class ChallengeCapacity(ContractModel):
    """`capacity` of a challenge config: how many of its scorer tasks may run at once, and in which order."""

    # 0: admit nothing (every run waits; an operator's brake that loses nothing).
    max_running_tasks: int = Field(default=5, ge=0, le=1000)
    # Optional caps per phase, within the challenge cap (for example SYSTEM kept from taking every slot).
    max_running_tasks_per_phase: dict[ScoringPhase, int] = Field(default_factory=dict)
    priority_order: tuple[PriorityClass, ...] = DEFAULT_PRIORITY_ORDER
    supersede: SupersedePolicy = SupersedePolicy.NONE

    @field_validator("max_running_tasks_per_phase")
    @classmethod
    def _phase_caps_not_negative(cls, value: dict[ScoringPhase, int]) -> dict[ScoringPhase, int]:
        negative = sorted(phase.value for phase, cap in value.items() if cap < 0)
        if negative:
            raise ValueError(f"per-phase caps must be >= 0: {', '.join(negative)}")
        return value

    @field_validator("priority_order")
    @classmethod
    def _a_permutation(cls, value: tuple[PriorityClass, ...]) -> tuple[PriorityClass, ...]:
        if sorted(value) != sorted(PriorityClass):
            raise ValueError(f"priorityOrder must name each of {', '.join(PriorityClass)} exactly once")
        return value

    def rank(self, phase: ScoringPhase, *, rerun: bool) -> int:
        """The run's place in the priority order (0 first): its phase's class, or RERUN for a rerun."""
        priority_class = PriorityClass.RERUN if rerun else PriorityClass(phase.value)
        return self.priority_order.index(priority_class)


class ChallengeConfig(ContractModel):
    """`/mm-processor/challenges/{challengeId}/config`: everything needed to launch and report a run."""

    model_config = ConfigDict(extra="ignore")  # tolerate fields of newer writers

    challenge_id: CanonicalUuid
    scorer_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    ecs_cluster: str = Field(min_length=1)  # name or ARN
    ecs_task_definition: str = Field(min_length=1)  # family, family:revision or ARN
    scorer_container_name: str = Field(min_length=1)
    # One Python spelling with the deploy-time config (`timeout_seconds`, `memory_mb`). The SSM document keeps the
    # keys code already deployed reads (`timeout`, `memoryLimit`): that code ignores unknown keys, so a document
    # with new keys would silently give it the defaults during a deploy or a code rollback (decision 101).
    # Either spelling loads.
    timeout_seconds: int = Field(
        default=3600,
        ge=30,
        le=86_400,
        validation_alias=AliasChoices("timeoutSeconds", "timeout_seconds", "timeout"),
        serialization_alias="timeout",
        description="seconds before the sweeper stops the task",
    )
    cpu: int | None = Field(default=None, description="task-level CPU override (units)")
    memory_mb: int | None = Field(
        default=None,
        validation_alias=AliasChoices("memoryMb", "memory_mb", "memoryLimit"),
        serialization_alias="memoryLimit",
        description="task-level memory override (MiB)",
    )
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    scorer_credentials_mode: ScorerCredentialsMode = ScorerCredentialsMode.TASK_DEFINITION_SECRETS
    scorer_environment: ScorerEnvironment = ScorerEnvironment.MM_PROCESSOR
    # Which Topcoder contracts this challenge speaks (decision 084). An environment may serve both during a
    # migration; each challenge is served by exactly one, so no submission is run twice.
    platform: Platform = Platform.V5
    # The phase configs (decision 085). Empty: one phase, `test_type`, triggered by every new submission (the
    # v5 seed's single run per submission). v5 allows exactly one phase triggered by a new submission.
    phases: tuple[PhaseConfig, ...] = ()
    # Reporting. v5: Submission API v5 reviews (these three are required). v6: review-api-v6 summations
    # (`scorecard_id` optional; `review_type_id` is passed to Topcoder's ecs-runner as REVIEW_TYPE_ID).
    review_type_id: CanonicalUuid | None = None
    reviewer_id: CanonicalUuid | None = None
    score_card_id: int | str | None = None
    scorecard_id: str | None = Field(default=None, min_length=1, max_length=64)
    test_type: str = Field(default="provisional", pattern=r"^(example|provisional|system)$")
    report_on_success: bool = False
    # How many of this challenge's scorer tasks run at once, in which order waiting runs start, and what a
    # member's newer submission does to their older runs (decisions 094, 095).
    capacity: ChallengeCapacity = Field(default_factory=ChallengeCapacity)

    @model_validator(mode="after")
    def _network(self) -> ChallengeConfig:
        if self.security_groups and not self.subnets:
            raise ValueError("securityGroups given without subnets")
        return self

    @model_validator(mode="after")
    def _platform_contract(self) -> ChallengeConfig:
        phases = [entry.phase for entry in self.phases]
        if len(set(phases)) != len(phases):
            raise ValueError("phases: each phase at most once")
        if self.platform is Platform.V5:
            missing = [
                name
                for name, value in (
                    ("reviewTypeId", self.review_type_id),
                    ("reviewerId", self.reviewer_id),
                    ("scoreCardId", self.score_card_id),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"platform v5 reports v5 reviews and needs {', '.join(missing)}")
            if self.phases and len(self.submission_phases) != 1:
                raise ValueError("platform v5 runs exactly one phase per new submission (one onSubmission phase)")
        return self

    @property
    def effective_phases(self) -> tuple[PhaseConfig, ...]:
        """The phase configs, or the single `test_type` phase of a config that names none."""
        if self.phases:
            return self.phases
        return (PhaseConfig(phase=ScoringPhase(self.test_type.upper()), timeout_seconds=self.timeout_seconds),)

    @property
    def submission_phases(self) -> tuple[PhaseConfig, ...]:
        """The phases a new submission triggers, in launch order (highest priority first)."""
        triggered = [entry for entry in self.effective_phases if entry.on_submission]
        return tuple(sorted(triggered, key=lambda entry: entry.phase.priority))

    def phase_config(self, phase: ScoringPhase) -> PhaseConfig | None:
        return next((entry for entry in self.effective_phases if entry.phase is phase), None)

    def phase_timeout(self, phase: ScoringPhase) -> int:
        entry = self.phase_config(phase)
        if entry is not None and entry.timeout_seconds is not None:
            return entry.timeout_seconds
        return self.timeout_seconds


class ChallengeRecord(ContractModel):
    """Item of the challenge table. A legacy numeric id is an alias item pointing at the UUID item."""

    model_config = ConfigDict(extra="ignore")

    challenge_id: str  # UUID, or `legacy:<number>` for an alias item
    active: bool = False
    # The platform whose submissions this challenge takes (decision 084): the router skips a record of the
    # other platform (`platform_mismatch`), so a submission published on both topics during a migration runs once.
    platform: Platform = Platform.V5
    name: str | None = None
    queue_url: str | None = None
    queue_arn: str | None = None
    legacy_id: int | None = None
    alias_of: str | None = None  # set on alias items only
