"""Parameter Store change events (decision 121): the EventBridge rule on `aws.ssm` "Parameter Store Change" for the
environment's caps and challenge configs invokes the sweeper with the event, and the sweeper runs only the config
versions pass, so a change made by a deploy or in the console applies within seconds, not at the next sweep.

The event (https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html):
`source` "aws.ssm", `detail-type` "Parameter Store Change", `detail` {operation: Create | Update | Delete |
LabelParameterVersion, name, type, description}. Every other event (the schedule's, the operator's dispatch
trigger) is a sweep, as before. An `aws.ssm` event that is not such a change of one of this environment's cached
parameters is logged with its reason and does nothing: EventBridge does not retry a function error of an
asynchronous invocation into a loop, and a bad shape would fail the same way every time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sweeper_lambda.ssm_event_names import PARAMETER_STORE_CHANGE, SSM_EVENT_SOURCE, is_ssm_event


class ParameterStoreChangeDetail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    operation: str = Field(min_length=1)
    name: str = Field(min_length=1)


class ParameterStoreChangeEvent(BaseModel):
    """The fields of the event the sweeper reads (the envelope's others are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    source: Literal["aws.ssm"]
    detail_type: Literal["Parameter Store Change"] = Field(alias="detail-type")
    detail: ParameterStoreChangeDetail


@dataclass(frozen=True)
class ParameterChange:
    """A change of a parameter the functions cache by version: the config versions pass stamps it."""

    name: str
    operation: str


@dataclass(frozen=True)
class IgnoredEvent:
    """An `aws.ssm` event the sweeper does nothing for, and why (logged)."""

    reason: str


def parameter_change_of(
    event: dict[str, Any], *, caps_parameter: str, config_prefix: str
) -> ParameterChange | IgnoredEvent:
    """The change an `aws.ssm` event reports, when it is one of the caps or of a challenge config of this
    environment; otherwise the reason it is ignored."""
    try:
        parsed = ParameterStoreChangeEvent.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'event'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        return IgnoredEvent(f"not a Parameter Store Change event ({problems})")
    name = parsed.detail.name
    configs = config_prefix.rstrip("/") + "/"
    if name != caps_parameter and not (name.startswith(configs) and name.endswith("/config")):
        return IgnoredEvent(f"parameter {name} is neither the caps nor a challenge config of this environment")
    return ParameterChange(name=name, operation=parsed.detail.operation)


__all__ = [
    "PARAMETER_STORE_CHANGE",
    "SSM_EVENT_SOURCE",
    "IgnoredEvent",
    "ParameterChange",
    "ParameterStoreChangeDetail",
    "ParameterStoreChangeEvent",
    "is_ssm_event",
    "parameter_change_of",
]
