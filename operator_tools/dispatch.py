"""The dispatch trigger (decision 109): after a change that leaves runs WAITING (a rerun, a SYSTEM dispatch, a
resume), invoke the deployed sweeper once, asynchronously, so it admits them now instead of at its next schedule.

The sweeper is invoked, not imitated: its own role, code and settings admit the runs, exactly as its schedule
would (`InvocationType=Event`, a scheduled-event-shaped payload, which the sweeper ignores anyway). The operator
never needs the capacity engine's caps, pacing or queue order in the tool. When the invoke fails (no
`lambda:InvokeFunction` for this caller, throttled, an emulator without the function) nothing is lost: the runs
are durably WAITING and the next scheduled sweep admits them; the sentence returned says so.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from infrastructure.config import EnvironmentConfig
    from infrastructure.wiring import ResourceNames

# The `source` of the trigger's event: an operator's, never mistaken for EventBridge's scheduled one in a log.
TRIGGER_SOURCE = "mm-processor.operator"
TRIGGER_DETAIL_TYPE = "Scheduled Event"


class DispatchContext(Protocol):
    """What the trigger needs of the command's context (`operator_tools.context.OperatorContext`)."""

    config: EnvironmentConfig
    names: ResourceNames

    def client(self, service: str) -> Any: ...


def trigger_event(context: DispatchContext, *, request_id: str | None = None) -> dict[str, Any]:
    """The payload: shaped like the schedule's event (the sweeper reads nothing of it), saying who sent it."""
    config = context.config
    return {
        "version": "0",
        "id": f"operator-{request_id or time.time_ns()}",
        "detail-type": TRIGGER_DETAIL_TYPE,
        "source": TRIGGER_SOURCE,
        "account": config.account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": config.region,
        "resources": [f"arn:aws:events:{config.region}:{config.account}:rule/{context.names.sweeper_schedule}"],
        "detail": {"requestId": request_id} if request_id else {},
    }


def trigger_dispatch(context: DispatchContext, *, request_id: str | None = None) -> str:
    """Invoke the sweeper asynchronously; a sentence for the console either way (never raises for AWS errors)."""
    function_name = context.names.sweeper_function
    interval = context.config.sweeper_interval_minutes
    fallback = f"the next scheduled sweep (every {interval} minutes) admits them"
    payload = json.dumps(trigger_event(context, request_id=request_id)).encode()
    try:
        response = context.client("lambda").invoke(FunctionName=function_name, InvocationType="Event", Payload=payload)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        return f"could not start a sweep now ({function_name}: {code}); {fallback}"
    except BotoCoreError as error:
        return f"could not start a sweep now ({function_name}: {type(error).__name__}); {fallback}"
    status = int(response.get("StatusCode", 0) or 0)
    if status != 202:
        return f"could not start a sweep now ({function_name} answered {status}); {fallback}"
    return f"sweep started ({function_name}): it admits the waiting runs within the challenges' caps now"


__all__ = ["TRIGGER_SOURCE", "DispatchContext", "trigger_dispatch", "trigger_event"]
