"""The router's batch logic with fake ports: routing, audit, duplicates, failures, metrics, logs."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from mm_contracts.metric_names import Metric
from mm_contracts.models.audit import AuditRecord
from mm_contracts.models.routed import RoutedSubmission
from router_lambda import routing as routing_module
from router_lambda.audit import MAX_AUDIT_RAW_BASE64
from router_lambda.reasons import Reason
from tests.builders import KafkaRecord, bus_envelope, flat_submission, new_uuid, review_envelope, submission_payload
from tests.unit.router.support import (
    FakeDynamoDB,
    FakeSns,
    FakeSqs,
    LogCapture,
    challenge_item,
    event_of,
    failure_ids,
    harness,
    raw_record,
    router_settings,
    submission_record,
)

TOPIC = "submission.notification.create"
AUDITED_LINES = ("records skipped", "records rejected")


def test_routes_every_partition_and_keeps_coordinates() -> None:
    # Given submissions for one active challenge spread over three partitions
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    records = [submission_record(cid, partition=p) for p in (0, 1, 2) for _ in range(4)]
    # When the batch is routed
    response = h.router.handle(event_of(*records))
    # Then all 12 are published in ceil(12/10) calls, nothing fails, nothing is audited
    assert response == {"batchItemFailures": []}
    assert len(h.sns.calls) == 2
    bodies = [RoutedSubmission.model_validate(b) for b in h.sns.bodies()]
    assert {(b.source.partition, b.source.offset) for b in bodies} == {
        (p, o) for p in (0, 1, 2) for o in range(100, 104)
    }
    assert all(b.correlation_id == f"{TOPIC}-{b.source.partition}-{b.source.offset}" for b in bodies)
    assert all(b.challenge_id == cid for b in bodies)
    assert h.sqs.calls == []
    assert h.metrics.total(Metric.RECORDS_RECEIVED) == 12
    assert h.metrics.total(Metric.RECORDS_ROUTED) == 12


def test_flat_form_is_routed() -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    flat = flat_submission(challenge_id=cid)
    h.router.handle(event_of(raw_record(flat)))
    (body,) = h.sns.bodies()
    assert body["submissionId"] == flat["id"]
    assert body["challengeId"] == cid


def test_review_is_skipped_audited_and_counted_with_its_reason() -> None:
    h = harness()
    response = h.router.handle(event_of(KafkaRecord(review_envelope())))
    assert response == {"batchItemFailures": []}
    assert h.sns.calls == []
    assert h.ddb.calls == []
    (audit,) = [AuditRecord.model_validate(m) for m in h.sqs.messages]
    assert (audit.disposition.value, audit.reason) == ("skipped", "resource_not_submission")
    assert h.metrics.reasons(Metric.RECORDS_SKIPPED) == {"resource_not_submission": 1}


def test_audit_record_carries_coordinates_ids_and_the_raw_value() -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid, active=False)])
    record = submission_record(cid, partition=3)
    h.router.handle(event_of(record))
    (audit,) = [AuditRecord.model_validate(m) for m in h.sqs.messages]
    assert audit.reason == Reason.CHALLENGE_INACTIVE
    assert audit.disposition.value == "rejected"
    assert (audit.source.topic, audit.source.partition, audit.source.offset) == (TOPIC, 3, 100)
    assert audit.correlation_id == f"{TOPIC}-3-100"
    assert audit.challenge_id == cid
    assert audit.submission_id
    assert audit.raw_value_base64 is not None
    assert base64.b64decode(audit.raw_value_base64) == record.value_bytes()
    assert not audit.truncated


def test_oversize_raw_value_is_truncated_in_the_audit_to_fit_sqs() -> None:
    h = harness(settings=router_settings(max_record_bytes=1_048_576))
    huge = b"x" * 200_000  # not JSON, and far larger than the audit keeps
    h.router.handle(event_of(raw_record(huge)))
    (message,) = h.sqs.messages
    assert message["truncated"] is True
    assert len(message["rawValueBase64"]) == MAX_AUDIT_RAW_BASE64
    assert len(json.dumps(message).encode()) < 256 * 1024


def test_each_reason_is_its_own_metric_dimension_value() -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    h.router.handle(
        event_of(
            KafkaRecord(review_envelope()),
            KafkaRecord(review_envelope()),
            raw_record(b"\xff\xfe"),
            raw_record([1]),
            submission_record(new_uuid()),  # unknown challenge
        )
    )
    assert {key: n for key, n in h.metrics.counts.items() if key[1] is not None} == {
        (Metric.RECORDS_SKIPPED, "resource_not_submission"): 2,
        (Metric.RECORDS_REJECTED, "value_not_utf8"): 1,
        (Metric.RECORDS_REJECTED, "value_not_object"): 1,
        (Metric.RECORDS_REJECTED, "challenge_unknown"): 1,
    }


def test_duplicate_submission_in_batch_routes_the_first_and_skips_the_rest() -> None:
    cid, sid = new_uuid(), new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    h.router.handle(
        event_of(
            submission_record(cid, submission_id=sid),
            submission_record(cid, submission_id=sid, partition=1),
            submission_record(cid),
        )
    )
    assert [b["submissionId"] for b in h.sns.bodies()].count(sid) == 1
    assert len(h.sns.published) == 2
    (audit,) = h.sqs.messages
    assert (audit["reason"], audit["submissionId"], audit["source"]["partition"]) == ("duplicate_in_batch", sid, 1)
    assert f"{TOPIC}-0-100" in audit["detail"]


def test_duplicate_of_a_record_that_failed_to_publish_fails_too() -> None:
    cid, sid = new_uuid(), new_uuid()
    error = ClientError({"Error": {"Code": "InternalError"}}, "PublishBatch")
    h = harness(challenges=[challenge_item(cid)], sns=FakeSns(error=error))
    response = h.router.handle(
        event_of(submission_record(cid, submission_id=sid), submission_record(cid, submission_id=sid, partition=1))
    )
    assert failure_ids(response) == [(f"{TOPIC}-0", 100), (f"{TOPIC}-1", 100)]
    assert h.sqs.messages == []


def test_persistent_sns_failure_names_exactly_the_unpublished_records() -> None:
    # Given SNS keeps failing two specific entries, and the batch also holds a review and a bad record
    cid = new_uuid()
    doomed = {new_uuid(), new_uuid()}

    def rule(call: int, entry: dict[str, Any]) -> dict[str, Any] | None:
        if json.loads(entry["Message"])["submissionId"] in doomed:
            return {"Code": "InternalError", "SenderFault": False}
        return None

    h = harness(challenges=[challenge_item(cid)], sns=FakeSns(rule=rule))
    a, b = sorted(doomed)
    records = [
        submission_record(cid, partition=0),  # 0-100 routed
        submission_record(cid, partition=0, submission_id=a),  # 0-101 fails
        KafkaRecord(review_envelope(), partition=0),  # 0-102 skipped
        submission_record(cid, partition=1, submission_id=b),  # 1-100 fails
        submission_record(cid, partition=1),  # 1-101 routed
    ]
    # When routed
    response = h.router.handle(event_of(*records))
    # Then the response names exactly the two failed records; the rest are routed or audited
    assert failure_ids(response) == [(f"{TOPIC}-0", 101), (f"{TOPIC}-1", 100)]
    assert len(h.sns.published) == 2
    assert h.sqs.reasons() == ["resource_not_submission"]
    assert not {m.get("submissionId") for m in h.sqs.messages} & doomed  # no audit claims anything about them
    assert h.metrics.total(Metric.RECORDS_ROUTED) == 2
    assert h.metrics.total(Metric.PUBLISH_FAILURES) == 2
    assert h.metrics.total(Metric.PUBLISH_RETRIES) == 2 * 3  # default PUBLISH_MAX_ATTEMPTS=4: 3 re-sends each


def test_sns_outage_fails_every_routable_record_but_still_audits_the_rest() -> None:
    cid = new_uuid()
    outage = EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")
    h = harness(challenges=[challenge_item(cid)], sns=FakeSns(error=outage))
    records = [submission_record(cid, partition=0) for _ in range(12)] + [KafkaRecord(review_envelope(), partition=1)]
    response = h.router.handle(event_of(*records))
    assert failure_ids(response) == [(f"{TOPIC}-0", o) for o in range(100, 112)]
    assert len(h.sns.calls) == 1
    assert h.sqs.reasons() == ["resource_not_submission"]


def test_sender_fault_entry_is_rejected_and_audited_not_retried() -> None:
    cid = new_uuid()
    sns = FakeSns(rule=lambda call, e: {"Code": "InvalidParameter", "Message": "too big", "SenderFault": True})
    h = harness(challenges=[challenge_item(cid)], sns=sns)
    response = h.router.handle(event_of(submission_record(cid)))
    assert response == {"batchItemFailures": []}
    assert len(sns.calls) == 1
    assert h.sqs.reasons() == ["publish_rejected"]


def test_dynamodb_outage_fails_the_records_that_needed_it() -> None:
    error = ClientError({"Error": {"Code": "InternalServerError"}}, "BatchGetItem")
    h = harness(ddb=FakeDynamoDB(error=error))
    response = h.router.handle(
        event_of(submission_record(new_uuid()), KafkaRecord(review_envelope()), raw_record([1], partition=1))
    )
    assert failure_ids(response) == [(f"{TOPIC}-0", 100)]
    assert sorted(h.sqs.reasons()) == ["resource_not_submission", "value_not_object"]
    assert h.sns.calls == []


def test_audit_failure_fails_exactly_the_unaudited_records() -> None:
    h = harness(sqs=FakeSqs(fail_ids={"a1"}))
    response = h.router.handle(event_of(KafkaRecord(review_envelope()), raw_record([1]), raw_record([2])))
    assert failure_ids(response) == [(f"{TOPIC}-0", 101)]
    assert len(h.sqs.calls) == 4  # first send + 3 retries of the failing entry
    assert h.metrics.total(Metric.RECORDS_REJECTED) == 1  # only delivered audits are counted


def test_audit_queue_outage_fails_every_skipped_and_rejected_record() -> None:
    cid = new_uuid()
    outage = ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "SendMessageBatch")
    h = harness(challenges=[challenge_item(cid)], sqs=FakeSqs(error=outage))
    response = h.router.handle(event_of(submission_record(cid), KafkaRecord(review_envelope()), raw_record([1])))
    assert failure_ids(response) == [(f"{TOPIC}-0", 101), (f"{TOPIC}-0", 102)]
    assert len(h.sns.published) == 1


def test_a_crash_on_one_record_fails_only_that_record(monkeypatch: pytest.MonkeyPatch) -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    real = routing_module.classify_record

    def flaky(record: Any, settings: Any) -> Any:
        if record.offset == 101:
            raise RuntimeError("bug")
        return real(record, settings)

    monkeypatch.setattr(routing_module, "classify_record", flaky)
    response = h.router.handle(event_of(submission_record(cid), submission_record(cid), submission_record(cid)))
    assert failure_ids(response) == [(f"{TOPIC}-0", 101)]
    assert len(h.sns.published) == 2


def test_empty_event_routes_nothing() -> None:
    h = harness()
    assert h.router.handle({"eventSource": "aws:kafka", "records": {}}) == {"batchItemFailures": []}
    assert h.metrics.total(Metric.RECORDS_RECEIVED) == 0


def test_log_lines_carry_the_correlation_id_and_never_the_raw_value(router_logs: LogCapture) -> None:
    # Given records whose raw values carry a recognizable marker
    cid = new_uuid()
    marker = "raw-value-marker-7f3a"  # lower case: a host name is logged lower-cased
    h = harness(challenges=[challenge_item(cid)])
    records = [
        KafkaRecord(bus_envelope(submission_payload(challenge_id=cid, url=f"https://evil.example.net/{marker}"))),
        KafkaRecord(bus_envelope(submission_payload(challenge_id=cid, memberId=marker))),
        raw_record(f"not json {marker}".encode()),
        raw_record(b"\xff" + marker.encode()),
        KafkaRecord(review_envelope() | {"note": marker}),
        KafkaRecord(bus_envelope(submission_payload(challenge_id=cid, type=marker))),  # routed
    ]
    event = event_of(*records)
    # When routed
    h.router.handle(event)
    # Then each skipped or rejected record is named in its disposition's line, the routed one in the batch's
    # "records routed" line (decision 113), and no line holds the value (plain or base64)
    lines = router_logs.lines()
    audited = [entry for line in lines if line["message"] in AUDITED_LINES for entry in line["records"]]
    assert {entry["correlation_id"] for entry in audited} == {f"{TOPIC}-0-{o}" for o in range(100, 105)}
    (routed_line,) = [line for line in lines if line["message"] == "records routed"]
    assert [entry["correlation_id"] for entry in routed_line["routed"]] == [f"{TOPIC}-0-105"]
    assert marker not in router_logs.text
    for group in event["records"].values():
        for item in group:
            assert item["value"] not in router_logs.text


def test_a_value_with_a_lone_surrogate_is_audited_not_a_crash() -> None:
    # Found by the fuzz run: `"\ud800"` in the event's JSON decodes to a str no UTF-8 encoder accepts.
    h = harness()
    event = event_of(raw_record([1]))
    event["records"][f"{TOPIC}-0"][0]["value"] = "abc\ud800"
    response = h.router.handle(event)
    assert response == {"batchItemFailures": []}
    [audit] = h.sqs.messages
    assert audit["reason"] == "value_not_base64"
    assert audit["rawValueBase64"] == "abc\\ud800"


def test_the_crash_line_and_the_failure_line_name_the_record(
    monkeypatch: pytest.MonkeyPatch, router_logs: LogCapture
) -> None:
    # Given a classification bug on one record (its lines carry the id without per-record logger keys, decision 113)
    def crash(record: Any, settings: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(routing_module, "classify_record", crash)
    h = harness()
    h.router.handle(event_of(raw_record(b"{}")))
    # Then both its lines name it, and no later line inherits its id
    lines = router_logs.lines()
    crashed = [line for line in lines if line["message"] == "record classification crashed"]
    failed = [line for line in lines if line["message"] == "record failed; Kafka will re-deliver it"]
    assert [line["correlation_id"] for line in crashed + failed] == [f"{TOPIC}-0-100"] * 2
    assert all("correlation_id" not in line for line in lines if line not in crashed + failed)


def test_routed_records_are_named_a_hundred_a_line(router_logs: LogCapture) -> None:
    # Given 250 routable records and one rejected
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    records = [submission_record(cid, partition=p % 2) for p in range(250)]
    h.router.handle(event_of(*records, raw_record(b"not json")))
    # Then three "records routed" lines name the 250 (submission and challenge ids, the record's coordinates),
    lines = router_logs.lines()
    routed_lines = [line for line in lines if line["message"] == "records routed"]
    assert [line["count"] for line in routed_lines] == [100, 100, 50]
    entries = [entry for line in routed_lines for entry in line["routed"]]
    published = {body["correlationId"]: body for body in h.sns.bodies()}
    assert {entry["correlation_id"] for entry in entries} == set(published)
    assert all(entry["submission_id"] == published[entry["correlation_id"]]["submissionId"] for entry in entries)
    assert all(
        (entry["challenge_id"], entry["platform"], entry["skip_reason"]) == (cid, "v5", None) for entry in entries
    )
    # and the rejected record is named in the "records rejected" line
    (rejected_line,) = [line for line in lines if line["message"] == "records rejected"]
    assert [entry["correlation_id"] for entry in rejected_line["records"]] == [f"{TOPIC}-0-225"]


def test_skipped_and_rejected_records_are_named_with_their_reasons_twenty_five_a_line(
    router_logs: LogCapture,
) -> None:
    # Given 30 records that are not JSON (rejected) and 3 review events (skipped)
    h = harness()
    records = [raw_record(b"not json") for _ in range(30)] + [KafkaRecord(review_envelope()) for _ in range(3)]
    h.router.handle(event_of(*records))
    lines = router_logs.lines()
    # Then the rejected are named 25 a line at WARNING, the skipped at INFO (decision 113), each with its reason,
    rejected = [line for line in lines if line["message"] == "records rejected"]
    (skipped,) = [line for line in lines if line["message"] == "records skipped"]
    assert [(line["level"], line["count"], line["reasons"]) for line in rejected] == [
        ("WARNING", 25, {"value_not_json": 25}),
        ("WARNING", 5, {"value_not_json": 5}),
    ]
    assert (skipped["level"], skipped["count"], skipped["reasons"]) == ("INFO", 3, {"resource_not_submission": 3})
    entries = {entry["correlation_id"]: entry for line in [*rejected, skipped] for entry in line["records"]}
    audits = {audit["correlationId"]: audit for audit in h.sqs.messages}
    assert set(entries) == set(audits) == {f"{TOPIC}-0-{offset}" for offset in range(100, 133)}
    # the same reason and detail as its audit message, and whether that message was sent
    for correlation_id, entry in entries.items():
        audit = audits[correlation_id]
        assert (entry["reason"], entry["detail"], entry["audited"]) == (audit["reason"], audit["detail"], True)
    # and no line per record
    assert all("correlation_id" not in line for line in lines)


def test_a_ten_thousand_record_batch_is_routed_and_audited_record_by_record() -> None:
    # Given Lambda's largest MSK batch: 10,000 records over 4 partitions, a tenth of them not submissions
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    records = [
        KafkaRecord(review_envelope(), partition=i % 4) if i % 10 == 0 else submission_record(cid, partition=i % 4)
        for i in range(10_000)
    ]
    # When it is routed
    response = h.router.handle(event_of(*records))
    # Then every record ends in exactly one state: 9,000 published in 900 PublishBatch calls, 1,000 audited once
    assert response == {"batchItemFailures": []}
    assert len(h.sns.published) == 9_000
    assert len(h.sns.calls) == 900
    assert len({json.loads(entry["Message"])["correlationId"] for entry in h.sns.published}) == 9_000
    assert h.sqs.reasons() == ["resource_not_submission"] * 1_000
    assert len({message["correlationId"] for message in h.sqs.messages}) == 1_000
    assert h.metrics.total(Metric.RECORDS_ROUTED) == 9_000
    assert h.metrics.reasons(Metric.RECORDS_SKIPPED) == {"resource_not_submission": 1_000}
