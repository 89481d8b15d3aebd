"""The ECS Task State Change event's names and redaction rule, without its pydantic models.

Apart from `ecs_event` so that the sweeper, which writes synthetic events but never parses one, builds none of
that module's eight models on its cold start (issue 13, decision 112). `ecs_event` re-exports every name here.
"""

from __future__ import annotations

import re

from mm_contracts.models.task import TaskEnv

ECS_EVENT_SOURCE = "aws.ecs"
ECS_TASK_STATE_CHANGE = "ECS Task State Change"
REDACTED = "***redacted***"

# Variable names whose values must never be logged. MM_TOKEN_PARAMETER is an SSM parameter *name*.
_SENSITIVE_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|CREDENTIAL|PRIVATE_KEY|API_KEY)", re.IGNORECASE)
_NOT_SENSITIVE = frozenset({TaskEnv.TOKEN_PARAMETER.value})


def is_sensitive_variable(name: str) -> bool:
    return name == TaskEnv.M2M_TOKEN.value or (name not in _NOT_SENSITIVE and bool(_SENSITIVE_NAME.search(name)))


class StopCode:
    """ECS `stopCode` values (strings, not an enum: AWS adds new ones and the event must still parse)."""

    TASK_FAILED_TO_START = "TaskFailedToStart"
    ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"
    USER_INITIATED = "UserInitiated"
    SERVICE_SCHEDULER_INITIATED = "ServiceSchedulerInitiated"
    SPOT_INTERRUPTION = "SpotInterruption"
    TERMINATION_NOTICE = "TerminationNotice"


__all__ = ["ECS_EVENT_SOURCE", "ECS_TASK_STATE_CHANGE", "REDACTED", "StopCode", "is_sensitive_variable"]
