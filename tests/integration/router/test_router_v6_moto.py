"""v6 records through the router handler against moto: MSK event in, SNS -> per-challenge SQS, audit queue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_contracts.models.audit import AuditRecord
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE
from router_lambda import wiring
from tests.builders import new_uuid
from tests.integration.router.topology import create_audit_marks_table, drain, fan_out, invoke, set_router_env
from tests.unit.router.support import (
    challenge_item,
    event_of,
    new_nanoid,
    router_settings,
    submission_record,
    v6_envelope,
    v6_payload,
    v6_record,
)


@dataclass
class Stack:
    audit_queue_url: str
    v6_active: str
    v6_inactive: str
    v5_active: str
    queues: dict[str, str]  # challenge id -> its queue URL

    def audits(self) -> list[AuditRecord]:
        return [AuditRecord.model_validate_json(m["Body"]) for m in drain(self.audit_queue_url)]

    def routed(self, challenge_id: str) -> list[tuple[RoutedSubmission, dict[str, Any]]]:
        return [
            (RoutedSubmission.model_validate_json(m["Body"]), m["MessageAttributes"])
            for m in drain(self.queues[challenge_id])
        ]


@pytest.fixture
def stack(challenge_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """An environment in migration (PLATFORMS=v5,v6): two v6 challenges (one inactive) and a v5 one."""
    ddb = aws_clients.client("dynamodb")
    v6_active, v6_inactive, v5_active = new_uuid(), new_uuid(), new_uuid()
    topic_arn, audit_url, queues = fan_out((v6_active, v6_inactive, v5_active))
    for item in (
        challenge_item(v6_active, platform=Platform.V6),
        challenge_item(v6_inactive, active=False, platform=Platform.V6),
        challenge_item(v5_active),
    ):
        ddb.put_item(TableName=challenge_table, Item=item)
    create_audit_marks_table()
    settings = router_settings(
        sns_topic_arn=topic_arn, audit_queue_url=audit_url, challenge_table_name=challenge_table, platforms="v5,v6"
    )
    set_router_env(monkeypatch, settings)
    wiring.use_dependencies(None)
    yield Stack(audit_url, v6_active, v6_inactive, v5_active, queues)
    wiring.use_dependencies(None)


def test_a_v6_envelope_and_a_bare_v6_payload_land_in_their_challenge_queue(stack: Stack, lambda_context: Any) -> None:
    # Given the envelope review-api-v6 publishes and the bare payload a hand publisher sends
    enveloped, bare = new_nanoid(), new_nanoid()
    records = [
        v6_record(v6_envelope(v6_payload(submission_id=enveloped, challenge_id=stack.v6_active))),
        v6_record(v6_payload(submission_id=bare, challenge_id=stack.v6_active), partition=1),
    ]
    # When the handler runs
    response = invoke(event_of(*records), lambda_context)
    # Then both are delivered to the challenge's queue as v6 RoutedSubmissions, and nothing is audited
    assert response == {"batchItemFailures": []}
    delivered = stack.routed(stack.v6_active)
    assert sorted(r.submission_id for r, _ in delivered) == sorted([enveloped, bare])
    assert all(r.platform is Platform.V6 and r.member_handle == "tourist" for r, _ in delivered)
    assert all(attributes[CHALLENGE_ID_ATTRIBUTE]["StringValue"] == stack.v6_active for _, attributes in delivered)
    assert {r.correlation_id for r, _ in delivered} == {f"{V6_SUBMISSION_TOPIC}-0-100", f"{V6_SUBMISSION_TOPIC}-1-100"}
    assert stack.audits() == []


def test_an_inactive_v6_challenge_gets_its_submission_with_a_skip_reason(stack: Stack, lambda_context: Any) -> None:
    sid = new_nanoid()
    invoke(event_of(v6_record(v6_payload(submission_id=sid, challenge_id=stack.v6_inactive))), lambda_context)
    ((routed, _),) = stack.routed(stack.v6_inactive)
    assert (routed.submission_id, routed.skip_reason) == (sid, "challenge_inactive")
    assert stack.audits() == []


def test_rejections_skips_and_v5_side_by_side(stack: Stack, lambda_context: Any) -> None:
    # Given, in one batch: a v5 submission, a v6 id of the wrong form, a foreign URL host, a non-UUID challenge,
    # a v6 record for the v5 challenge and a v6 record for a challenge that is not ours
    records = [
        submission_record(stack.v5_active),
        v6_record(v6_payload(submission_id="3G9RNcDiRX4io", challenge_id=stack.v6_active)),
        v6_record(v6_payload(challenge_id=stack.v6_active, submissionUrl="https://evil.example/a.zip")),
        v6_record(v6_payload(challengeId="30054321")),
        v6_record(v6_payload(challenge_id=stack.v5_active)),
        v6_record(v6_payload(challenge_id=new_uuid())),
    ]
    response = invoke(event_of(*records), lambda_context)
    # Then only the v5 submission is routed, and every other record is audited once with its reason
    assert response == {"batchItemFailures": []}
    ((routed, _),) = stack.routed(stack.v5_active)
    assert routed.platform is Platform.V5
    assert stack.routed(stack.v6_active) == []
    assert sorted((a.disposition.value, a.reason) for a in stack.audits()) == [
        ("rejected", "challenge_id_invalid"),
        ("rejected", "submission_id_not_nanoid"),
        ("rejected", "url_host_not_allowed"),
        ("skipped", "challenge_not_served"),
        ("skipped", "platform_mismatch"),
    ]
