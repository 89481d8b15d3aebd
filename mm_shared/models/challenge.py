"""Challenge configuration (SSM JSON) and the challenge table item."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from mm_shared.models.base import CanonicalUuid, ContractModel


class ScorerCredentialsMode(StrEnum):
    """How the scorer task gets its Topcoder M2M credentials. Never through plain-text overrides by default."""

    # Default: the task definition's `secrets` inject the credentials; the pipeline passes nothing.
    TASK_DEFINITION_SECRETS = "task_definition_secrets"
    # The pipeline passes the *name* of the SSM SecureString; the scorer resolves it with its task role.
    PARAMETER_REFERENCE = "parameter_reference"
    # Compatibility with the seed design's scorers: the token in the container environment.
    # Visible in DescribeTasks, EventBridge events and CloudTrail. Off unless a challenge opts in.
    ENVIRONMENT_TOKEN_INSECURE = "environment_token_insecure"


class ChallengeConfig(ContractModel):
    """`/mm-processor/challenges/{challengeId}/config`: everything needed to launch and report a run."""

    model_config = ConfigDict(extra="ignore")  # tolerate fields of newer writers

    challenge_id: CanonicalUuid
    scorer_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    ecs_cluster: str = Field(min_length=1)  # name or ARN
    ecs_task_definition: str = Field(min_length=1)  # family, family:revision or ARN
    scorer_container_name: str = Field(min_length=1)
    timeout: int = Field(default=3600, ge=30, le=86_400, description="seconds before the sweeper stops the task")
    cpu: int | None = Field(default=None, description="task-level CPU override (units)")
    memory_limit: int | None = Field(default=None, description="task-level memory override (MiB)")
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    scorer_credentials_mode: ScorerCredentialsMode = ScorerCredentialsMode.TASK_DEFINITION_SECRETS
    # Reporting (Topcoder Submission API v5 reviews)
    review_type_id: CanonicalUuid
    reviewer_id: CanonicalUuid
    score_card_id: int | str
    test_type: str = Field(default="provisional", pattern=r"^(example|provisional|system)$")
    report_on_success: bool = False

    @model_validator(mode="after")
    def _network(self) -> ChallengeConfig:
        if self.security_groups and not self.subnets:
            raise ValueError("securityGroups given without subnets")
        return self


class ChallengeRecord(ContractModel):
    """Item of the challenge table. A legacy numeric id is an alias item pointing at the UUID item."""

    model_config = ConfigDict(extra="ignore")

    challenge_id: str  # UUID, or `legacy:<number>` for an alias item
    active: bool = False
    name: str | None = None
    queue_url: str | None = None
    queue_arn: str | None = None
    legacy_id: int | None = None
    alias_of: str | None = None  # set on alias items only
