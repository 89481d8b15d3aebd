"""The normalized submission: what the router publishes to SNS and each challenge queue delivers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from mm_contracts.models.base import CanonicalUuid, ContractModel, canonical_uuid_form
from mm_contracts.models.phase import Platform, ScoringPhase, submission_id_fits

# The largest memberId any stage accepts: a signed 64-bit integer, which every later store holds exactly
# (a DynamoDB number keeps 38 digits, a Java scorer's `long`, a bigint column). Topcoder's member ids are
# far smaller; an integer above this is a producer bug or an attack (decision 076).
MAX_MEMBER_ID = 2**63 - 1


class KafkaCoordinates(ContractModel):
    """Where the record came from; the correlation id is derived from it."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp: int | None = None  # Kafka record timestamp (ms since epoch)

    @property
    def correlation_id(self) -> str:
        return f"{self.topic}-{self.partition}-{self.offset}"


class RoutedSubmission(ContractModel):
    """Body of the SNS message (raw delivery: also the SQS body). Schema changes bump `schema_version`.

    Version 1 gained optional fields only (platform, member handle, phase, skip reason): a version-1 message
    written before them still parses, with the v5 defaults (decision 084).
    """

    schema_version: Literal[1] = 1
    platform: Platform = Platform.V5
    # v5: a canonical UUID; v6: the platform's 14-character nanoid (checked below).
    submission_id: str = Field(min_length=1, max_length=64)
    challenge_id: CanonicalUuid  # always the v5 UUID after routing
    legacy_challenge_id: int | None = None
    member_id: int = Field(ge=1, le=MAX_MEMBER_ID)
    url: str
    submission_type: str | None = None
    file_type: str = "zip"
    submission_phase_id: int | None = None
    created: datetime | None = None
    submitted_date: datetime | None = None
    member_handle: str | None = Field(default=None, max_length=64)
    correlation_id: str
    source: KafkaCoordinates
    routed_at: datetime
    # None: launch the phases a new submission triggers (the challenge config's onSubmission phases).
    # Set: exactly this phase (a relaunch after a transient start failure; later, reruns and SYSTEM dispatch).
    phase: ScoringPhase | None = None
    # Set by the router for a v6 submission it will not score (for example its challenge is inactive): the
    # challenge processor records each triggered phase as failed with this reason, and the completion function
    # posts the terminal FAILED summation, so no member sees a run "in queue forever" (decision 086).
    skip_reason: str | None = Field(default=None, min_length=1, max_length=300)
    # An operator's rerun of a run already scored: it waits behind new work by default (priority class RERUN).
    # A message that is not a rerun is written exactly as before the field existed, so a reader deployed earlier
    # (extra fields forbidden) still parses every message during a rolling deployment. (`exclude_if`, not a wrap
    # serializer: the router writes one of these per record, and a Python serializer doubles the cost.)
    rerun: bool = Field(default=False, exclude_if=lambda rerun: not rerun)

    @field_validator("submission_id")
    @classmethod
    def _submission_id_of_platform(cls, value: str, info: ValidationInfo) -> str:
        # One validator for both rules (each Python validator costs the router about 0.7 µs a message): the id
        # has its platform's form, and a v5 id is written in its canonical UUID form, whatever case it came in.
        platform = info.data.get("platform")
        if platform is None or submission_id_fits(value, platform):
            return value  # every router message; None: the platform was refused, and that error is reported
        if platform is Platform.V6:
            raise ValueError("v6 submissionId must be 14 characters of A-Za-z0-9_-")
        canonical = _canonical_uuid(value)
        if canonical is None:
            raise ValueError("v5 submissionId must be a canonical (lower-case, hyphenated) UUID")
        return canonical


def _canonical_uuid(value: str) -> str | None:
    try:
        return canonical_uuid_form(value)
    except ValueError:
        return None
