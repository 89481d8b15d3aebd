"""The EventBridge "ECS Task State Change" event (the `detail` the completion handler reads).

Only the fields the pipeline uses are modelled; everything else AWS sends is ignored, so a new field in
the event never breaks parsing. The event carries the RunTask overrides: in the insecure compatibility
credentials mode they hold the scorer's token in plain text, so sensitive variable values are redacted
*while parsing* and a parsed event can be logged or put in an exception without leaking it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from mm_contracts.models.ecs_names import (
    ECS_EVENT_SOURCE,
    ECS_TASK_STATE_CHANGE,
    REDACTED,
    StopCode,
    is_sensitive_variable,
)


class _EcsModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


class KeyValuePair(_EcsModel):
    name: str
    value: str = ""


class ContainerOverride(_EcsModel):
    name: str | None = None
    environment: list[KeyValuePair] = Field(default_factory=list)

    @field_validator("environment", mode="after")
    @classmethod
    def _redact(cls, pairs: list[KeyValuePair]) -> list[KeyValuePair]:
        return [KeyValuePair(name=p.name, value=REDACTED) if is_sensitive_variable(p.name) else p for p in pairs]


class TaskOverrides(_EcsModel):
    container_overrides: list[ContainerOverride] = Field(default_factory=list)


class EcsContainer(_EcsModel):
    name: str
    exit_code: int | None = None
    reason: str | None = None
    last_status: str | None = None


class EcsTaskStateChangeDetail(_EcsModel):
    task_arn: str
    cluster_arn: str
    last_status: str
    desired_status: str | None = None
    started_by: str | None = None
    group: str | None = None
    task_definition_arn: str | None = None
    containers: list[EcsContainer] = Field(default_factory=list)
    overrides: TaskOverrides = Field(default_factory=TaskOverrides)
    stop_code: str | None = None
    stopped_reason: str | None = None
    stopped_at: datetime | None = None
    version: int | None = None

    def environment(self) -> dict[str, str]:
        """All container override variables (redacted where sensitive); the first value of a name wins."""
        merged: dict[str, str] = {}
        for override in self.overrides.container_overrides:
            for pair in override.environment:
                merged.setdefault(pair.name, pair.value)
        return merged

    def container(self, name: str) -> EcsContainer | None:
        return next((c for c in self.containers if c.name == name), None)


class EventBridgeEnvelope(BaseModel):
    """An EventBridge event's envelope (the fields of Powertools' `EventBridgeModel`, so the contracts need no
    Powertools): what the completion function reads before it knows which kind of event it has."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any] | BaseModel
    replay_name: str | None = Field(default=None, alias="replay-name")


class EcsTaskStateChangeEvent(EventBridgeEnvelope):
    """The EventBridge envelope with the typed ECS detail."""

    detail: EcsTaskStateChangeDetail


__all__ = [
    "ECS_EVENT_SOURCE",
    "ECS_TASK_STATE_CHANGE",
    "REDACTED",
    "ContainerOverride",
    "EcsContainer",
    "EcsTaskStateChangeDetail",
    "EcsTaskStateChangeEvent",
    "EventBridgeEnvelope",
    "KeyValuePair",
    "StopCode",
    "TaskOverrides",
    "is_sensitive_variable",
]
