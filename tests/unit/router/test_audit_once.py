"""One audit record, and one metric count, per Kafka record however often Kafka re-delivers it (decision 075).

Kafka re-delivers records the router already audited: from the lowest failed offset of each partition
after a partial failure, the whole batch after a crash or a timeout. The router looks the records up in
the audit marks before sending and marks what SQS accepted, so a re-delivery neither re-sends nor
re-counts an audit.
"""

from __future__ import annotations

import copy
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from mm_contracts.metric_names import Metric
from router_lambda.audit_marks import mark_key
from router_lambda.records import MskEvent
from tests.builders import KafkaRecord, new_uuid, review_envelope
from tests.unit.router.support import (
    FakeDynamoDB,
    FakeSns,
    FakeSqs,
    Harness,
    LogCapture,
    challenge_item,
    event_of,
    failure_ids,
    harness,
    raw_record,
    submission_record,
)

TOPIC = "submission.notification.create"
SNS_OUTAGE = EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")
DELIVERIES = 11  # the first one and MaximumRetryAttempts=10 retries


def mixed_batch(cid: str) -> dict[str, Any]:
    """Valid submissions interleaved with 5 records that are skipped or rejected (2 partitions)."""
    return event_of(
        submission_record(cid, partition=0),
        KafkaRecord(review_envelope(), partition=0),  # skipped: resource_not_submission
        raw_record([1], partition=0),  # rejected: value_not_object
        submission_record(cid, partition=0),
        raw_record(b"\xff\xfe", partition=0),  # rejected: value_not_utf8
        submission_record(cid, partition=1),
        raw_record("not json", partition=1),  # rejected: value_not_json
        submission_record(cid, partition=1, member_id=int("9" * 40)),  # rejected: member_id_out_of_range
    )


def not_routed(h: Harness) -> int:
    return h.metrics.total(Metric.RECORDS_SKIPPED) + h.metrics.total(Metric.RECORDS_REJECTED)


def from_lowest_failure(event: dict[str, Any], response: Any) -> dict[str, Any]:
    """What Lambda delivers next: each partition again from its lowest failed offset, the rest committed."""
    lowest: dict[str, int] = {}
    for partition, offset in failure_ids(response):
        lowest[partition] = min(offset, lowest.get(partition, offset))
    again = copy.deepcopy(event)
    again["records"] = {
        group: [r for r in records if r["offset"] >= lowest[group]]
        for group, records in event["records"].items()
        if group in lowest
    }
    return again


def test_a_batch_delivered_eleven_times_in_an_sns_outage_is_audited_once() -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)], sns=FakeSns(error=SNS_OUTAGE))
    event = mixed_batch(cid)

    responses = [h.router.handle(copy.deepcopy(event)) for _ in range(DELIVERIES)]

    # Every delivery fails exactly the routable records back to Kafka, never the audited ones ...
    routable = [(f"{TOPIC}-0", 100), (f"{TOPIC}-0", 103), (f"{TOPIC}-1", 100)]
    assert all(failure_ids(response) == routable for response in responses)
    # ... and the five others are audited and counted once, not eleven times.
    assert sorted(h.sqs.reasons()) == sorted(
        ["resource_not_submission", "value_not_object", "value_not_utf8", "value_not_json", "member_id_out_of_range"]
    )
    assert not_routed(h) == 5
    assert h.metrics.reasons(Metric.RECORDS_REJECTED)["member_id_out_of_range"] == 1
    assert len(h.sqs.calls) == 1


def test_redelivery_from_the_lowest_failed_offset_audits_nothing_twice_and_routes_once_sns_is_back() -> None:
    cid = new_uuid()
    sns = FakeSns(error=SNS_OUTAGE)
    h = harness(challenges=[challenge_item(cid)], sns=sns)
    event = mixed_batch(cid)

    response = h.router.handle(event)
    for _ in range(3):
        event = from_lowest_failure(event, response)
        response = h.router.handle(event)
    sns.error = None  # the outage ends
    event = from_lowest_failure(event, response)
    response = h.router.handle(event)

    assert response == {"batchItemFailures": []}
    assert len(h.sqs.messages) == 5
    assert not_routed(h) == 5
    assert len(sns.published) == 3


def test_a_record_whose_audit_failed_is_audited_on_redelivery_and_the_others_are_not_repeated() -> None:
    sqs = FakeSqs(fail_ids={"a1"})
    h = harness(sqs=sqs)
    event = event_of(KafkaRecord(review_envelope()), raw_record([1]), raw_record([2]))

    first = h.router.handle(copy.deepcopy(event))
    sqs.fail_ids = set()
    second = h.router.handle(copy.deepcopy(event))  # the whole batch again

    assert failure_ids(first) == [(f"{TOPIC}-0", 101)]
    assert second == {"batchItemFailures": []}
    assert [m["source"]["offset"] for m in sqs.messages] == [100, 102, 101]
    assert not_routed(h) == 3


def test_unreadable_marks_fail_the_records_back_to_kafka_instead_of_risking_a_second_audit() -> None:
    ddb = FakeDynamoDB(marks_error=ClientError({"Error": {"Code": "InternalServerError"}}, "BatchGetItem"))
    h = harness(ddb=ddb)
    event = event_of(KafkaRecord(review_envelope()), raw_record([1], partition=1))

    response = h.router.handle(copy.deepcopy(event))

    assert failure_ids(response) == [(f"{TOPIC}-0", 100), (f"{TOPIC}-1", 100)]
    assert h.sqs.calls == []
    assert not_routed(h) == 0
    ddb.marks_error = None  # DynamoDB is back: the re-delivery audits them, once
    assert h.router.handle(copy.deepcopy(event)) == {"batchItemFailures": []}
    assert h.router.handle(copy.deepcopy(event)) == {"batchItemFailures": []}
    assert sorted(h.sqs.reasons()) == ["resource_not_submission", "value_not_object"]
    assert not_routed(h) == 2


def test_a_mark_that_cannot_be_written_does_not_fail_a_delivered_audit(router_logs: LogCapture) -> None:
    ddb = FakeDynamoDB(marks_write_error=ClientError({"Error": {"Code": "InternalServerError"}}, "BatchWriteItem"))
    h = harness(ddb=ddb)

    response = h.router.handle(event_of(KafkaRecord(review_envelope())))

    assert response == {"batchItemFailures": []}  # the audit is durable; a retry would only repeat it
    assert h.sqs.reasons() == ["resource_not_submission"]
    assert any("audit marks not written" in line.get("message", "") for line in router_logs.lines())


def test_marks_carry_the_record_timestamp_and_expire() -> None:
    h = harness()
    event = event_of(KafkaRecord(review_envelope(), timestamp=1_790_000_000_123))

    h.router.handle(event)

    [record] = MskEvent.model_validate(event).flattened()
    assert mark_key(record) == f"{TOPIC}-0-100@1790000000123"
    mark = h.ddb.marks[mark_key(record)]
    assert int(mark["expiresAt"]["N"]) == int(h.clock.now) + 14 * 86_400


def test_the_same_offset_with_another_timestamp_is_another_record() -> None:
    # A topic deleted and created again reuses offsets: its records are new and are audited.
    h = harness()
    h.router.handle(event_of(KafkaRecord(review_envelope(), timestamp=1_790_000_000_000)))
    h.router.handle(event_of(KafkaRecord(review_envelope(), timestamp=1_790_000_999_000)))
    assert len(h.sqs.messages) == 2


def test_a_batch_with_nothing_to_audit_reads_no_marks() -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid)])
    h.router.handle(event_of(submission_record(cid)))
    assert h.ddb.marks_calls == 0
