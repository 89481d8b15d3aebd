"""The router handler against moto: MSK event in, SNS -> per-challenge SQS out, audit queue, DynamoDB reads."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mm_adapters import aws as aws_clients
from mm_contracts.metric_names import Metric
from mm_contracts.models.audit import AuditRecord
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE
from router_lambda import wiring
from router_lambda.wiring import RouterDependencies
from tests.builders import KafkaRecord, flat_submission, new_uuid, review_envelope
from tests.fakes.metrics import RecordingMetrics
from tests.integration.router.topology import create_audit_marks_table, drain, fan_out, invoke, set_router_env
from tests.unit.router.support import (
    AUDIT_MARKS_TABLE,
    LogCapture,
    alias_item,
    challenge_item,
    event_of,
    failure_ids,
    raw_record,
    router_settings,
    submission_record,
)

TOPIC = "submission.notification.create"


@dataclass
class Stack:
    topic_arn: str
    audit_queue_url: str
    table: str
    challenge_a: str
    challenge_b: str
    queue_a: str
    queue_b: str
    calls: dict[str, int] = field(default_factory=dict)

    def counter(self, operation: str) -> int:
        return self.calls.get(operation, 0)


def audits(stack: Stack) -> list[AuditRecord]:
    return [AuditRecord.model_validate_json(m["Body"]) for m in drain(stack.audit_queue_url)]


@pytest.fixture
def stack(challenge_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    ddb = aws_clients.client("dynamodb")
    a, b = new_uuid(), new_uuid()
    topic_arn, audit_url, queues = fan_out((a, b))
    for item in (
        challenge_item(a, legacy_id=30_054_321),
        challenge_item(b),
        challenge_item("11111111-2222-4333-8444-555555555555", active=False),
        alias_item(30_054_321, a),
    ):
        ddb.put_item(TableName=challenge_table, Item=item)
    create_audit_marks_table()
    set_router_env(
        monkeypatch,
        router_settings(sns_topic_arn=topic_arn, audit_queue_url=audit_url, challenge_table_name=challenge_table),
    )
    result = Stack(topic_arn, audit_url, challenge_table, a, b, queues[a], queues[b])

    def count(model: Any, **_: Any) -> None:
        result.calls[model.name] = result.calls.get(model.name, 0) + 1

    aws_clients.client("sns").meta.events.register("before-call.sns.PublishBatch", count)
    ddb.meta.events.register("before-call.dynamodb.BatchGetItem", count)
    aws_clients.client("sqs").meta.events.register("before-call.sqs.SendMessageBatch", count)
    wiring.use_dependencies(None)
    yield result
    wiring.use_dependencies(None)


def test_multi_partition_event_is_routed_in_ceil_n_over_10_publish_calls(stack: Stack, lambda_context: Any) -> None:
    # Given 23 submissions for one challenge over three partitions
    records = [submission_record(stack.challenge_a, partition=p) for p in (0, 1, 2) for _ in range(8)][:23]
    # When the handler runs
    response = invoke(event_of(*records), lambda_context)
    # Then nothing fails, SNS got ceil(23/10) calls and the challenge queue holds all 23 messages
    assert response == {"batchItemFailures": []}
    assert stack.counter("PublishBatch") == math.ceil(23 / 10)
    delivered = [RoutedSubmission.model_validate_json(m["Body"]) for m in drain(stack.queue_a)]
    assert (
        sorted((d.source.partition, d.source.offset) for d in delivered)
        == sorted((p, o) for p in (0, 1, 2) for o in range(100, 108))[:23]
    )
    assert stack.counter("SendMessageBatch") == 0


def test_routed_message_lands_only_in_its_challenge_queue(stack: Stack, lambda_context: Any) -> None:
    record_a = submission_record(stack.challenge_a)
    record_b = submission_record(stack.challenge_b, partition=1)
    invoke(event_of(record_a, record_b), lambda_context)
    (in_a,) = drain(stack.queue_a)
    (in_b,) = drain(stack.queue_b)
    routed_a = RoutedSubmission.model_validate_json(in_a["Body"])  # raw delivery: the body is our JSON
    routed_b = RoutedSubmission.model_validate_json(in_b["Body"])
    assert routed_a.challenge_id == stack.challenge_a
    assert routed_a.submission_id == json.loads(record_a.value_bytes())["payload"]["id"]
    assert routed_b.challenge_id == stack.challenge_b
    assert in_a["MessageAttributes"][CHALLENGE_ID_ATTRIBUTE]["StringValue"] == stack.challenge_a
    assert routed_a.correlation_id == f"{TOPIC}-0-100"


def test_review_message_is_skipped_and_audited(stack: Stack, lambda_context: Any) -> None:
    response = invoke(event_of(KafkaRecord(review_envelope())), lambda_context)
    assert response == {"batchItemFailures": []}
    (audit,) = audits(stack)
    assert (audit.disposition.value, audit.reason, audit.correlation_id) == (
        "skipped",
        "resource_not_submission",
        f"{TOPIC}-0-100",
    )
    assert stack.counter("PublishBatch") == 0
    assert drain(stack.queue_a) == []


def test_flat_form_message_is_routed(stack: Stack, lambda_context: Any) -> None:
    flat = flat_submission(challenge_id=stack.challenge_b)
    invoke(event_of(raw_record(flat)), lambda_context)
    (message,) = drain(stack.queue_b)
    assert RoutedSubmission.model_validate_json(message["Body"]).submission_id == flat["id"]


def test_legacy_challenge_id_resolves_via_v5_challenge_id_and_via_the_alias_item(
    stack: Stack, lambda_context: Any
) -> None:
    via_v5 = submission_record("30054321", v5ChallengeId=stack.challenge_b)  # v5ChallengeId wins
    via_alias = submission_record("30054321", partition=1)
    response = invoke(event_of(via_v5, via_alias), lambda_context)
    assert response == {"batchItemFailures": []}
    (in_b,) = drain(stack.queue_b)
    (in_a,) = drain(stack.queue_a)
    assert RoutedSubmission.model_validate_json(in_b["Body"]).legacy_challenge_id == 30_054_321
    assert RoutedSubmission.model_validate_json(in_a["Body"]).challenge_id == stack.challenge_a
    assert stack.counter("BatchGetItem") == 2  # round 1: challenge B + alias; round 2: challenge A


def test_inactive_and_unknown_challenges_are_rejected_and_audited(stack: Stack, lambda_context: Any) -> None:
    inactive = submission_record("11111111-2222-4333-8444-555555555555")
    unknown = submission_record(new_uuid())
    unresolved = submission_record(987_654)
    invoke(event_of(inactive, unknown, unresolved), lambda_context)
    assert sorted((a.disposition.value, a.reason) for a in audits(stack)) == [
        ("rejected", "challenge_inactive"),
        ("rejected", "challenge_unknown"),
        ("rejected", "legacy_challenge_unresolved"),
    ]
    assert stack.counter("PublishBatch") == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xc3\x28 not utf-8", "value_not_utf8"),
        (b"{not json", "value_not_json"),
        ([1, 2, 3], "value_not_object"),
        ('"https://example.com"', "value_not_object"),  # a JSON string
    ],
)
def test_undecodable_values_are_rejected_with_their_reason(
    stack: Stack, lambda_context: Any, value: Any, reason: str
) -> None:
    response = invoke(event_of(raw_record(value)), lambda_context)
    assert response == {"batchItemFailures": []}
    assert [a.reason for a in audits(stack)] == [reason]


def test_one_batch_get_per_batch_and_none_within_the_cache_ttl(stack: Stack, lambda_context: Any) -> None:
    # Given a batch of 20 submissions over two challenges
    batch = [submission_record(stack.challenge_a) for _ in range(10)]
    batch += [submission_record(stack.challenge_b, partition=1) for _ in range(10)]
    # When it is routed twice on a warm function (well within CHALLENGE_CACHE_SECONDS=60)
    invoke(event_of(*batch), lambda_context)
    assert stack.counter("BatchGetItem") == 1
    invoke(event_of(*batch), lambda_context)
    # Then the second invocation reads nothing
    assert stack.counter("BatchGetItem") == 1
    assert len(drain(stack.queue_a)) == 20


def test_cache_expires_after_ttl(stack: Stack) -> None:
    now = [1_800_000_000.0]
    router = RouterDependencies(
        router_settings(
            sns_topic_arn=stack.topic_arn, audit_queue_url=stack.audit_queue_url, challenge_table_name=stack.table
        ),
        metrics=RecordingMetrics(),
        clock=lambda: now[0],
        sleep=lambda _: None,
    ).router
    router.handle(event_of(submission_record(stack.challenge_a)))
    now[0] += 30
    router.handle(event_of(submission_record(stack.challenge_a)))
    assert stack.counter("BatchGetItem") == 1
    now[0] += 31
    router.handle(event_of(submission_record(stack.challenge_a)))
    assert stack.counter("BatchGetItem") == 2


def test_publish_batch_partial_failure_is_retried_and_then_succeeds(stack: Stack) -> None:
    # Given an SNS client whose first PublishBatch fails one entry transiently (moto cannot do this)
    client: Any = boto3.client("sns", region_name="us-east-1")  # its own client: the Stubber answers every call
    stubber = Stubber(client)
    stubber.add_response(
        "publish_batch",
        {
            "Successful": [{"Id": "r0", "MessageId": new_uuid()}],
            "Failed": [{"Id": "r1", "Code": "InternalFailure", "Message": "try again", "SenderFault": False}],
        },
    )
    stubber.add_response("publish_batch", {"Successful": [{"Id": "r1", "MessageId": new_uuid()}], "Failed": []})
    sleeps: list[float] = []
    metrics = RecordingMetrics()
    router = RouterDependencies(
        router_settings(
            sns_topic_arn=stack.topic_arn, audit_queue_url=stack.audit_queue_url, challenge_table_name=stack.table
        ),
        metrics=metrics,
        sleep=sleeps.append,
        jitter=lambda: 0.5,
        sns=lambda: client,
    ).router
    # When two submissions are routed
    with stubber:
        response = router.handle(event_of(submission_record(stack.challenge_a), submission_record(stack.challenge_a)))
        stubber.assert_no_pending_responses()
    # Then the failed entry was re-sent once after a jittered backoff, and nothing fails
    assert response == {"batchItemFailures": []}
    assert sleeps == [0.05]
    assert metrics.total(Metric.PUBLISH_RETRIES) == 1
    assert metrics.total(Metric.RECORDS_ROUTED) == 2
    assert metrics.total(Metric.PUBLISH_FAILURES) == 0


def test_persistent_sns_failure_returns_exactly_those_records_and_loses_nothing(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the topic is gone (SNS answers NotFound on every call)
    aws_clients.client("sns").delete_topic(TopicArn=stack.topic_arn)
    records = [
        submission_record(stack.challenge_a, partition=0),
        KafkaRecord(review_envelope(), partition=0),
        submission_record(stack.challenge_b, partition=0),
        submission_record(stack.challenge_a, partition=2),
        raw_record([1], partition=2),
    ]
    # When the handler runs
    response = invoke(event_of(*records), lambda_context)
    # Then exactly the routable records are named, per partition and offset; the others are audited
    assert failure_ids(response) == [(f"{TOPIC}-0", 100), (f"{TOPIC}-0", 102), (f"{TOPIC}-2", 100)]
    recorded = audits(stack)
    assert sorted(a.reason for a in recorded) == ["resource_not_submission", "value_not_object"]
    assert {(a.source.partition, a.source.offset) for a in recorded} == {(0, 101), (2, 101)}
    assert stack.counter("PublishBatch") == 1
    assert drain(stack.queue_a) == []


def test_handler_logs_never_hold_the_raw_value_and_emit_reason_metrics(
    stack: Stack, lambda_context: Any, router_logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = "zz-untrusted-marker-zz"
    records = [
        raw_record(f"{{bad json {marker}".encode()),
        submission_record(stack.challenge_a, url=f"http://files.topcoder.com/{marker}"),
        submission_record(stack.challenge_a, type=marker),
        KafkaRecord(review_envelope() | {"extra": marker}),
    ]
    event = event_of(*records)
    invoke(event, lambda_context)
    assert router_logs.lines()  # the handler did log
    assert marker not in router_logs.text
    for group in event["records"].values():
        for item in group:
            assert item["value"] not in router_logs.text
    # EMF on stdout: one blob per reason with the Reason dimension, plus the handler's counters
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [b for b in blobs if "_aws" in b]
    reasons = {
        (b.get("Reason"), next(iter(m["Name"] for m in b["_aws"]["CloudWatchMetrics"][0]["Metrics"])))
        for b in emf
        if "Reason" in b
    }
    assert reasons == {
        ("value_not_json", "RecordsRejected"),
        ("url_not_https", "RecordsRejected"),
        ("resource_not_submission", "RecordsSkipped"),
    }
    assert all(b["Environment"] == "test" for b in emf if "Reason" in b)
    totals = {name: b[name] for b in emf for name in ("RecordsReceived", "RecordsRouted") if name in b}
    assert totals == {"RecordsReceived": [4.0], "RecordsRouted": [1.0]}
    # every line carries the dimensions the alarms sum over (Environment) and the function's service
    assert all((b["Environment"], b["service"]) == ("test", "router") for b in emf)
    assert marker not in "".join(json.dumps(b) for b in emf)


def test_a_batch_retried_eleven_times_in_an_sns_outage_is_audited_once_on_real_tables(stack: Stack) -> None:
    # Given SNS is down for every delivery (the topic is gone) and a batch mixing routable and bad records
    aws_clients.client("sns").delete_topic(TopicArn=stack.topic_arn)
    metrics = RecordingMetrics()
    router = RouterDependencies(
        router_settings(
            sns_topic_arn=stack.topic_arn, audit_queue_url=stack.audit_queue_url, challenge_table_name=stack.table
        ),
        metrics=metrics,
        sleep=lambda _: None,
    ).router
    event = event_of(
        submission_record(stack.challenge_a, partition=0),
        KafkaRecord(review_envelope(), partition=0),
        raw_record([1], partition=0),
        submission_record(stack.challenge_a, partition=1, member_id=int("9" * 40)),
        raw_record(b"{not json", partition=1),
        submission_record(stack.challenge_b, partition=1, url="https://169.254.169.254/latest/meta-data/"),
    )
    # When Kafka delivers the same batch 11 times (the first delivery and 10 retries)
    responses = [router.handle(json.loads(json.dumps(event))) for _ in range(11)]
    # Then each delivery fails only the routable record, and the five others are audited and counted once
    assert all(failure_ids(r) == [(f"{TOPIC}-0", 100)] for r in responses)
    assert sorted(a.reason for a in audits(stack)) == [
        "member_id_out_of_range",
        "resource_not_submission",
        "url_host_ip_literal",
        "value_not_json",
        "value_not_object",
    ]
    counted = metrics.total(Metric.RECORDS_SKIPPED) + metrics.total(Metric.RECORDS_REJECTED)
    assert counted == 5
    marks = aws_clients.client("dynamodb").scan(TableName=AUDIT_MARKS_TABLE)["Items"]
    assert len(marks) == 5
    assert all(int(m["expiresAt"]["N"]) > 0 for m in marks)
