"""The router's on-failure bucket (decision 055): how many records wait there, and their replay into the router.

Lambda writes one object per Kafka batch the router's event source gave up on. A replay reads each object not yet
marked, turns it back into MSK events (`mm_adapters.kafka_failures.replay_events`, each Kafka record at most once
across the whole replay), invokes the router synchronously with each, and marks the object replayed with the
object tag `mm-replayed` (value: the replay's request id) once every event of it went in. Objects are never
deleted or renamed (a tag keeps the key Lambda wrote, and the bucket's lifecycle rules apply unchanged); a
marked object is skipped by the next replay. The router is idempotent (audit marks, the status table: decisions
002, 075), so a replay interrupted between an invoke and its tag only replays that object again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infrastructure.wiring import WiringPlan
from mm_adapters.kafka_failures import replay_events
from mm_contracts.models.kafka_failure import FailureRecordError, KafkaFailureRecord
from operator_tools.clients import AwsClients, ClientSource

REPLAYED_TAG = "mm-replayed"
# The router's synchronous invoke waits for the whole batch: the read timeout outlasts the function's timeout by
# this much, and the invoke is sent once (a retried RequestResponse invoke runs the batch again).
INVOKE_TIMEOUT_MARGIN_SECONDS = 15
INVOKE_MAX_ATTEMPTS = 1
MAX_TAG_CHECKS = 200  # objects whose tags `count` reads at most (a list stays fast on a full bucket)


def bucket_name(plan: WiringPlan) -> str:
    return plan.names.router_failure_bucket(plan.config.account, plan.config.region)


def _keys(clients: ClientSource, bucket: str, prefix: str) -> Iterator[str]:
    paginator = clients.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield str(item["Key"])


def _tags(clients: ClientSource, bucket: str, key: str) -> list[dict[str, str]]:
    return list(clients.client("s3").get_object_tagging(Bucket=bucket, Key=key).get("TagSet", []))


def is_replayed(tags: list[dict[str, str]]) -> bool:
    return any(tag.get("Key") == REPLAYED_TAG for tag in tags)


@dataclass(frozen=True)
class BucketCount:
    bucket: str
    objects: int
    unreplayed: int  # of the first MAX_TAG_CHECKS objects
    checked: int

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "objects": self.objects, "unreplayed": self.unreplayed, "checked": self.checked}


def count(plan: WiringPlan, clients: ClientSource, prefix: str = "") -> BucketCount:
    bucket = bucket_name(plan)
    keys = list(_keys(clients, bucket, prefix))
    checked = keys[:MAX_TAG_CHECKS]
    unreplayed = sum(1 for key in checked if not is_replayed(_tags(clients, bucket, key)))
    return BucketCount(bucket, len(keys), unreplayed, len(checked))


@dataclass
class ReplayResult:
    bucket: str
    objects: int = 0  # not yet replayed, looked at
    replayed_objects: int = 0
    skipped_objects: int = 0  # marked replayed already
    events: int = 0
    records: int = 0  # Kafka records in the events invoked
    failed_objects: int = 0
    errors: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the objects this replay marked

    @property
    def ok(self) -> bool:
        return self.failed_objects == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "objects": self.objects,
            "replayedObjects": self.replayed_objects,
            "skippedObjects": self.skipped_objects,
            "events": self.events,
            "records": self.records,
            "failedObjects": self.failed_objects,
            "errors": self.errors[:20],
        }


def pending_keys(plan: WiringPlan, clients: ClientSource, *, prefix: str, limit: int) -> tuple[list[str], int]:
    """(up to `limit` keys not marked replayed, in key order; how many marked ones were skipped)."""
    bucket = bucket_name(plan)
    pending: list[str] = []
    skipped = 0
    for key in sorted(_keys(clients, bucket, prefix)):
        if len(pending) >= limit:
            break
        if is_replayed(_tags(clients, bucket, key)):
            skipped += 1
        else:
            pending.append(key)
    return pending, skipped


def router_client(plan: WiringPlan, clients: ClientSource) -> Any:
    """The Lambda client for the router's synchronous invoke: a read timeout beyond the router's timeout
    (`router.timeoutSeconds` + 15 s) and no retry. A client source that is not an `AwsClients` (a test's) is used
    as it is."""
    if isinstance(clients, AwsClients):
        return clients.client(
            "lambda",
            read_timeout=plan.config.router.timeout_seconds + INVOKE_TIMEOUT_MARGIN_SECONDS,
            total_max_attempts=INVOKE_MAX_ATTEMPTS,
        )
    return clients.client("lambda")


def _invoke(lambda_client: Any, function: str, event: dict[str, Any]) -> str | None:
    response = lambda_client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
    )
    if response.get("FunctionError"):
        body = response["Payload"].read()[:300].decode(errors="replace") if response.get("Payload") else ""
        return f"the router failed: {response['FunctionError']} {body}".strip()
    return None


def _aws_error(error: Exception) -> str:
    return f"{type(error).__name__} {error}"[:300]


def _mark(clients: ClientSource, bucket: str, key: str, request_id: str) -> None:
    """The replayed tag added to the object's own tags (PutObjectTagging replaces the whole set). S3 allows ten
    tags per object: an object with ten already is refused (BadRequest), which the caller counts failed."""
    tags = [t for t in _tags(clients, bucket, key) if t.get("Key") != REPLAYED_TAG]
    tags.append({"Key": REPLAYED_TAG, "Value": request_id})
    clients.client("s3").put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tags})


def _replay_object(
    clients: ClientSource, lambda_client: Any, bucket: str, key: str, function: str, seen: set[tuple[str, int, int]]
) -> tuple[int, int, str | None]:
    """(events, records, error) of one object's replay."""
    body = clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        events = replay_events([KafkaFailureRecord.parse(body, source=key)], seen=seen)
    except FailureRecordError as error:
        return 0, 0, f"cannot replay: {error}"
    records = 0
    for done, event in enumerate(events):
        failure = _invoke(lambda_client, function, event)
        if failure is not None:
            return done, records, failure
        records += sum(len(batch) for batch in event["records"].values())
    return len(events), records, None


def replay(plan: WiringPlan, clients: ClientSource, keys: list[str], *, request_id: str) -> ReplayResult:
    """Each object into the router, then marked; an object that failed stays unmarked (replay it again)."""
    bucket = bucket_name(plan)
    result = ReplayResult(bucket, objects=len(keys))
    seen: set[tuple[str, int, int]] = set()
    lambda_client = router_client(plan, clients)
    for key in keys:
        try:
            events, records, error = _replay_object(
                clients, lambda_client, bucket, key, plan.names.router_function, seen
            )
        except (ClientError, BotoCoreError) as aws_error:
            events, records, error = 0, 0, f"AWS error: {_aws_error(aws_error)}"
        result.events += events
        result.records += records
        if error is not None:
            result.failed_objects += 1
            result.errors.append(f"{key}: {error}")
            continue
        try:
            _mark(clients, bucket, key, request_id)
        except (ClientError, BotoCoreError) as aws_error:
            # Its events went in, but the next replay sends them again (the router is idempotent).
            result.failed_objects += 1
            result.errors.append(
                f"{key}: replayed but not marked ({_aws_error(aws_error)}): a next replay sends it again"
            )
            continue
        result.replayed_objects += 1
        result.keys.append(key)
    return result
