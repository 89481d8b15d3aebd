"""Wire shapes of the Topcoder integration: the v5 review we POST, the v6 review summation we create or
patch, and the Auth0 proxy's request/response (`mm_contracts.topcoder_auth`, re-exported here: a function that only
needs a token, the scorer-token refresher, imports that module and builds no review model, decision 112).

`ReviewCreate` mirrors the request body of `POST /v5/reviews` in Topcoder's own OpenAPI spec
(`submissions-api-v5-swagger.yaml`, schema `Review` minus its read-only members `id`, `created`,
`updated`, `createdBy`, `updatedBy`). The spec lists `score` as required unconditionally; the API's own
validation requires it only when `status` is `completed`. We always send it, so both accept the body.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mm_contracts.models.base import CanonicalUuid, ContractModel
from mm_contracts.topcoder_auth import Auth0Credentials, Auth0TokenResponse


class ReviewStatus(StrEnum):
    """`Review.status` in the v5 spec (`queued` | `completed`)."""

    QUEUED = "queued"
    COMPLETED = "completed"


class ReviewCreate(ContractModel):
    """Request body of `POST /v5/reviews` (camelCase on the wire via `to_wire()`)."""

    # Always present (see module docstring): a failed run is reported as a completed review with score 0.
    score: float = Field(allow_inf_nan=False)
    type_id: CanonicalUuid  # the API validates typeId as a UUID (joi), stricter than the spec's plain string
    reviewer_id: str
    score_card_id: int | str
    submission_id: str = Field(min_length=1)
    status: ReviewStatus = ReviewStatus.COMPLETED
    # Free-form in the spec; Topcoder's MM tooling puts testType / testStatus / reason here.
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The API lets only admins set this; left out unless a caller has that role.
    reviewed_date: AwareDatetime | None = None


class ReviewSummationCreate(ContractModel):
    """Request body of `POST /v5/reviewSummations` (schema `ReviewSummation` minus read-only members)."""

    submission_id: str = Field(min_length=1)
    aggregate_score: float = Field(allow_inf_nan=False)
    score_card_id: int
    is_passing: bool
    is_final: bool | None = None
    metadata: dict[str, Any] | None = None
    reviewed_date: AwareDatetime | None = None


class ReviewSummationRequest(ContractModel):
    """review-api-v6 `POST /reviewSummations` (and `PUT`) body: `ReviewSummationRequestDto` in
    `src/dto/reviewSummation.dto.ts`, schema `ReviewSummationRequest` in `review-api-v6-summations.yaml`
    (additionalProperties false: the extra="forbid" of `ContractModel`). Not the v5 `ReviewSummationCreate`:
    v6 spells `scorecardId` (a nanoid string) and has the MM phase flags `isProvisional` / `isExample`."""

    submission_id: str = Field(min_length=1)
    aggregate_score: float = Field(allow_inf_nan=False)
    is_passing: bool
    scorecard_id: str | None = Field(default=None, min_length=1)
    is_final: bool | None = None
    is_provisional: bool | None = None
    is_example: bool | None = None
    reviewed_date: AwareDatetime | None = None
    metadata: dict[str, Any] | None = None


class ReviewSummationUpdate(ContractModel):
    """review-api-v6 `PATCH /reviewSummations/{id}` body (`ReviewSummationUpdateRequestDto`): every field of
    the create body, all optional; only the fields set are sent."""

    submission_id: str | None = Field(default=None, min_length=1)
    aggregate_score: float | None = Field(default=None, allow_inf_nan=False)
    is_passing: bool | None = None
    scorecard_id: str | None = Field(default=None, min_length=1)
    is_final: bool | None = None
    is_provisional: bool | None = None
    is_example: bool | None = None
    reviewed_date: AwareDatetime | None = None
    metadata: dict[str, Any] | None = None


class ReviewSummationRecord(BaseModel):
    """What we rely on in a summation the API returns (`ReviewSummationResponseDto`); other fields kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel, frozen=True)

    id: str = Field(min_length=1)
    submission_id: str = Field(min_length=1)


__all__ = [
    "Auth0Credentials",
    "Auth0TokenResponse",
    "ReviewCreate",
    "ReviewStatus",
    "ReviewSummationCreate",
    "ReviewSummationRecord",
    "ReviewSummationRequest",
    "ReviewSummationUpdate",
]
