"""The permission check: every need of every pipeline function granted, and every grant needed."""

from __future__ import annotations

from dataclasses import dataclass, field

from infrastructure.permissions.needs import NeedsOf
from infrastructure.permissions.templates import Templates, allowed, matches
from infrastructure.wiring import WiringPlan

# Actions CDK's own grants add beyond what the service uses here; the check accepts them, nothing else.
CDK_GRANT_EXTRAS: dict[str, str] = {
    "sqs:GetQueueUrl": "queue.grantSendMessages/grantConsumeMessages (on-failure destinations, SQS event source)",
    "sqs:GetQueueAttributes": "queue.grantSendMessages (on-failure destinations)",
    "sqs:ChangeMessageVisibility": "queue.grantConsumeMessages (SQS event source)",
    "kms:Encrypt": "key.grantEncryptDecrypt behind queue.grantSendMessages (on-failure destination)",
    "kms:ReEncrypt*": "key.grantEncryptDecrypt behind queue.grantSendMessages (on-failure destination)",
    "kafka:DescribeCluster": "ManagedKafkaEventSource's cluster statement (the mapping uses DescribeClusterV2)",
    "kafka:ListScramSecrets": "ManagedKafkaEventSource's cluster statement",
}


@dataclass
class Findings:
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    cdk_extras_seen: set[str] = field(default_factory=set)


def check(templates: Templates, plan: WiringPlan) -> Findings:
    """Every need of every pipeline function granted, and every grant needed (or a known CDK extra)."""
    findings = Findings()
    needs_of = NeedsOf(templates, plan)
    for function in templates.functions():
        if needs_of.function_key(function.name) is None:
            findings.missing.append(f"{function.name}: a function the permission check does not know")
            continue
        role = function.properties["Role"]
        role_id = role["Fn::GetAtt"][0]
        grants = templates.grants(function.stack, role_id)
        needs = needs_of.of(function)
        for need in needs:
            if not allowed(grants, need.action, need.resource):
                findings.missing.append(f"{function.name}: missing {need.action} on {need.resource} ({need.why})")
        for grant in grants:
            if grant.effect != "Allow" or grant.source.startswith("managed "):
                continue
            used = any(
                matches(grant.action, n.action, ignore_case=True) and matches(grant.resource, n.resource) for n in needs
            )
            if used:
                continue
            if grant.action in CDK_GRANT_EXTRAS:
                findings.cdk_extras_seen.add(grant.action)
                continue
            findings.unused.append(
                f"{function.name}: {grant.action} on {grant.resource} is granted but never used ({grant.source})"
            )
    return findings
