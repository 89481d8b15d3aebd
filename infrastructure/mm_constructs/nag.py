"""cdk-nag acknowledgements: every one names the finding (rule[finding] where the rule has several) and why.

An acknowledgement must match a finding that is actually raised (decision 049). cdk-nag 3 drops acknowledged
findings inside the plugin and records nothing about which acknowledgement matched, so the check builds the
app with acknowledgements recorded instead of applied (`acknowledgements_recorded_not_applied`): the
validation report then lists every raised finding, and `unmatched_acknowledgements` compares the two.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


@dataclass(frozen=True)
class AcknowledgementRecord:
    path: str  # construct path the acknowledgement was made on (it covers the construct's children too)
    rule_id: str  # "AwsSolutions-IAM5[Resource::*]" or a whole rule "Serverless-LambdaDLQ"
    reason: str


@dataclass(frozen=True)
class RaisedFinding:
    rule_id: str
    path: str  # construct path of the resource the finding is on


_recording: list[AcknowledgementRecord] | None = None


def acknowledge(construct: IConstruct, rule: str, reason: str, *, applies_to: tuple[str, ...] = ()) -> None:
    """Acknowledge `rule` on `construct` (and its children); with `applies_to`, only those findings of it."""
    if len(reason) < 20:
        raise ValueError(f"{rule}: give a real reason, not {reason!r}")
    ids = [f"{rule}[{finding}]" for finding in applies_to] or [rule]
    if _recording is not None:
        _recording.extend(AcknowledgementRecord(construct.node.path, rule_id, reason) for rule_id in ids)
        return
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


@contextlib.contextmanager
def acknowledgements_recorded_not_applied() -> Iterator[list[AcknowledgementRecord]]:
    """While active, `acknowledge()` records instead of acknowledging: for checking acknowledgements only."""
    global _recording
    previous, _recording = _recording, []
    try:
        yield _recording
    finally:
        _recording = previous


def raised_findings(validation_report: dict[str, Any]) -> frozenset[RaisedFinding]:
    """Every finding in a `validation-report.json` (violations and, if any, suppressed violations)."""
    found: set[RaisedFinding] = set()
    for plugin in validation_report.get("pluginReports", []):
        for violation in [*plugin.get("violations", []), *(plugin.get("suppressedViolations") or [])]:
            for construct in violation.get("violatingConstructs", []):
                found.add(RaisedFinding(violation["ruleName"], construct.get("constructPath", "")))
    return frozenset(found)


def _covers(acknowledged_at: str, path: str) -> bool:
    return path == acknowledged_at or path.startswith(acknowledged_at + "/")


def unmatched_acknowledgements(
    acknowledgements: Iterable[AcknowledgementRecord], findings: Iterable[RaisedFinding]
) -> list[AcknowledgementRecord]:
    """Acknowledgements no raised finding on their construct (or below it) carries the rule id of."""
    by_rule: dict[str, list[str]] = {}
    for finding in findings:
        by_rule.setdefault(finding.rule_id, []).append(finding.path)
    return [
        ack
        for ack in acknowledgements
        if not any(_covers(ack.path.lstrip("/"), path.lstrip("/")) for path in by_rule.get(ack.rule_id, ()))
    ]
