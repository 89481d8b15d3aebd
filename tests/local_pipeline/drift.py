"""Drift check: the wiring the CDK stacks synthesize versus the wiring the local pipeline created (used by
`test_drift.py` only, so it lives beside it).

Both sides are reduced to the same plain `Wiring` (what decides where a message goes and what a
function is told), then compared:

- per challenge queue: the SNS subscription's FilterPolicy, RawMessageDelivery and whether it has a
  delivery DLQ (RedrivePolicy);
- per queue with a redrive policy: its DLQ and maxReceiveCount;
- per EventBridge rule with an event pattern: the pattern;
- per function: its handler and the *names* of its environment variables.

Values that knowingly differ locally (visibility timeouts, the challenge timeout, endpoint URLs) are
not part of the comparison; see `LocalDeviations`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from local_pipeline.awsenv import LocalAws
from local_pipeline.provision import LOCAL_COMPLETION_EVENTS_SUFFIX, LOCAL_TAP_SUFFIX, LocalResources


@dataclass
class Wiring:
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # queue name -> settings
    redrive: dict[str, dict[str, Any]] = field(default_factory=dict)  # queue name -> {deadLetterQueue, max}
    rules: dict[str, Any] = field(default_factory=dict)  # rule name -> event pattern
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # function name -> {handler, env}


def _normalize(value: Any) -> Any:
    """JSON-equal values compare equal: a policy given as a JSON string, key order and allowlist order
    do not matter (only the top-level string is parsed; values inside stay what they are)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return _canonical(value)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _name_from_arn(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _is_local_only(queue_name: str) -> bool:
    return queue_name.endswith((LOCAL_TAP_SUFFIX, LOCAL_COMPLETION_EVENTS_SUFFIX))


# ---------------------------------------------------------------------- the stacks
def _queue_names(templates: dict[str, dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(stack, logical id) -> QueueName of every named queue in the templates."""
    queues: dict[tuple[str, str], str] = {}
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            if resource.get("Type") == "AWS::SQS::Queue":
                name = resource.get("Properties", {}).get("QueueName")
                if isinstance(name, str):
                    queues[(stack, logical_id)] = name
    return queues


def _add_template_resource(
    wiring: Wiring, queues: dict[tuple[str, str], str], stack: str, logical_id: str, resource: dict[str, Any]
) -> None:
    """One template resource into the wiring, when it is a part of it (subscription, redrive, rule, function)."""

    def queue_of(reference: Any) -> str | None:
        if isinstance(reference, dict) and "Fn::GetAtt" in reference:
            return queues.get((stack, reference["Fn::GetAtt"][0]))
        return None

    kind, props = resource.get("Type"), resource.get("Properties", {})
    if kind == "AWS::SNS::Subscription" and props.get("Protocol") == "sqs":
        queue = queue_of(props.get("Endpoint")) or f"{stack}/{logical_id}"
        wiring.subscriptions[queue] = {
            "filterPolicy": _normalize(props.get("FilterPolicy")),
            "rawMessageDelivery": _truthy(props.get("RawMessageDelivery")),
            "deliveryDlq": bool(props.get("RedrivePolicy")),
        }
    elif kind == "AWS::SQS::Queue" and props.get("RedrivePolicy"):
        policy = props["RedrivePolicy"]
        name = queues.get((stack, logical_id), f"{stack}/{logical_id}")
        wiring.redrive[name] = {
            "deadLetterQueue": queue_of(policy.get("deadLetterTargetArn")),
            "maxReceiveCount": int(policy.get("maxReceiveCount", 0)),
        }
    elif kind == "AWS::Events::Rule" and props.get("EventPattern"):
        wiring.rules[str(props.get("Name") or logical_id)] = _normalize(props["EventPattern"])
    elif kind == "AWS::Lambda::Function" and isinstance(props.get("FunctionName"), str):
        variables = (props.get("Environment") or {}).get("Variables") or {}
        wiring.functions[props["FunctionName"]] = {"handler": props.get("Handler"), "env": sorted(variables)}


def wiring_from_templates(templates: dict[str, dict[str, Any]]) -> Wiring:
    """The wiring the synthesized stacks define."""
    wiring = Wiring()
    queues = _queue_names(templates)
    for stack, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            _add_template_resource(wiring, queues, stack, logical_id, resource)
    return wiring


# ---------------------------------------------------------------------- the emulator
def wiring_from_emulator(aws: LocalAws, resources: LocalResources, function_env: dict[str, list[str]]) -> Wiring:
    """Read back what was created; `function_env` is each worker's environment names minus local ones."""
    wiring = Wiring()
    sns, sqs, events = aws.client("sns"), aws.client("sqs"), aws.client("events")
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=resources.topic_arn):
        for subscription in page.get("Subscriptions", []):
            attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
            queue = _name_from_arn(attributes["Endpoint"])
            if _is_local_only(queue):
                continue
            wiring.subscriptions[queue] = {
                "filterPolicy": _normalize(attributes.get("FilterPolicy")),
                "rawMessageDelivery": _truthy(attributes.get("RawMessageDelivery")),
                "deliveryDlq": bool(attributes.get("RedrivePolicy")),
            }
    for url in sqs.list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[-1]
        policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        if _is_local_only(name) or "RedrivePolicy" not in policy:
            continue
        redrive = json.loads(policy["RedrivePolicy"])
        wiring.redrive[name] = {
            "deadLetterQueue": _name_from_arn(redrive["deadLetterTargetArn"]),
            "maxReceiveCount": int(redrive["maxReceiveCount"]),
        }
    for rule in events.list_rules().get("Rules", []):
        if rule.get("EventPattern"):
            wiring.rules[rule["Name"]] = _normalize(rule["EventPattern"])
    for name, spec in resources.functions.items():
        wiring.functions[name] = {"handler": spec.handler, "env": sorted(function_env[name])}
    return wiring


# ---------------------------------------------------------------------- comparing
def compare(stacks: Wiring, local: Wiring) -> list[str]:
    """Human-readable differences; empty when the two agree."""
    differences: list[str] = []
    for aspect in ("subscriptions", "redrive", "rules", "functions"):
        ours: dict[str, Any] = getattr(local, aspect)
        theirs: dict[str, Any] = getattr(stacks, aspect)
        for key in sorted(set(ours) | set(theirs)):
            if key not in ours:
                differences.append(f"{aspect}: {key} is in the stacks but not created locally")
            elif key not in theirs:
                differences.append(f"{aspect}: {key} is created locally but not in the stacks")
            elif ours[key] != theirs[key]:
                if isinstance(ours[key], dict) and isinstance(theirs[key], dict):
                    for field_name in sorted(set(ours[key]) | set(theirs[key])):
                        a, b = theirs[key].get(field_name), ours[key].get(field_name)
                        if a != b:
                            detail = (
                                f"only in stacks {sorted(set(a) - set(b))}, only local {sorted(set(b) - set(a))}"
                                if isinstance(a, list) and isinstance(b, list)
                                else f"stacks {json.dumps(a)} != local {json.dumps(b)}"
                            )
                            differences.append(f"{aspect}: {key}.{field_name}: {detail}")
                else:
                    differences.append(
                        f"{aspect}: {key}: stacks {json.dumps(theirs[key])} != local {json.dumps(ours[key])}"
                    )
    return differences
