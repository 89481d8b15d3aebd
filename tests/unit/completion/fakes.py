"""In-memory fakes of the completion function's ports (Submission API, review summations, challenge config)."""

from __future__ import annotations

import uuid
from typing import Any

from mm_adapters.challenge_config import ChallengeConfigError, ConfigErrorReason
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.topcoder import ReviewCreate, ReviewSummationRequest, ReviewSummationUpdate

CHALLENGE_ID = "5f0a4ac9-3c0f-4fd4-9bd1-34c7bd9cf0a1"
REVIEW_TYPE_ID = "c56a4180-65aa-42ec-a945-5fd21dec0503"
REVIEWER_ID = "9c5c4c58-9f0f-4c1a-8a5e-3f25b0d7f7a2"
SCORE_CARD_ID = 30_001_852


def challenge_config(**overrides: Any) -> ChallengeConfig:
    values: dict[str, Any] = {
        "challenge_id": CHALLENGE_ID,
        "scorer_type": "example-scorer",
        "ecs_cluster": "mm-scorers",
        "ecs_task_definition": "mm-scorer-example",
        "scorer_container_name": "scorer",
        "review_type_id": REVIEW_TYPE_ID,
        "reviewer_id": REVIEWER_ID,
        "score_card_id": SCORE_CARD_ID,
    }
    values.update(overrides)
    return ChallengeConfig(**values)


class FakeConfigSource:
    def __init__(self, config: ChallengeConfig | None = None, error: ConfigErrorReason | None = None) -> None:
        self.config = config or challenge_config()
        self.error = error
        self.calls: list[str] = []

    def get(self, challenge_id: str, *, force_refresh: bool = False) -> ChallengeConfig:
        self.calls.append(challenge_id)
        if self.error is not None:
            raise ChallengeConfigError(challenge_id, f"/mm/{challenge_id}/config", self.error, "fake")
        return self.config


class FakeReviewApi:
    """Stores posted reviews; `fail_next` makes the next calls raise (after optionally storing)."""

    def __init__(self) -> None:
        self.reviews: list[dict[str, Any]] = []
        self.posts = 0
        self.lookups = 0
        self._failures: list[tuple[Exception, bool]] = []

    def fail_next(self, error: Exception, *, times: int = 1, after_storing: bool = False) -> None:
        self._failures.extend([(error, after_storing)] * times)

    def create_review(self, review: ReviewCreate) -> dict[str, Any]:
        self.posts += 1
        body = {"id": str(uuid.uuid4()), **review.to_wire()}
        if self._failures:
            error, after_storing = self._failures.pop(0)
            if after_storing:  # the API processed it but the answer never came back
                self.reviews.append(body)
            raise error
        self.reviews.append(body)
        return body

    def find_reviews(self, *, submission_id: str, type_id: str | None = None) -> list[dict[str, Any]]:
        self.lookups += 1
        return [
            r
            for r in self.reviews
            if r["submissionId"] == submission_id and (type_id is None or r["typeId"] == type_id)
        ]

    def reviews_for(self, submission_id: str) -> list[dict[str, Any]]:
        return [r for r in self.reviews if r["submissionId"] == submission_id]


class ConfigsByChallenge:
    """A config source with one config per challenge; an unknown challenge's config is missing."""

    def __init__(self, *configs: ChallengeConfig) -> None:
        self.configs = {config.challenge_id: config for config in configs}

    def get(self, challenge_id: str, *, force_refresh: bool = False) -> ChallengeConfig:
        config = self.configs.get(challenge_id)
        if config is None:
            raise ChallengeConfigError(
                challenge_id, f"/mm/{challenge_id}/config", ConfigErrorReason.PARAMETER_MISSING, "fake"
            )
        return config


class FakeSummationsApi:
    """review-api-v6 summations in memory: what was created or patched, by id."""

    def __init__(self) -> None:
        self.summations: dict[str, dict[str, Any]] = {}
        self.posts = 0
        self.patches = 0

    def list_summations(self, *, submission_id: str, phase: ScoringPhase) -> list[dict[str, Any]]:
        return [
            s for s in self.summations.values() if s["submissionId"] == submission_id and s.get(phase.summation_flag)
        ]

    def create_summation(self, body: ReviewSummationRequest) -> dict[str, Any]:
        self.posts += 1
        created = {"id": str(uuid.uuid4()), "createdAt": f"2027-01-01T00:00:{self.posts:02d}Z", **body.to_wire()}
        self.summations[created["id"]] = created
        return created

    def patch_summation(self, summation_id: str, body: ReviewSummationUpdate) -> dict[str, Any]:
        self.patches += 1
        self.summations[summation_id] = {**self.summations[summation_id], **body.to_wire()}
        return self.summations[summation_id]

    def of(self, submission_id: str) -> list[dict[str, Any]]:
        return [s for s in self.summations.values() if s["submissionId"] == submission_id]
