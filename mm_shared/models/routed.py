"""The normalized submission: what the router publishes to SNS and each challenge queue delivers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mm_shared.models.base import CanonicalUuid, ContractModel


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
    member_id: int
    url: str
    submission_type: str | None = None
    file_type: str = "zip"
    submission_phase_id: int | None = None
    created: datetime | None = None
    submitted_date: datetime | None = None
    correlation_id: str
    source: KafkaCoordinates
    routed_at: datetime
