"""A scheduled check: a function run on a schedule that publishes one gauge, alarmed when low or silent.

The shape the certificate monitor (decision 056) and the scorer-token refresher (decision 091) share: the
function (no async retries: the next scheduled run is the retry), its own statements, an EventBridge schedule
with the cdk-nag acknowledgements such a function earns, the gauge's low-or-silent alarm, and its health alarms.
Each construct names only what differs (`CheckSchedule`, `CheckAlarm`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infrastructure.mm_constructs.alarms import AlarmFactory
from infrastructure.mm_constructs.functions import FunctionKit, FunctionSpec
from infrastructure.mm_constructs.nag import acknowledge
from mm_contracts.metric_names import Metric


@dataclass(frozen=True)
class CheckSchedule:
    rule_name: str
    description: str
    rate: Duration
    why_nothing_waits: str  # the rule's acknowledgement of Serverless-EventBusDLQ
    why_no_function_dlq: str  # the function's acknowledgement of the Lambda DLQ findings


@dataclass(frozen=True)
class CheckAlarm:
    metric: Metric
    service: str
    period: Duration
    threshold: float
    inclusive: bool
    description: str
    next_step: str  # the operator command(s) to run when it fires (`AlarmFactory.cli`)
    health_label: str  # names the function in its errors/throttles alarms


@dataclass(frozen=True)
class ScheduledCheck:
    function: lambda_.IFunction
    schedule: events.Rule
    expiry_alarm: cloudwatch.Alarm


def build_scheduled_check(
    scope: Construct,
    function_id: str,
    *,
    kit: FunctionKit,
    alarms: AlarmFactory,
    spec: FunctionSpec,
    statements: Sequence[iam.PolicyStatement],
    schedule: CheckSchedule,
    alarm: CheckAlarm,
) -> ScheduledCheck:
    """The function `function_id` in `scope`, its statements, schedule and alarms (construct ids `Schedule`,
    `ExpiryAlarm` in `scope`)."""
    built = kit.build(scope, function_id, replace(spec, extra={**spec.extra, "retry_attempts": 0}))
    for statement in statements:
        built.role.add_to_policy(statement)
    rule = run_on_schedule(scope, built.function, schedule)
    expiry_alarm = alarms.gauge_low_or_silent(
        scope,
        "ExpiryAlarm",
        metric=alarm.metric,
        service=alarm.service,
        period=alarm.period,
        threshold=alarm.threshold,
        inclusive=alarm.inclusive,
        description=alarm.description,
        next_step=alarm.next_step,
    )
    alarms.function_health(built, built.function, alarm.health_label)
    return ScheduledCheck(built.function, rule, expiry_alarm)


def run_on_schedule(scope: Construct, function: lambda_.IFunction, schedule: CheckSchedule) -> events.Rule:
    """An EventBridge rule at `schedule.rate`, and the cdk-nag acknowledgements a scheduled check earns: the next
    run is its retry and its alarm watches for silence, so neither the rule nor the function has anything for a
    DLQ to keep."""
    rule = events.Rule(
        scope,
        "Schedule",
        rule_name=schedule.rule_name,
        description=schedule.description,
        schedule=events.Schedule.rate(schedule.rate),
        targets=[targets.LambdaFunction(function, retry_attempts=2)],
    )
    acknowledge(rule, "Serverless-EventBusDLQ", schedule.why_nothing_waits)
    for finding in ("Serverless-LambdaDLQ", "Serverless-LambdaAsyncFailureDestination"):
        acknowledge(function, finding, schedule.why_no_function_dlq)
    return rule
