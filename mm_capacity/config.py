"""The environment's caps (`<ssmPrefix>/capacity`, JSON), cached by version like the challenge configs (decision 121).

The capacity pool items carry the versions the functions compare their caches with, so a warm function reads SSM
only when a version changes: `capsVersion` (the caps' version, on `ENV` and every `CHALLENGE#<id>` item) and
`configVersion` (that challenge's config version, on `CHALLENGE#<id>`), written by the sweeper every sweep when they
changed and by the operator's `caps set` at once. `observed_versions(item)` reads them from a raw item;
`SnapshotObserver` hands a dispatcher's pool snapshot to both loaders. Without a recent observation: the TTL.

Only a parsed document is cached; a failure is never cached, so the next call reads SSM again. A missing or invalid
parameter raises `CapacityConfigError` (naming the parameter and the reason): callers log and count it and admit
nothing, because admitting without a known cap could start any number of tasks (waiting loses nothing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from mm_adapters import aws
from mm_adapters.challenge_config import (
    ChallengeConfigLoader,
    ConfigErrorReason,
    VersionedCache,
    parameter_version,
    read_parameter,
)
from mm_capacity.keys import ENV_POOL, POOL_PARTITION, challenge_pool_key
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY, CAPACITY_TABLE_SORT_KEY
from mm_contracts.ports import Clock

_MAX_DETAIL = 400
CAPS_VERSION_ATTRIBUTE = "capsVersion"  # N, on the ENV and every CHALLENGE#<id> pool item
CONFIG_VERSION_ATTRIBUTE = "configVersion"  # N, on CHALLENGE#<id> pool items (and on a run item, at launch)
_CAPS_KEY = ""  # the one key of the caps' VersionedCache
_CHALLENGE_POOL_PREFIX = challenge_pool_key("")
_GET_PARAMETERS_MAX_NAMES = 10  # GetParameters takes at most 10 names a call


class CapacityConfigError(Exception):
    """The environment's caps cannot be read or parsed; `reason` is a stable code, the message says why."""

    def __init__(self, parameter_name: str, reason: ConfigErrorReason, detail: str) -> None:
        self.parameter_name = parameter_name
        self.reason = reason
        self.detail = detail[:_MAX_DETAIL]
        super().__init__(f"capacity config {parameter_name}: {reason.value}: {self.detail}")


class EnvironmentCapacityLoader:
    """`get()` -> `EnvironmentCapacity`, cached by version (`VersionedCache`), else at most `cache_seconds` old."""

    def __init__(
        self,
        parameter_name: str,
        cache_seconds: int,
        ssm_client: Any | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._name = parameter_name
        self._client = ssm_client
        self._clock = clock
        self._cache: VersionedCache[EnvironmentCapacity] = VersionedCache(cache_seconds)

    @property
    def parameter_name(self) -> str:
        return self._name

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("ssm")

    @property
    def cached_version(self) -> int | None:
        return self._cache.version_of(_CAPS_KEY)

    def observe(self, version: int | None) -> None:
        """The caps' version read in a pool item (`capsVersion`); None changes nothing."""
        self._cache.observe(_CAPS_KEY, version, self._clock())

    def get(self, force_refresh: bool = False, *, observed_version: int | None = None) -> EnvironmentCapacity:
        now = self._clock()
        self._cache.observe(_CAPS_KEY, observed_version, now)
        if not force_refresh:
            cached = self._cache.usable(_CAPS_KEY, now)
            if cached is not None:
                return cached
        self._cache.drop()  # a failed refresh must not leave a stale cap behind
        capacity, version = self._load(None if force_refresh else self._cache.observed(_CAPS_KEY, now))
        self._cache.store(_CAPS_KEY, capacity, version, now)
        return capacity

    def _load(self, version: int | None) -> tuple[EnvironmentCapacity, int | None]:
        try:
            parameter = read_parameter(self.client, self._name, version)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            if code == "ParameterNotFound":
                raise CapacityConfigError(
                    self._name, ConfigErrorReason.PARAMETER_MISSING, "no such SSM parameter"
                ) from None
            raise CapacityConfigError(
                self._name, ConfigErrorReason.PARAMETER_UNREADABLE, f"SSM GetParameter failed: {code}"
            ) from None
        except BotoCoreError as error:
            raise CapacityConfigError(
                self._name, ConfigErrorReason.PARAMETER_UNREADABLE, f"SSM unreachable: {type(error).__name__}"
            ) from None
        return parse_environment_capacity(self._name, parameter["Value"]), parameter_version(parameter)


def observed_versions(item: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(capsVersion, configVersion) of a raw capacity-table item (DynamoDB AttributeValues, or plain values), each
    None when absent (an item no sweep has stamped yet)."""

    def number(name: str) -> int | None:
        value = item.get(name)
        if value is None:
            return None
        if isinstance(value, Mapping):
            value = value.get("N")
        return int(value) if value is not None else None

    return number(CAPS_VERSION_ATTRIBUTE), number(CONFIG_VERSION_ATTRIBUTE)


class SnapshotObserver:
    """Hands the versions of a dispatcher's pool snapshot to the loaders (call it right after reading the pools).

    Reads `caps_version` / `config_version` of the snapshot's pool states when they have them (`getattr`: a pool
    state without the fields observes nothing, and the loaders keep their TTL)."""

    def __init__(self, caps: EnvironmentCapacityLoader | None, configs: ChallengeConfigLoader | None) -> None:
        self._caps = caps
        self._configs = configs

    def __call__(self, snapshot: Any) -> None:
        if self._caps is not None:
            self._caps.observe(getattr(snapshot.env, "caps_version", None))
        if self._configs is not None:
            for challenge_id, state in snapshot.challenges.items():
                self._configs.observe(challenge_id, getattr(state, "config_version", None))


@dataclass
class VersionSync:
    """What one sync of the versions saw and wrote (the sweeper logs it; its loaders observe the versions)."""

    caps_version: int | None = None
    config_versions: dict[str, int | None] = field(default_factory=dict)  # challenge id -> version (None: missing)
    stamped: int = 0  # pool items updated
    raced: int = 0  # updates refused because the item changed meanwhile (written again by the next sync)


class VersionStamps:
    """The SSM versions of the caps and of each challenge's config, kept on the capacity pool items (decision 121).

    Only existing items are updated (`attribute_exists` of the key): a stamp never creates a half pool item, and a
    pool item without a stamp is what the loaders already handle (the TTL). `sync` (the sweeper, every sweep) writes
    what changed, each update conditioned on the values it read (so a concurrent `stamp_forward` is never undone,
    and a parameter deleted and created again, whose version restarts at 1, is still followed); `stamp_forward`
    (`caps set`, right after its PutParameter) only ever raises a version.
    """

    def __init__(self, table_name: str, dynamodb: Callable[[], Any]) -> None:
        self._table = table_name
        self._dynamodb = dynamodb

    def pool_versions(self) -> dict[str, tuple[int | None, int | None]]:
        """sort key -> (capsVersion, configVersion) of the ENV and every CHALLENGE#<id> pool item."""
        found: dict[str, tuple[int | None, int | None]] = {}
        request: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": "#pk = :pk",
            "ProjectionExpression": "#sk, #caps, #config",
            "ExpressionAttributeNames": {
                "#pk": CAPACITY_TABLE_PARTITION_KEY,
                "#sk": CAPACITY_TABLE_SORT_KEY,
                "#caps": CAPS_VERSION_ATTRIBUTE,
                "#config": CONFIG_VERSION_ATTRIBUTE,
            },
            "ExpressionAttributeValues": {":pk": {"S": POOL_PARTITION}},
        }
        while True:
            page = self._dynamodb().query(**request)
            for item in page.get("Items", []):
                sort_key = str(item[CAPACITY_TABLE_SORT_KEY]["S"])
                if sort_key == ENV_POOL or sort_key.startswith(_CHALLENGE_POOL_PREFIX):
                    found[sort_key] = observed_versions(item)
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def sync(self, ssm: Any, caps_parameter: str, config_name_for: Callable[[str], str]) -> VersionSync:
        """Read the versions of the caps and of every pooled challenge's config (GetParameters, 10 names a call,
        no decryption: only the versions are used) and write those that differ from the pool items'."""
        pools = self.pool_versions()
        challenge_ids = [sk[len(_CHALLENGE_POOL_PREFIX) :] for sk in pools if sk != ENV_POOL]
        names = {caps_parameter: ""} | {config_name_for(cid): cid for cid in challenge_ids}
        versions = parameter_versions(ssm, list(names))
        sync = VersionSync(
            caps_version=versions.get(caps_parameter),
            config_versions={cid: versions.get(config_name_for(cid)) for cid in challenge_ids},
        )
        for sort_key, (caps_seen, config_seen) in pools.items():
            wanted: dict[str, int | None] = {CAPS_VERSION_ATTRIBUTE: sync.caps_version}
            seen: dict[str, int | None] = {CAPS_VERSION_ATTRIBUTE: caps_seen}
            if sort_key != ENV_POOL:
                wanted[CONFIG_VERSION_ATTRIBUTE] = sync.config_versions[sort_key[len(_CHALLENGE_POOL_PREFIX) :]]
                seen[CONFIG_VERSION_ATTRIBUTE] = config_seen
            changes = {name: value for name, value in wanted.items() if value != seen[name]}
            if not changes:
                continue
            if self._update(sort_key, changes, {name: seen[name] for name in changes}):
                sync.stamped += 1
            else:
                sync.raced += 1
        return sync

    def stamp_forward(self, sort_keys: list[str], attribute: str, version: int) -> int:
        """`attribute` = `version` on each existing item that holds no higher one; how many were updated."""
        return sum(1 for sort_key in sort_keys if self._update(sort_key, {attribute: version}, None))

    def challenge_sort_keys(self) -> list[str]:
        return [sk for sk in self.pool_versions() if sk != ENV_POOL]

    def _update(self, sort_key: str, changes: dict[str, int | None], seen: dict[str, int | None] | None) -> bool:
        names = {"#pk": CAPACITY_TABLE_PARTITION_KEY}
        values: dict[str, Any] = {}
        sets: list[str] = []
        removes: list[str] = []
        conditions = ["attribute_exists(#pk)"]
        for index, (attribute, version) in enumerate(sorted(changes.items())):
            alias = f"#v{index}"
            names[alias] = attribute
            if version is None:
                removes.append(alias)
            else:
                values[f":v{index}"] = {"N": str(version)}
                sets.append(f"{alias} = :v{index}")
            if seen is None:  # only forward: never lower a version another writer raised
                conditions.append(f"(attribute_not_exists({alias}) OR {alias} < :v{index})")
            elif seen[attribute] is None:
                conditions.append(f"attribute_not_exists({alias})")
            else:
                values[f":seen{index}"] = {"N": str(seen[attribute])}
                conditions.append(f"{alias} = :seen{index}")
        expression = " ".join(
            part
            for part in (f"SET {', '.join(sets)}" if sets else "", f"REMOVE {', '.join(removes)}" if removes else "")
            if part
        )
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {CAPACITY_TABLE_PARTITION_KEY: {"S": POOL_PARTITION}, CAPACITY_TABLE_SORT_KEY: {"S": sort_key}},
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._dynamodb().update_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False  # changed meanwhile, or no such item: the next sync looks again
            raise
        return True


def parameter_versions(ssm: Any, names: list[str]) -> dict[str, int]:
    """name -> version of every parameter that exists (GetParameters, no decryption); a missing one is absent."""
    versions: dict[str, int] = {}
    for start in range(0, len(names), _GET_PARAMETERS_MAX_NAMES):
        response = ssm.get_parameters(Names=names[start : start + _GET_PARAMETERS_MAX_NAMES], WithDecryption=False)
        for parameter in response.get("Parameters", []):
            versions[str(parameter["Name"])] = int(parameter["Version"])
    return versions


def parse_environment_capacity(parameter_name: str, text: str) -> EnvironmentCapacity:
    """Parse and validate the caps document; every failure is a `CapacityConfigError` naming the fields."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CapacityConfigError(
            parameter_name, ConfigErrorReason.NOT_JSON, f"not JSON ({error.msg}, line {error.lineno})"
        ) from None
    if not isinstance(document, dict):
        raise CapacityConfigError(
            parameter_name, ConfigErrorReason.NOT_JSON, f"expected a JSON object, got {type(document).__name__}"
        )
    try:
        return EnvironmentCapacity.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'document'}: {err['msg']}" for err in error.errors()
        )
        raise CapacityConfigError(parameter_name, ConfigErrorReason.INVALID_FIELDS, problems) from None


__all__ = [
    "CAPS_VERSION_ATTRIBUTE",
    "CONFIG_VERSION_ATTRIBUTE",
    "CapacityConfigError",
    "EnvironmentCapacityLoader",
    "SnapshotObserver",
    "VersionStamps",
    "VersionSync",
    "observed_versions",
    "parameter_versions",
    "parse_environment_capacity",
]
