"""An input record's ids, read with the router's own decoding: what the engine seeds the stand-in with, and what a
kafka-redelivery rule matches."""

from __future__ import annotations

import json

from infrastructure.config import load_environment
from infrastructure.wiring import ResourceRefs, WiringPlan
from local_pipeline.kafka import KafkaMessage
from local_pipeline.record_ids import record_ids, submission_of
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC
from mm_contracts.settings import RouterSettings
from tests.builders import bus_envelope, submission_payload

CONFIG = load_environment("example")
ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
SUBMISSION = "5b0c1e2a-7d3f-4a60-9b1c-0000000000aa"
ALLOWED_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"


def _settings() -> RouterSettings:
    refs = ResourceRefs(
        sns_topic_arn="arn:aws:sns:us-east-1:123456789012:t",
        challenge_table_name="challenges",
        status_table_name="runs",
        audit_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/audit",
        capacity_table_name="capacity",
    )
    return WiringPlan(CONFIG).router_settings(refs)


def _message(value: object, topic: str = "submission.notification.create") -> KafkaMessage:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return KafkaMessage(0, topic, 0, 1000, 0, raw)


def test_a_routed_submission_gives_its_submission_challenge_and_member() -> None:
    payload = submission_payload(submission_id=SUBMISSION, challenge_id=ROUTE_PLANNER, member_id=40_158_994)
    message = _message(bus_envelope(payload))
    assert submission_of(message, _settings(), CONFIG.challenges) == (SUBMISSION, ROUTE_PLANNER, 40_158_994)
    assert record_ids(message, _settings(), CONFIG.challenges) == (SUBMISSION, ROUTE_PLANNER)


def test_a_legacy_numeric_challenge_id_is_resolved_through_the_configured_challenges() -> None:
    legacy = next(c for c in CONFIG.challenges if c.legacy_id is not None)
    payload = submission_payload(submission_id=SUBMISSION, challenge_id=str(legacy.legacy_id))
    found = submission_of(_message(bus_envelope(payload)), _settings(), CONFIG.challenges)
    assert found is not None
    assert found[1] == legacy.challenge_id


def test_a_record_the_router_rejects_seeds_nothing_but_keeps_the_ids_its_verdict_names() -> None:
    payload = submission_payload(submission_id=SUBMISSION, challenge_id=ROUTE_PLANNER, url="https://evil.example/x.zip")
    message = _message(bus_envelope(payload))
    assert submission_of(message, _settings(), CONFIG.challenges) is None
    assert record_ids(message, _settings(), CONFIG.challenges) == (SUBMISSION, ROUTE_PLANNER)


def test_a_value_that_is_not_json_names_no_ids() -> None:
    message = _message(b"not json at all")
    assert submission_of(message, _settings(), CONFIG.challenges) is None
    assert record_ids(message, _settings(), CONFIG.challenges) == ()


def test_a_v6_record_on_a_topic_this_environment_does_not_read_is_not_routed() -> None:
    payload = {"submissionId": "V6ex0000000001", "challengeId": ROUTE_PLANNER, "memberId": "88770025"}
    assert submission_of(_message(payload, topic=V6_SUBMISSION_TOPIC), _settings(), CONFIG.challenges) is None
