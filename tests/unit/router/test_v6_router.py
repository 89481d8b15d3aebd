"""v6 records through the router's batch logic (fake ports): routed, platform-checked, inactive, unknown."""

from __future__ import annotations

from mm_contracts.metric_names import Metric
from mm_contracts.models.audit import AuditRecord
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.models.routed import RoutedSubmission
from router_lambda.reasons import Reason
from tests.builders import new_uuid
from tests.unit.router.support import (
    ALLOWED_HOST,
    Harness,
    LogCapture,
    challenge_item,
    event_of,
    harness,
    new_nanoid,
    router_settings,
    submission_record,
    v6_envelope,
    v6_payload,
    v6_record,
)

BOTH = router_settings(platforms="v5,v6")


def audits(h: Harness) -> list[AuditRecord]:
    return [AuditRecord.model_validate(m) for m in h.sqs.messages]


def test_a_v6_record_is_routed_with_the_platform_fields() -> None:
    # Given an active v6 challenge and the envelope review-api-v6 publishes for it
    cid, sid = new_uuid(), new_nanoid()
    h = harness(challenges=[challenge_item(cid, platform=Platform.V6)], settings=BOTH)
    payload = v6_payload(submission_id=sid, challenge_id=cid, submittedDate="2026-07-03T10:00:00Z")
    # When the batch is routed
    response = h.router.handle(event_of(v6_record(v6_envelope(payload))))
    # Then one v6 RoutedSubmission is published: every phase it triggers is the challenge processor's business
    assert response == {"batchItemFailures": []}
    (body,) = h.sns.bodies()
    routed = RoutedSubmission.model_validate(body)
    assert routed.platform is Platform.V6
    assert (routed.submission_id, routed.challenge_id, routed.member_id) == (sid, cid, 88_770_025)
    assert (routed.member_handle, routed.url) == ("tourist", f"https://{ALLOWED_HOST}/mm/solution.zip")
    assert routed.submitted_date is not None
    assert routed.submitted_date.year == 2026
    assert (routed.phase, routed.skip_reason) == (None, None)
    assert routed.correlation_id == f"{V6_SUBMISSION_TOPIC}-0-100"
    assert h.sqs.messages == []
    assert h.metrics.total(Metric.RECORDS_ROUTED) == 1


def test_v5_and_v6_records_route_side_by_side_in_one_batch() -> None:
    v5_challenge, v6_challenge = new_uuid(), new_uuid()
    h = harness(
        challenges=[challenge_item(v5_challenge), challenge_item(v6_challenge, platform=Platform.V6)], settings=BOTH
    )
    h.router.handle(event_of(submission_record(v5_challenge), v6_record(v6_payload(challenge_id=v6_challenge))))
    routed = sorted((RoutedSubmission.model_validate(b) for b in h.sns.bodies()), key=lambda r: r.platform)
    assert [(r.platform, r.challenge_id) for r in routed] == [(Platform.V5, v5_challenge), (Platform.V6, v6_challenge)]


def test_a_record_of_the_other_platform_is_skipped_as_a_platform_mismatch() -> None:
    # Given a v5 challenge and a v6 challenge, and for each a record of the other platform
    v5_challenge, v6_challenge = new_uuid(), new_uuid()
    h = harness(
        challenges=[challenge_item(v5_challenge), challenge_item(v6_challenge, platform=Platform.V6)], settings=BOTH
    )
    response = h.router.handle(
        event_of(v6_record(v6_payload(challenge_id=v5_challenge)), submission_record(v6_challenge))
    )
    # Then neither is published; both are audited as skipped and counted under their reason
    assert response == {"batchItemFailures": []}
    assert h.sns.calls == []
    assert sorted((a.disposition.value, a.reason, a.challenge_id) for a in audits(h)) == sorted(
        [("skipped", "platform_mismatch", v5_challenge), ("skipped", "platform_mismatch", v6_challenge)]
    )
    assert h.metrics.reasons(Metric.RECORDS_SKIPPED)[Reason.PLATFORM_MISMATCH] == 2
    assert h.metrics.total(Metric.RECORDS_REJECTED) == 0


def test_an_inactive_v6_challenge_is_published_with_a_skip_reason() -> None:
    # Given an inactive v6 challenge of ours
    cid, sid = new_uuid(), new_nanoid()
    h = harness(challenges=[challenge_item(cid, active=False, platform=Platform.V6)], settings=BOTH)
    # When its submission arrives
    response = h.router.handle(event_of(v6_record(v6_payload(submission_id=sid, challenge_id=cid))))
    # Then it is routed anyway, marked to be recorded FAILED (the member sees a terminal summation), not audited
    assert response == {"batchItemFailures": []}
    (body,) = h.sns.bodies()
    routed = RoutedSubmission.model_validate(body)
    assert (routed.submission_id, routed.skip_reason) == (sid, "challenge_inactive")
    assert h.sqs.messages == []


def test_an_inactive_v5_challenge_is_still_rejected() -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid, active=False)], settings=BOTH)
    h.router.handle(event_of(submission_record(cid)))
    assert h.sns.calls == []
    assert [(a.disposition.value, a.reason) for a in audits(h)] == [("rejected", "challenge_inactive")]


def test_a_v6_record_for_a_challenge_not_ours_is_skipped_without_a_report() -> None:
    # The v6 topic carries every Marathon Match on the platform: most are not in our table.
    h = harness(settings=BOTH)
    h.router.handle(event_of(v6_record(v6_payload())))
    assert h.sns.calls == []
    assert [(a.disposition.value, a.reason) for a in audits(h)] == [("skipped", "challenge_not_served")]
    assert h.metrics.total(Metric.RECORDS_REJECTED) == 0


def test_an_unknown_v5_challenge_is_still_rejected() -> None:
    h = harness(settings=BOTH)
    h.router.handle(event_of(submission_record(new_uuid())))
    assert [(a.disposition.value, a.reason) for a in audits(h)] == [("rejected", "challenge_unknown")]


def test_a_v6_duplicate_in_the_batch_is_routed_once() -> None:
    cid, sid = new_uuid(), new_nanoid()
    h = harness(challenges=[challenge_item(cid, platform=Platform.V6)], settings=BOTH)
    payload = v6_payload(submission_id=sid, challenge_id=cid)
    h.router.handle(event_of(v6_record(v6_envelope(payload)), v6_record(payload)))
    assert [b["submissionId"] for b in h.sns.bodies()] == [sid]
    assert [a.reason for a in audits(h)] == ["duplicate_in_batch"]


def test_a_rejected_v6_record_is_audited_with_its_ids(router_logs: LogCapture) -> None:
    sid, cid = new_nanoid(), new_uuid()
    h = harness(settings=BOTH)
    h.router.handle(event_of(v6_record(v6_payload(submission_id=sid, challenge_id=cid, memberId="x"))))
    (audit,) = audits(h)
    assert (audit.reason, audit.submission_id, audit.challenge_id) == ("member_id_not_positive_integer", sid, cid)
    assert audit.platform is Platform.V6  # the audit record says which platform's contract the record broke
    assert h.metrics.reasons(Metric.RECORDS_REJECTED)["member_id_not_positive_integer"] == 1
    (line,) = [line for line in router_logs.lines() if line.get("message") == "records rejected"]
    (entry,) = line["records"]
    assert (entry["reason"], entry["platform"]) == ("member_id_not_positive_integer", "v6")


def test_log_lines_carry_the_platform(router_logs: LogCapture) -> None:
    cid = new_uuid()
    h = harness(challenges=[challenge_item(cid, active=False, platform=Platform.V6)], settings=BOTH)
    h.router.handle(event_of(v6_record(v6_payload(challenge_id=cid))))
    (line,) = [line for line in router_logs.lines() if line.get("message") == "records routed"]
    (entry,) = line["routed"]
    assert (entry["platform"], entry["skip_reason"]) == ("v6", "challenge_inactive")
    assert line["to_be_recorded_as_skipped"] == 1


def test_v6_records_are_skipped_in_the_default_v5_profile() -> None:
    h = harness()
    h.router.handle(event_of(v6_record(v6_envelope(v6_payload()))))
    assert h.ddb.calls == []
    assert [(a.disposition.value, a.reason) for a in audits(h)] == [("skipped", "kafka_topic_not_accepted")]
