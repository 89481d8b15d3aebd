"""The Parameter Store change event's names, without its pydantic models (decision 121).

Apart from `parameter_change` so that the sweeper's scheduled sweep, its common invocation, builds none of that
module's models on its cold start (issue 13, decision 112): the handler tells an `aws.ssm` event by these names
and imports `parameter_change` only to parse one. `parameter_change` re-exports every name here.
"""

from __future__ import annotations

from typing import Any

SSM_EVENT_SOURCE = "aws.ssm"
PARAMETER_STORE_CHANGE = "Parameter Store Change"


def is_ssm_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("source") == SSM_EVENT_SOURCE


__all__ = ["PARAMETER_STORE_CHANGE", "SSM_EVENT_SOURCE", "is_ssm_event"]
