"""`AlarmFactory`, which every construct uses for its alarms, and the metric queries behind them.

Alarms on DLQs not empty, function errors and throttles (one combined alarm per challenge: its DLQ, errors and
throttles, decision 081), the Kafka offset lag, a rule's failed invocations, capacity gauges, and the custom
EMF metrics of `mm_contracts.metric_names` (queried with CloudWatch Metrics Insights, so every `Reason`
dimension value is covered). Every alarm notifies the pipeline's alarm topic, and its description ends with the
operator command to run next (`... Next: mm-processor <command> --env <env> ...`, the `mm-processor` tool of
`operator_tools.cli`): `AlarmFactory.describe`.
"""

from __future__ import annotations

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.wiring import SWEEPER_SERVICE_NAME
from mm_contracts.metric_names import (
    CHALLENGE_DIMENSION,
    ENVIRONMENT_DIMENSION,
    METRICS_NAMESPACE,
    SERVICE_DIMENSION,
    Metric,
)

PERIOD = Duration.minutes(5)
# CloudWatch's limit on AlarmDescription (PutMetricAlarm: "Length Constraints: Minimum length of 0. Maximum length
# of 1024."): https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
MAX_ALARM_DESCRIPTION = 1024
OPERATOR_COMMAND = "mm-processor"
OFFSET_LAG_THRESHOLD = 1_000  # records behind, sustained for 15 minutes
# Partition-level write throttling of the capacity table, in every one of 3 periods (15 minutes): longer than
# DynamoDB takes to split a hot key range (decision 125).
HOT_PARTITION_PERIODS = 3
# Custom metrics that mean "a submission did not get its result": alarm on any occurrence.
ALARMED_METRICS = (Metric.LAUNCH_FAILURES, Metric.TASKS_FAILED, Metric.REPORT_FAILURES, Metric.RECORDS_REJECTED)
# The timeout sweeper's reconciliation of lost STOPPED events (decision 008): what each occurrence means.
RECONCILE_ALARMS = {
    Metric.STOPPED_EVENTS_RECONCILED: (
        "a STOPPED event was not processed and the sweeper sent a synthetic one: ECS -> EventBridge -> completion "
        "delivery is broken (check the task-stopped rule, its target and the completion DLQ)"
    ),
    Metric.RECONCILE_GAVE_UP: (
        "the sweeper gave up reconciling a submission (left LAUNCHED, off the overdue index): an operator must "
        "look (the sweeper's ERROR log names the submission)"
    ),
    Metric.ORPHAN_TASKS_STOPPED: "the sweeper stopped a scorer task no status item tracked (decision 071)",
    Metric.REPORT_RETRY_GAVE_UP: "a report is still unfinished after the sweeper's last re-drive (decision 080)",
}


# The sweeper's capacity gauges (decision 096), one value per sweep: the environment's line (dimensions
# Environment + service, what the alarms watch) and one line per challenge (+ ChallengeId, the dashboard).
CAPACITY_GAUGES = (Metric.RUNNING_TASKS, Metric.WAITING_RUNS, Metric.OLDEST_WAIT_SECONDS, Metric.CAPACITY_FULL)


def capacity_search(metric: Metric, environment: str, period_seconds: int) -> str:
    """A SEARCH over the per-challenge lines of one gauge: one line per ChallengeId of this environment."""
    schema = f"{{{METRICS_NAMESPACE},{CHALLENGE_DIMENSION},{ENVIRONMENT_DIMENSION},{SERVICE_DIMENSION}}}"
    query = f'{schema} MetricName="{metric.value}" {ENVIRONMENT_DIMENSION}="{environment}"'
    return f"SEARCH('{query}', 'Maximum', {period_seconds})"


def insights_query(metric: str, environment: str, *, group_by: str | None = None) -> str:
    """Metrics Insights: the metric summed over every dimension set of this environment."""
    # Not SQL: a CloudWatch Metrics Insights query over our own constants and the validated env name.
    query = f"SELECT SUM({metric}) FROM {METRICS_NAMESPACE} WHERE {ENVIRONMENT_DIMENSION} = '{environment}'"  # noqa: S608
    return f"{query} GROUP BY {group_by}" if group_by else query


class AlarmFactory:
    """Creates alarms that notify one SNS topic; usable from any stack (the topic is passed by reference)."""

    def __init__(self, topic: sns.ITopic, environment: str) -> None:
        self.topic = topic
        self.environment = environment
        self.alarms: list[cloudwatch.Alarm] = []

    def cli(self, command: str) -> str:
        """An operator command as an alarm names it: `mm-processor <command> --env <this environment>`."""
        return f"{OPERATOR_COMMAND} {command} --env {self.environment}"

    def describe(self, description: str, next_step: str) -> str:
        """`[mm-processor <env>] <description>. Next: <next_step>`: what happened, then the operator command to run
        (`next_step` starts with one, `cli(...)`). The prefix is what `mm-processor health` selects the environment's
        alarms by (`operator_tools.health.ALARM_DESCRIPTION_PREFIX`). Refuses a text over CloudWatch's limit."""
        if not next_step.startswith(f"{OPERATOR_COMMAND} "):
            raise ValueError(f"an alarm's next step starts with an {OPERATOR_COMMAND} command: {next_step!r}")
        text = f"[{OPERATOR_COMMAND} {self.environment}] {description}. Next: {next_step}"
        if len(text) > MAX_ALARM_DESCRIPTION:
            raise ValueError(f"alarm description of {len(text)} characters (at most {MAX_ALARM_DESCRIPTION}): {text}")
        return text

    def _alarm(
        self,
        scope: Construct,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        description: str,
        next_step: str,
        threshold: float = 1,
        evaluation_periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            scope,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=self.describe(description, next_step),
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def gauge_low_or_silent(
        self,
        scope: Construct,
        construct_id: str,
        *,
        metric: Metric,
        service: str,
        period: Duration,
        threshold: float,
        inclusive: bool,
        description: str,
        next_step: str,
    ) -> cloudwatch.Alarm:
        """A scheduled function's gauge (dimensions Environment and service): in alarm when its minimum over the
        period is below the threshold (or at it, `inclusive`) and when it published nothing (missing = breaching:
        silence never looks healthy). The certificate monitor's and the scorer-token refresher's expiry alarms."""
        gauge = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric.value,
            dimensions_map={ENVIRONMENT_DIMENSION: self.environment, SERVICE_DIMENSION: service},
            statistic="Minimum",
            period=period,
        )
        comparison = (
            cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD
            if inclusive
            else cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
        )
        alarm = cloudwatch.Alarm(
            scope,
            construct_id,
            metric=gauge,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            alarm_description=self.describe(description, next_step),
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def capacity_gauge(self, metric: Metric, period: Duration, *, label: str | None = None) -> cloudwatch.Metric:
        """The environment's line of a sweeper capacity gauge (its maximum over one sweeper interval)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric.value,
            dimensions_map={ENVIRONMENT_DIMENSION: self.environment, SERVICE_DIMENSION: SWEEPER_SERVICE_NAME},
            statistic="Maximum",
            period=period,
            label=label,
        )

    def capacity_alarms(
        self, scope: Construct, *, sweep_minutes: int, oldest_wait_minutes: int, cap_reached_minutes: int
    ) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        """Oldest wait above its threshold, and the environment's cap reached for longer than its threshold.

        The gauges come once per sweep, so a period is one sweeper interval. Missing data keeps the alarm's
        state: a period a sweep's timing left empty neither raises nor clears it (a sweeper that stops running
        is alarmed by its own Errors alarm and the schedule's FailedInvocations).
        """
        period = Duration.minutes(sweep_minutes)
        oldest = self._alarm(
            scope,
            "OldestWaitAlarm",
            self.capacity_gauge(Metric.OLDEST_WAIT_SECONDS, period),
            threshold=oldest_wait_minutes * 60,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            missing=cloudwatch.TreatMissingData.IGNORE,
            description=(
                f"a run has waited for capacity longer than {oldest_wait_minutes} minutes: the caps are too low for "
                "the load, or slots are held by runs that do not finish (the dashboard's Capacity row shows which "
                "challenge)"
            ),
            next_step=(
                f"{self.cli('caps show')} (the caps and what runs now), then {self.cli('queue <challengeId>')} "
                "(its waiting runs, in order); slots held by runs that do not finish: "
                f"{self.cli('runs <challengeId> --state LAUNCHED')}"
            ),
        )
        periods = -(-cap_reached_minutes // sweep_minutes)  # ceil: at least the threshold
        full = self._alarm(
            scope,
            "CapacityFullAlarm",
            self.capacity_gauge(Metric.CAPACITY_FULL, period),
            threshold=1,
            evaluation_periods=periods,
            missing=cloudwatch.TreatMissingData.IGNORE,
            description=(
                f"the environment's capacity cap has been reached for {periods * sweep_minutes} minutes "
                f"({periods} sweeps): runs are waiting; raise maxRunningTasks if the account allows, or let the "
                "queue drain"
            ),
            next_step=(
                f"{self.cli('caps show')}, then, if the account's Fargate quota allows, "
                f"{self.cli('caps set --environment --max-running N --reason TEXT')}"
            ),
        )
        return oldest, full

    def hot_partition(self, scope: Construct, table: dynamodb.ITable) -> cloudwatch.Alarm:
        """The capacity table's writes throttled at a partition's limit for `HOT_PARTITION_PERIODS` periods in a row
        (decision 125): a burst DynamoDB splits away within minutes; a pool item too large for its write rate it
        cannot (an item never spans partitions), and runs then start slower than the pace."""
        metric = table.metric("WriteKeyRangeThroughputThrottleEvents", period=PERIOD, statistic=cloudwatch.Stats.SUM)
        return self._alarm(
            scope,
            "HotPartitionAlarm",
            metric,
            evaluation_periods=HOT_PARTITION_PERIODS,
            description=(
                f"capacity table writes throttled at a partition's limit for "
                f"{HOT_PARTITION_PERIODS * int(PERIOD.to_minutes())} minutes: "
                "a pool item too large for its write rate (caps too high for their pace, decision 125), or a hot key"
            ),
            next_step=(
                f"{self.cli('caps show')} (the pool item's write units a second when full, the largest cap at the "
                f"pace), then {self.cli('caps set --environment --max-running N --reason TEXT')}"
            ),
        )

    def queue_not_empty(
        self, scope: Construct, construct_id: str, queue: sqs.IQueue, what: str, *, dlq: str
    ) -> cloudwatch.Alarm:
        """`dlq`: the queue as `mm-processor dlq` names it (a challenge id, `fanout` or `completion`)."""
        metric = queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
        next_step = f"{self.cli(f'dlq show {dlq}')}, then after the fix {self.cli(f'dlq redrive {dlq} --reason TEXT')}"
        return self._alarm(
            scope, construct_id, metric, description=f"{what} is not empty: inspect and redrive", next_step=next_step
        )

    def function_health(self, scope: Construct, function: lambda_.IFunction, what: str) -> None:
        next_step = f"{self.cli('health')}, then the function's log group {log_group_of(function)}"
        self._alarm(
            scope,
            "ErrorsAlarm",
            function.metric_errors(period=PERIOD, statistic="Sum"),
            description=f"{what} function errors",
            next_step=next_step,
        )
        self._alarm(
            scope,
            "ThrottlesAlarm",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            description=f"{what} function throttled",
            next_step=f"{next_step} (throttles: its reserved concurrency)",
        )

    def challenge_health(
        self,
        scope: Construct,
        construct_id: str,
        function: lambda_.IFunction,
        dlq: sqs.IQueue,
        what: str,
        *,
        challenge_id: str,
    ) -> cloudwatch.Alarm:
        """One alarm per challenge (resources per challenge, decision 081): DLQ not empty, errors or throttles."""
        # FILL: a metric without data points counts as 0, so the other two still decide.
        expression = cloudwatch.MathExpression(
            expression="MAX([FILL(dlq, 0), FILL(errors, 0), FILL(throttles, 0)])",
            using_metrics={
                "dlq": dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                "errors": function.metric_errors(period=PERIOD, statistic="Sum"),
                "throttles": function.metric_throttles(period=PERIOD, statistic="Sum"),
            },
            period=PERIOD,
            label=f"{what}: max of DLQ messages, errors, throttles",
        )
        description = (
            f"{what}: its DLQ is not empty or its function has errors or throttles. Check first the DLQ "
            "(messages that failed every receive: inspect, fix, redrive), then the function's Errors "
            "(its log group) and Throttles (reserved/queue concurrency)"
        )
        next_step = (
            f"{self.cli(f'dlq show {challenge_id}')}, then {self.cli('health')} and the function's log group "
            f"{log_group_of(function)}; after the fix {self.cli(f'dlq redrive {challenge_id} --reason TEXT')}"
        )
        return self._alarm(scope, construct_id, expression, description=description, next_step=next_step)

    def offset_lag(self, scope: Construct, function: lambda_.IFunction) -> cloudwatch.Alarm:
        metric = cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name="OffsetLag",
            dimensions_map={"FunctionName": function.function_name},
            statistic="Maximum",
            period=PERIOD,
        )
        return self._alarm(
            scope,
            "OffsetLagAlarm",
            metric,
            threshold=OFFSET_LAG_THRESHOLD,
            evaluation_periods=3,
            description=f"router is more than {OFFSET_LAG_THRESHOLD} Kafka records behind for 15 minutes",
            next_step=f"{self.cli('health')}, then the router's log group {log_group_of(function)}",
        )

    def rule_failed_invocations(
        self, scope: Construct, construct_id: str, rule: events.IRule, *, next_step: str
    ) -> cloudwatch.Alarm:
        metric = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": rule.rule_name},
            statistic="Sum",
            period=PERIOD,
        )
        return self._alarm(
            scope, construct_id, metric, description="EventBridge could not invoke its target", next_step=next_step
        )

    def custom_metric(
        self, scope: Construct, metric: Metric, *, next_step: str, meaning: str | None = None
    ) -> cloudwatch.Alarm:
        expression = cloudwatch.MathExpression(
            expression=insights_query(metric.value, self.environment), using_metrics={}, period=PERIOD, label=metric
        )
        description = f"{metric.value} occurred" + (f": {meaning}" if meaning else "")
        return self._alarm(scope, f"{metric.value}Alarm", expression, description=description, next_step=next_step)


def log_group_of(function: lambda_.IFunction) -> str:
    """The log group of one of our functions (`PipelineFunction`: `/aws/lambda/<function name>`), as plain text."""
    child = function.node.default_child
    if isinstance(child, lambda_.CfnFunction):
        name = child.function_name
        if isinstance(name, str) and not Token.is_unresolved(name):
            return f"/aws/lambda/{name}"
    return "/aws/lambda/<its function name>"
