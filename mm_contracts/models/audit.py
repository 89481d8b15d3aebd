"""What the router keeps for every record it does not route (audit queue message body)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from mm_contracts.models.base import ContractModel
from mm_contracts.models.phase import Platform
from mm_contracts.models.routed import KafkaCoordinates


class AuditDisposition(StrEnum):
    SKIPPED = "skipped"  # not a new submission (review events, other topics): normal traffic
    REJECTED = "rejected"  # a submission we could not accept: bad input, unknown/inactive challenge


class AuditRecord(ContractModel):
    disposition: AuditDisposition
    reason: str  # a stable machine-readable code, e.g. `submission_id_not_uuid` (also a metric dimension)
    detail: str  # human-readable specifics
    source: KafkaCoordinates
    correlation_id: str
    submission_id: str | None = None
    challenge_id: str | None = None
    platform: Platform | None = None  # when the record was read as a v5 or v6 submission (decision 088)
    raw_value_base64: str | None = None  # the record value as received (truncated, see `truncated`)
    truncated: bool = False
    recorded_at: datetime
