"""The router's fuzz checker: `SubmissionRouter.route` (as the handler calls it) over the unit fakes of SNS, SQS
and DynamoDB.

Properties: the batch never raises on bad input; each record ends in exactly one state (published / audited as
skipped or rejected); every published body is a valid RoutedSubmission whose URL passes the URL policy; a pristine
v6 submission of a served challenge is published.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from mm_contracts.models.phase import Platform
from tests.fuzz.findings import Finding, Property, escaped, quiet
from tests.fuzz.oracles import pristine_v6_record, routed_refused_because, v6_published_refused_because
from tests.fuzz.strategies import (
    ALLOWED_URL_HOSTS,
    INACTIVE_CHALLENGE,
    KNOWN_CHALLENGE,
    KNOWN_LEGACY_ID,
    V6_CHALLENGE,
    V6_INACTIVE_CHALLENGE,
)


def _correlation_id(item: dict[str, Any]) -> str:
    return f"{item['topic']}-{item['partition']}-{item['offset']}"


class RouterChecker:
    name = "router"

    def __init__(self) -> None:
        from mm_contracts.settings import RouterSettings
        from tests.unit.router.support import alias_item, challenge_item, router_settings

        extra = {"audit_marks_table_name": "mm-fuzz-audit-marks"}  # once-per-record audit (defect 9), when present
        self._settings = router_settings(
            allowed_url_hosts=ALLOWED_URL_HOSTS,
            max_record_bytes=65_536,
            platforms=(Platform.V5, Platform.V6),  # an environment in migration: both topics read
            **{name: value for name, value in extra.items() if name in RouterSettings.model_fields},
        )
        self._challenges = [
            challenge_item(KNOWN_CHALLENGE, legacy_id=KNOWN_LEGACY_ID),
            alias_item(KNOWN_LEGACY_ID, KNOWN_CHALLENGE),
            challenge_item(INACTIVE_CHALLENGE, active=False),
            challenge_item(V6_CHALLENGE, platform=Platform.V6),
            challenge_item(V6_INACTIVE_CHALLENGE, active=False, platform=Platform.V6),
        ]

    def units(self, event: dict[str, Any]) -> int:
        return sum(len(group) for group in event["records"].values())

    def check(self, event: dict[str, Any]) -> list[Finding]:
        from tests.unit.router.support import harness

        world = harness(challenges=self._challenges, settings=self._settings)
        findings: list[Finding] = []
        failed = self._route(world, event, findings)
        items = {_correlation_id(item): item for group in event["records"].values() for item in group}
        published = self._published(world, items, findings)
        audited = Counter(str(message.get("correlationId")) for message in world.sqs.messages)
        duplicates = {
            str(message.get("correlationId"))
            for message in world.sqs.messages
            if message.get("reason") == "duplicate_in_batch"
        }
        for correlation_id, item in items.items():
            if published[correlation_id] or correlation_id in duplicates or correlation_id in failed:
                continue
            if pristine_v6_record(item) is not None:
                findings.append(
                    Finding(Property.OTHER, "valid v6 submission of a served challenge not published", correlation_id)
                )
        findings.extend(_state_findings(event, published, audited, failed))
        return findings

    @staticmethod
    def _route(world: Any, event: dict[str, Any], findings: list[Finding]) -> dict[str, str]:
        """Route the batch; the records that failed (correlation id -> why), each a finding: no fault is injected."""
        from router_lambda.observability import logger

        failed: dict[str, str] = {}
        try:
            with quiet(logger):
                report = world.router.route(event)
            for index, why in report.failed.items():
                record = report.records[index]
                failed[record.correlation_id] = why
        except Exception as error:  # the whole batch would fail and be re-delivered forever
            findings.append(escaped(error))
        for correlation_id, why in failed.items():
            # No infrastructure fault is injected here: a failed record is a crash caught per record.
            kind = why.removeprefix("internal error ") if why.startswith("internal error") else why
            findings.append(
                Finding(Property.ESCAPED, f"{kind} (caught per record: failed without a fault)", correlation_id)
            )
        return failed

    @staticmethod
    def _published(world: Any, items: dict[str, dict[str, Any]], findings: list[Finding]) -> Counter[str]:
        """How often each record was published; a finding for each published body that must not have been."""
        published: Counter[str] = Counter()
        for entry in world.sns.published:
            try:
                body = json.loads(entry["Message"])
            except ValueError:
                findings.append(Finding(Property.ACTED, "published a body that is not JSON"))
                continue
            correlation_id = str(body.get("correlationId"))
            published[correlation_id] += 1
            if body.get("platform") == Platform.V6.value:
                why_not = v6_published_refused_because(body, items.get(correlation_id))
            else:
                why_not = routed_refused_because(entry["Message"], challenge_id=KNOWN_CHALLENGE)
                if why_not is None and body.get("skipReason") is not None:
                    why_not = "a v5 submission published with a skip reason"
            if why_not is not None:
                findings.append(Finding(Property.ACTED, f"published an invalid submission ({why_not})"))
        return published


def _state_findings(
    event: dict[str, Any], published: Counter[str], audited: Counter[str], failed: dict[str, str]
) -> list[Finding]:
    """A finding for each record not in exactly one state (published, audited or failed)."""
    findings: list[Finding] = []
    for group in event["records"].values():
        for item in group:
            correlation_id = _correlation_id(item)
            states = published[correlation_id] + audited[correlation_id] + (correlation_id in failed)
            if states != 1:
                findings.append(
                    Finding(
                        Property.STATES,
                        f"record in {states} states",
                        f"{correlation_id}: published {published[correlation_id]}, "
                        f"audited {audited[correlation_id]}, failed {correlation_id in failed}",
                    )
                )
    return findings
