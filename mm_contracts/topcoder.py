"""Wire shapes of the Topcoder integration: the v5 review we POST, the v6 review summation we create or
patch, and the Auth0 proxy's request/response.

`ReviewCreate` mirrors the request body of `POST /v5/reviews` in Topcoder's own OpenAPI spec
(`submissions-api-v5-swagger.yaml`, schema `Review` minus its read-only members `id`, `created`,
`updated`, `createdBy`, `updatedBy`). The spec lists `score` as required unconditionally; the API's own
validation requires it only when `status` is `completed`. We always send it, so both accept the body.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from mm_contracts.models.base import CanonicalUuid, ContractModel


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


class Auth0Credentials(BaseModel):
    """The Secrets Manager JSON of the Auth0 proxy mode. `client_secret` is a SecretStr: never printed."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True, hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    auth0_url: str = Field(min_length=1)
    audience: str | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _audience_xor_scope(self) -> Auth0Credentials:
        # The proxy's contract: audience and scope are mutually exclusive; one of them names the API.
        if bool(self.audience) == bool(self.scope):
            raise ValueError("exactly one of audience or scope is required")
        if not self.client_secret.get_secret_value():
            raise ValueError("client_secret is empty")
        return self

    def proxy_body(self, *, fresh_token: bool) -> dict[str, Any]:
        """The proxy request body (auth0-proxy-contract.json). Holds the secret: never log it."""
        body: dict[str, Any] = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "auth0_url": self.auth0_url,
            "fresh_token": fresh_token,
        }
        if self.audience:
            body["audience"] = self.audience
        else:
            body["scope"] = self.scope
        return body


class Auth0TokenResponse(BaseModel):
    """The proxy's 200 body: `access_token` and `expires_in` (seconds left, already minus 60 s)."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: SecretStr
    expires_in: float = Field(ge=0, allow_inf_nan=False)

    @field_validator("access_token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("empty access_token")
        return value
