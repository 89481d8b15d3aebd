"""Fakes and builders for the router tests (unit and moto integration)."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.names import legacy_challenge_alias_key
from mm_contracts.settings import RouterSettings
from router_lambda.routing import SubmissionRouter
from router_lambda.wiring import RouterDependencies
from tests.builders import KafkaRecord, bus_envelope, iso_now, msk_event, new_uuid, submission_payload
from tests.fakes.clock import VirtualClock
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.queues import RecordingSqs as FakeSqs

ALLOWED_HOST = "topcoder-submissions.s3.amazonaws.com"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:mm-test-submissions"
AUDIT_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/mm-test-audit"
CHALLENGE_TABLE = "mm-test-challenges"
AUDIT_MARKS_TABLE = "mm-test-audit-marks"


def router_settings(**overrides: Any) -> RouterSettings:
    values: dict[str, Any] = {
        "environment_name": "test",
        "sns_topic_arn": TOPIC_ARN,
        "challenge_table_name": CHALLENGE_TABLE,
        "audit_queue_url": AUDIT_QUEUE_URL,
        "audit_marks_table_name": AUDIT_MARKS_TABLE,
        "allowed_url_hosts": (ALLOWED_HOST, ".topcoder.com"),
    }
    values.update(overrides)
    return RouterSettings.model_validate(values)


def router_env(**overrides: str) -> dict[str, str]:
    env = router_settings().to_env()
    env.update(overrides)
    return env


def submission_record(
    challenge_id: str | int, *, partition: int = 0, submission_id: str | None = None, **payload: Any
) -> KafkaRecord:
    return KafkaRecord(
        bus_envelope(submission_payload(submission_id=submission_id, challengeId=challenge_id, **payload)),
        partition=partition,
    )


def raw_record(value: Any, partition: int = 0, **kwargs: Any) -> KafkaRecord:
    return KafkaRecord(value, partition=partition, **kwargs)


def event_of(*records: KafkaRecord) -> dict[str, Any]:
    return msk_event(records)


def challenge_item(
    challenge_id: str, *, active: bool = True, legacy_id: int | None = None, platform: Platform | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"challengeId": {"S": challenge_id}, "active": {"BOOL": active}}
    if legacy_id is not None:
        item["legacyId"] = {"N": str(legacy_id)}
    if platform is not None:  # absent: the seed's rows, which are v5
        item["platform"] = {"S": platform.value}
    return item


# ---------------------------------------------------------------- v6 (review-api-v6 publishMarathonMatchEvent)
_NANOID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def new_nanoid() -> str:
    """A fresh 14-character v6 submission id, as review-api-v6's nanoid(14) forms it."""
    return "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(14))


def v6_payload(
    *, submission_id: str | None = None, challenge_id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """The payload review-api-v6 publishes: every field a string."""
    payload: dict[str, Any] = {
        "submissionId": submission_id or new_nanoid(),
        "challengeId": challenge_id or new_uuid(),
        "submissionUrl": f"https://{ALLOWED_HOST}/mm/solution.zip",
        "memberHandle": "tourist",
        "memberId": "88770025",
        "submittedDate": iso_now(),
    }
    payload.update(overrides)
    return payload


def v6_envelope(payload: dict[str, Any]) -> dict[str, Any]:
    return bus_envelope(payload, topic=V6_SUBMISSION_TOPIC) | {"originator": "review-api-v6"}


def v6_record(value: Any, *, partition: int = 0) -> KafkaRecord:
    """A record on the v6 Kafka topic (`value`: an envelope, a bare payload, or raw bytes)."""
    return KafkaRecord(value, partition=partition, topic=V6_SUBMISSION_TOPIC)


def alias_item(legacy_id: int, target: str) -> dict[str, Any]:
    return {"challengeId": {"S": legacy_challenge_alias_key(legacy_id)}, "aliasOf": {"S": target}}


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


# ---------------------------------------------------------------- fakes (boto-shaped ports)
@dataclass
class FakeDynamoDB:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)  # keys asked, per call
    unprocessed_script: list[set[str]] = field(default_factory=list)  # per call: keys to leave unprocessed
    error: Exception | None = None
    # The audit marks table (decision 075): its items, and its own outage (another table, another fault).
    marks: dict[str, dict[str, Any]] = field(default_factory=dict)
    marks_error: Exception | None = None
    marks_write_error: Exception | None = None
    marks_calls: int = 0

    def add(self, *items: dict[str, Any]) -> FakeDynamoDB:
        for item in items:
            self.items[item["challengeId"]["S"]] = item
        return self

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        ((table, request),) = kwargs["RequestItems"].items()
        if any("recordId" in key for key in request["Keys"]):  # the audit marks table, whatever its name
            return self._get_marks(table, request)
        keys = [k["challengeId"]["S"] for k in request["Keys"]]
        self.calls.append(keys)
        if self.error is not None:
            raise self.error
        left = self.unprocessed_script.pop(0) if self.unprocessed_script else set()
        answered = [self.items[k] for k in keys if k in self.items and k not in left]
        response: dict[str, Any] = {"Responses": {table: answered}, "UnprocessedKeys": {}}
        if left & set(keys):
            response["UnprocessedKeys"] = {table: {"Keys": [{"challengeId": {"S": k}} for k in keys if k in left]}}
        return response

    @property
    def keys_read(self) -> list[str]:
        return [key for call in self.calls for key in call]

    def _get_marks(self, table: str, request: dict[str, Any]) -> dict[str, Any]:
        self.marks_calls += 1
        if self.marks_error is not None:
            raise self.marks_error
        assert request.get("ConsistentRead") is True
        keys = [k["recordId"]["S"] for k in request["Keys"]]
        return {"Responses": {table: [self.marks[k] for k in keys if k in self.marks]}, "UnprocessedKeys": {}}

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        ((_table, requests),) = kwargs["RequestItems"].items()
        self.marks_calls += 1
        if self.marks_write_error is not None:
            raise self.marks_write_error
        for request in requests:
            item = request["PutRequest"]["Item"]
            self.marks[item["recordId"]["S"]] = item
        return {"UnprocessedItems": {}}


EntryRule = Callable[[int, dict[str, Any]], dict[str, Any] | None]  # (call number, entry) -> Failed entry or None


@dataclass
class FakeSns:
    rule: EntryRule | None = None
    error: Exception | None = None
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)

    def publish_batch(self, **kwargs: Any) -> dict[str, Any]:
        entries = kwargs["PublishBatchRequestEntries"]
        self.calls.append(entries)
        if self.error is not None:
            raise self.error
        successful, failed = [], []
        for entry in entries:
            failure = self.rule(len(self.calls), entry) if self.rule else None
            if failure is None:
                successful.append({"Id": entry["Id"], "MessageId": new_uuid()})
                self.published.append(entry)
            else:
                failed.append({"Id": entry["Id"], **failure})
        return {"Successful": successful, "Failed": failed}

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(entry["Message"]) for entry in self.published]


@dataclass
class Harness:
    router: SubmissionRouter
    ddb: FakeDynamoDB
    sns: FakeSns
    sqs: FakeSqs
    metrics: RecordingMetrics
    clock: VirtualClock
    sleeps: list[float]


def harness(
    *,
    challenges: Iterable[dict[str, Any]] = (),
    settings: RouterSettings | None = None,
    ddb: FakeDynamoDB | None = None,
    sns: FakeSns | None = None,
    sqs: FakeSqs | None = None,
) -> Harness:
    ddb = ddb or FakeDynamoDB()
    ddb.add(*challenges)
    sns = sns or FakeSns()
    sqs = sqs or FakeSqs()
    metrics = RecordingMetrics()
    clock = VirtualClock()
    sleeps: list[float] = []
    router = RouterDependencies(
        settings or router_settings(),
        metrics=metrics,
        clock=clock,
        sleep=sleeps.append,
        jitter=lambda: 1.0,
        sns=lambda: sns,
        sqs=lambda: sqs,
        dynamodb=lambda: ddb,
    ).router
    return Harness(router, ddb, sns, sqs, metrics, clock, sleeps)


def failure_ids(response: Any) -> list[tuple[str, int]]:
    return [(f["itemIdentifier"]["partition"], f["itemIdentifier"]["offset"]) for f in response["batchItemFailures"]]


class LogCapture:
    """The router logger's JSON lines, captured by pointing its stream handler at a buffer."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


def capture_router_logs() -> Any:
    """Context manager yielding a LogCapture (restores the original stream afterwards)."""
    import contextlib
    import logging

    from router_lambda.observability import logger

    @contextlib.contextmanager
    def _capture() -> Any:
        handler = logger.registered_handler
        assert isinstance(handler, logging.StreamHandler)
        capture = LogCapture()
        previous = handler.setStream(capture.buffer)
        try:
            yield capture
        finally:
            handler.setStream(previous)

    return _capture()
