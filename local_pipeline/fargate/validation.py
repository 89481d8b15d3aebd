"""RunTask validated the way ECS does where this pipeline could get it wrong: cluster, task definition, FARGATE,
awsvpc subnets and security groups, container override names and size, tags, startedBy, clientToken."""

from __future__ import annotations

import json
import re
from typing import Any

from local_pipeline.fargate.tasks import TaskDefinitionSim

_STARTED_BY = re.compile(r"^[A-Za-z0-9/_-]{1,128}$")
_MAX_OVERRIDE_CHARS = 8192
_MAX_TAGS = 50


class EcsError(Exception):
    """An ECS error answer: `{"__type": code, "message": message}` with an HTTP status (botocore's ClientError)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> EcsError:
    return EcsError("InvalidParameterException", message)


def _check_launch(body: dict[str, Any]) -> None:
    if body.get("launchType") != "FARGATE" and not body.get("capacityProviderStrategy"):
        raise _invalid("launchType FARGATE (or a capacity provider) is required.")
    count = body.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= 10:
        raise _invalid("count must be between 1 and 10.")


def _check_network(body: dict[str, Any]) -> None:
    vpc = (body.get("networkConfiguration") or {}).get("awsvpcConfiguration")
    if not vpc or not vpc.get("subnets"):
        raise _invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    if len(vpc["subnets"]) > 16 or len(vpc.get("securityGroups") or []) > 5:
        raise _invalid("too many subnets (16) or security groups (5).")
    if vpc.get("assignPublicIp") not in (None, "ENABLED", "DISABLED"):
        raise _invalid("assignPublicIp must be ENABLED or DISABLED.")


def _check_overrides(body: dict[str, Any], definition: TaskDefinitionSim) -> None:
    overrides = body.get("overrides") or {}
    for container in overrides.get("containerOverrides") or []:
        if container.get("name") != definition.container_name:
            raise _invalid(
                f"Override for container named {container.get('name')} is not a container in the TaskDefinition."
            )
    if len(json.dumps(overrides.get("containerOverrides") or [])) > _MAX_OVERRIDE_CHARS:
        raise _invalid("Container Overrides length must be at most 8192")


def _check_identity(body: dict[str, Any]) -> None:
    started_by = body.get("startedBy")
    if started_by is not None and not _STARTED_BY.match(str(started_by)):
        raise _invalid("startedBy: up to 128 of [A-Za-z0-9-/_].")
    token = body.get("clientToken")
    if token is not None and (
        not isinstance(token, str) or not 1 <= len(token) <= 64 or not all(32 < ord(c) < 127 for c in token)
    ):
        raise _invalid("clientToken: up to 64 printable ASCII characters.")
    tags = body.get("tags") or []
    if len(tags) > _MAX_TAGS or any(
        not t.get("key") or len(t["key"]) > 128 or len(str(t.get("value", ""))) > 256 for t in tags
    ):
        raise _invalid("tags: at most 50, key <= 128, value <= 256 characters.")


def validate_run_task(body: dict[str, Any], definition: TaskDefinitionSim) -> None:
    """Raise the `EcsError` ECS would answer a RunTask `body` with (checked in ECS's order), else None."""
    _check_launch(body)
    _check_network(body)
    _check_overrides(body, definition)
    _check_identity(body)
