"""cdk-nag acknowledgements: every one names the finding (rule[finding] where the rule has several) and why."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, *, applies_to: tuple[str, ...] = ()) -> None:
    """Acknowledge `rule` on `construct` (and its children); with `applies_to`, only those findings of it."""
    if len(reason) < 20:
        raise ValueError(f"{rule}: give a real reason, not {reason!r}")
    ids = [f"{rule}[{finding}]" for finding in applies_to] or [rule]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))
