"""The completion function's inbound events, parsed at the edge: an ECS Task State Change or a Run Report Due.

A validation error is reported by location only: the input may hold a plain-text token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mm_contracts.models.ecs_event import (
    ECS_EVENT_SOURCE,
    ECS_TASK_STATE_CHANGE,
    EcsTaskStateChangeEvent,
    EventBridgeEnvelope,
)
from mm_contracts.models.report_due_names import is_report_due_event

if TYPE_CHECKING:
    from mm_contracts.models.report_due import RunReportDueEvent


class InvalidEventError(ValueError):
    """The event is not a well-formed ECS Task State Change or Run Report Due event (kept in the DLQ)."""


def parse_event(event: dict[str, Any]) -> EventBridgeEnvelope | RunReportDueEvent:
    """The typed ECS event for an ECS Task State Change; the report-due event; the bare envelope for anything else.

    The envelope is checked first, so another kind of event is ignored (by the service) rather than
    failing detail validation.
    """
    try:
        if is_report_due_event(event):
            # Imported here: an ECS event, the common invocation, builds none of the report-due models (issue 13).
            from mm_contracts.models.report_due import RunReportDueEvent

            return RunReportDueEvent.model_validate(event)
        envelope = EventBridgeEnvelope.model_validate(event)
        if envelope.source != ECS_EVENT_SOURCE or envelope.detail_type != ECS_TASK_STATE_CHANGE:
            return envelope
        return EcsTaskStateChangeEvent.model_validate(event)
    except ValidationError as error:
        locations = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in error.errors(include_input=False)
        )
        raise InvalidEventError(f"not a valid ECS Task State Change or Run Report Due event: {locations}") from None
