"""Reading an environment: `<env>.json` beside this module, the seed design's overrides, readable errors."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infrastructure.config.base import EnvironmentConfigError
from infrastructure.config.environment import EnvironmentConfig

# The environments' JSON files live in this package's directory (`infrastructure/config/<env>.json`).
CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_ENVIRONMENT = "example"

_OVERRIDES: dict[str, tuple[str, ...]] = {
    # override name -> path into the raw JSON (camelCase keys)
    "VPC_ID": ("network", "vpcId"),
    "PRIVATE_SUBNET_IDS": ("network", "privateSubnetIds"),
    "MSK_CLUSTER_ARN": ("kafka", "clusterArn"),
    "KAFKA_TOPIC": ("kafka", "topic"),
    "ECS_CLUSTER_ARN": ("ecs", "clusterArn"),
    "ECS_SUBNETS": ("ecs", "subnets"),
    "ECS_SECURITY_GROUP": ("ecs", "securityGroupIds"),
    "SUBMISSION_API_URL": ("submissionApiUrl",),
    "ALARM_EMAIL": ("alarmEmail",),
    "AWS_ACCOUNT": ("account",),
    "AWS_REGION_NAME": ("region",),
}
_LIST_OVERRIDES = {"PRIVATE_SUBNET_IDS", "ECS_SUBNETS", "ECS_SECURITY_GROUP"}
OVERRIDE_NAMES = (*_OVERRIDES, "CHALLENGE_IDS")


def _set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _apply_challenge_ids(raw: dict[str, Any], value: str) -> None:
    """CHALLENGE_IDS: deploy exactly these challenges; ids not listed in full use `challengeDefaults`."""
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    listed = {str(c.get("challengeId", "")).lower(): c for c in raw.get("challenges", [])}
    defaults = raw.get("challengeDefaults")
    selected: list[dict[str, Any]] = []
    for challenge_id in wanted:
        if challenge_id.lower() in listed:
            selected.append(listed[challenge_id.lower()])
        elif defaults:
            selected.append({"challengeId": challenge_id, "name": challenge_id, **defaults})
        else:
            raise EnvironmentConfigError(
                f"CHALLENGE_IDS: {challenge_id} is not in `challenges` and there are no `challengeDefaults`"
            )
    raw["challenges"] = selected


def load_environment(
    name: str = DEFAULT_ENVIRONMENT,
    *,
    overrides: Mapping[str, str] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> EnvironmentConfig:
    """Read `<config_dir>/<name>.json`, apply overrides (env vars and/or CDK context), validate."""
    path = config_dir / f"{name}.json"
    if not re.fullmatch(r"[a-z0-9-]+", name) or not path.is_file():
        available = sorted(p.stem for p in config_dir.glob("*.json"))
        raise EnvironmentConfigError(f"env: no configuration {path.name!r} (available: {', '.join(available)})")
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise EnvironmentConfigError(f"{path}: not valid JSON ({error})") from None
    return parse_environment(raw, overrides=overrides, source=str(path))


def parse_environment(
    raw: dict[str, Any], *, overrides: Mapping[str, str] | None = None, source: str = "<config>"
) -> EnvironmentConfig:
    raw = json.loads(json.dumps(raw))  # deep copy
    for override, value in (overrides or {}).items():
        if value in (None, ""):
            continue
        if override == "CHALLENGE_IDS":
            _apply_challenge_ids(raw, value)
        elif override in _OVERRIDES:
            parsed: Any = [v.strip() for v in value.split(",") if v.strip()] if override in _LIST_OVERRIDES else value
            _set_path(raw, _OVERRIDES[override], parsed)
    try:
        return EnvironmentConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{_location(err['loc'], raw) or 'config'}: {str(err['msg']).removeprefix('Value error, ')}"
            for err in error.errors()
        )
        raise EnvironmentConfigError(f"{source}: {problems}") from None


def _location(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """`challenges.1.phases.0.timeoutSeconds` -> `challenges[<challengeId>].phases.0.timeoutSeconds`."""
    parts = [str(part) for part in loc]
    challenges = raw.get("challenges")
    if len(loc) >= 2 and loc[0] == "challenges" and isinstance(loc[1], int) and isinstance(challenges, list):
        entry = challenges[loc[1]] if loc[1] < len(challenges) else None
        if isinstance(entry, dict) and entry.get("challengeId"):
            parts[:2] = [f"challenges[{entry['challengeId']}]"]
    return ".".join(parts)


def overrides_from(environ: Mapping[str, str], context: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Collect overrides: environment variables first, CDK context (`-c NAME=value`) wins."""
    found = {name: environ[name] for name in OVERRIDE_NAMES if environ.get(name)}
    for name in OVERRIDE_NAMES:
        if context and context.get(name) not in (None, ""):
            found[name] = str(context[name])
    return found


def environment_from_os(name: str | None = None) -> EnvironmentConfig:
    """Convenience for tools: the environment named by `name` or MM_ENV, with OS environment overrides."""
    return load_environment(name or os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT), overrides=overrides_from(os.environ))
