"""The "Run Report Due" event's names, without its pydantic models (decision 086).

Apart from `report_due` so that the completion function, whose common invocation is an ECS Task State Change, tells
a report-due event by these names and builds that module's models only to parse one (issue 13, decision 112).
`report_due` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mm_contracts.names import PROJECT

REPORT_DUE_SOURCE = PROJECT
REPORT_DUE_DETAIL_TYPE = "Run Report Due"


def is_report_due_event(event: Mapping[str, Any]) -> bool:
    """Whether `event` claims to be a report-due event (then `RunReportDueEvent.model_validate` must accept it)."""
    return event.get("source") == REPORT_DUE_SOURCE and event.get("detail-type") == REPORT_DUE_DETAIL_TYPE


__all__ = ["REPORT_DUE_DETAIL_TYPE", "REPORT_DUE_SOURCE", "is_report_due_event"]
