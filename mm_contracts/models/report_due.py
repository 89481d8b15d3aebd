"""The "Run Report Due" event: "report this run's recorded outcome" for a run that has no task (decision 086).

A run the pipeline will not score (a v6 skip) never has a task, so no STOPPED event ever reaches the completion
function. The challenge processor (after `record_skipped`) and the sweeper (re-driving an unfinished report)
invoke the completion function asynchronously with this payload instead; it names the run only. What is
reported is what the status item recorded, never anything the event says, so a forged or repeated event can at
most trigger the one report the run is owed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mm_contracts.models.base import canonical_uuid
from mm_contracts.models.phase import V6_SUBMISSION_ID, RunKey
from mm_contracts.models.report_due_names import REPORT_DUE_DETAIL_TYPE, REPORT_DUE_SOURCE, is_report_due_event

_MAX_RUN_ID = 64


def is_submission_id(value: str) -> bool:
    """A submission id as a platform forms it: a canonical UUID (v5) or a 14-character nanoid (v6)."""
    return canonical_uuid(value) == value or bool(V6_SUBMISSION_ID.match(value))


class RunReportDueDetail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, hide_input_in_errors=True)

    run_id: str = Field(alias="runId", min_length=1, max_length=_MAX_RUN_ID)

    @field_validator("run_id")
    @classmethod
    def _a_run_of_a_submission(cls, value: str) -> str:
        key = RunKey.parse(value)  # ValueError for a missing separator or an unknown phase
        if not is_submission_id(key.submission_id):
            raise ValueError("runId does not start with a v5 or v6 submission id")
        return value

    @property
    def run_key(self) -> RunKey:
        return RunKey.parse(self.run_id)


class RunReportDueEvent(BaseModel):
    """`{"source": "mm-processor", "detail-type": "Run Report Due", "detail": {"runId": "<id>#<PHASE>"}}`."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    source: Literal["mm-processor"]
    detail_type: Literal["Run Report Due"] = Field(alias="detail-type")
    detail: RunReportDueDetail


def report_due_event(run_id: str) -> dict[str, Any]:
    """The async-invoke payload for `run_id` (validated: a malformed run id raises before anything is sent)."""
    event = RunReportDueEvent(
        source=REPORT_DUE_SOURCE,
        detail_type=REPORT_DUE_DETAIL_TYPE,
        detail=RunReportDueDetail(run_id=run_id),
    )
    return event.model_dump(mode="json", by_alias=True)


def parse_report_due_event(event: Mapping[str, Any]) -> RunReportDueEvent | None:
    """The typed event, or None when `event` is another kind; a malformed one raises `ValidationError`."""
    if not is_report_due_event(event):
        return None
    return RunReportDueEvent.model_validate(event)


__all__ = [
    "REPORT_DUE_DETAIL_TYPE",
    "REPORT_DUE_SOURCE",
    "RunReportDueDetail",
    "RunReportDueEvent",
    "is_report_due_event",
    "is_submission_id",
    "parse_report_due_event",
    "report_due_event",
]
