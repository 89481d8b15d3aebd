"""The normalized submission: what the router publishes to SNS and each challenge queue delivers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mm_shared.models.base import CanonicalUuid, ContractModel

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
    """Body of the SNS message (raw delivery: also the SQS body). Schema changes bump `schema_version`."""

    schema_version: Literal[1] = 1
    submission_id: CanonicalUuid
    challenge_id: CanonicalUuid  # always the v5 UUID after routing
    legacy_challenge_id: int | None = None
    member_id: int = Field(ge=1, le=MAX_MEMBER_ID)
    url: str
    submission_type: str | None = None
    file_type: str = "zip"
    submission_phase_id: int | None = None
    created: datetime | None = None
    submitted_date: datetime | None = None
    correlation_id: str
    source: KafkaCoordinates
    routed_at: datetime
