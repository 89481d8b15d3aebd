"""Audit shapes: what the router keeps for every record it does not route (audit queue message body), and what an
operator's change leaves behind (`OperatorChange`, issue 12). The entry's names are `audit_names`' (re-exported
here), so a function that writes an operator's history entry builds none of these models (issue 13)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from mm_contracts.models.audit_names import MAX_DETAIL, OPERATOR_ACTIONS, OPERATOR_HISTORY_STATE
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


class OperatorChange(ContractModel):
    """Who changed what, when and why: one per change an operator makes (decisions 105-107). A run-scoped change
    (rerun, dispatch, stop, redrive) leaves it in the run's `history`; a challenge-scoped one (pause, resume,
    set-caps) in the capacity table's audit log of the challenge."""

    actor: str = Field(min_length=1, max_length=300)  # STS GetCallerIdentity Arn, else "<user>@<host>"
    at: datetime
    action: str = Field(min_length=1, max_length=40)
    reason: str = Field(min_length=1, max_length=300)  # the operator's --reason
    request_id: str = Field(min_length=1, max_length=64)  # one id per command invocation, in every entry it leaves

    def history_detail(self) -> str:
        """The entry's detail in a run's history: "operator <action> by <actor> [request <id>]: <reason>"."""
        return f"operator {self.action} by {self.actor} [request {self.request_id}]: {self.reason}"[:MAX_DETAIL]


__all__ = [
    "MAX_DETAIL",
    "OPERATOR_ACTIONS",
    "OPERATOR_HISTORY_STATE",
    "AuditDisposition",
    "AuditRecord",
    "OperatorChange",
]
