"""Monitoring: the alarm topic, the dashboard, and `AlarmFactory`, which every construct uses for its alarms.

Alarms by default: every DLQ not empty, each function's errors and throttles (one combined alarm per challenge:
its DLQ, errors and throttles, decision 081), the Kafka offset lag, the
completion rule's failed invocations, the sweeper's reconciliation of lost STOPPED events (any synthetic event,
any give-up), and the custom EMF metrics of `mm_shared.observability` (queried with
CloudWatch Metrics Insights, so every `Reason` dimension value is covered). Per-challenge alarms are made
in the shard stack that owns the challenge.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.wiring import WiringPlan
from mm_shared.observability import ENVIRONMENT_DIMENSION, METRICS_NAMESPACE, SERVICE_DIMENSION, Metric

PERIOD = Duration.minutes(5)
OFFSET_LAG_THRESHOLD = 1_000  # records behind, sustained for 15 minutes
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

    def _alarm(
        self,
        scope: Construct,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        description: str,
        threshold: float = 1,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            scope,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"[mm-processor {self.environment}] {description}",
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
            alarm_description=f"[mm-processor {self.environment}] {description}",
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def queue_not_empty(self, scope: Construct, construct_id: str, queue: sqs.IQueue, what: str) -> cloudwatch.Alarm:
        metric = queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
        return self._alarm(scope, construct_id, metric, description=f"{what} is not empty: inspect and redrive")

    def function_health(self, scope: Construct, function: lambda_.IFunction, what: str) -> None:
        self._alarm(
            scope,
            "ErrorsAlarm",
            function.metric_errors(period=PERIOD, statistic="Sum"),
            description=f"{what} function errors",
        )
        self._alarm(
            scope,
            "ThrottlesAlarm",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            description=f"{what} function throttled",
        )

    def challenge_health(
        self, scope: Construct, construct_id: str, function: lambda_.IFunction, dlq: sqs.IQueue, what: str
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
        return self._alarm(scope, construct_id, expression, description=description)

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
        )

    def rule_failed_invocations(self, scope: Construct, construct_id: str, rule: events.IRule) -> cloudwatch.Alarm:
        metric = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="FailedInvocations",
            dimensions_map={"RuleName": rule.rule_name},
            statistic="Sum",
            period=PERIOD,
        )
        return self._alarm(scope, construct_id, metric, description="EventBridge could not invoke its target")

    def custom_metric(self, scope: Construct, metric: Metric, *, meaning: str | None = None) -> cloudwatch.Alarm:
        expression = cloudwatch.MathExpression(
            expression=insights_query(metric.value, self.environment), using_metrics={}, period=PERIOD, label=metric
        )
        description = f"{metric.value} occurred" + (f": {meaning}" if meaning else "")
        return self._alarm(scope, f"{metric.value}Alarm", expression, description=description)


class PipelineMonitoring(Construct):
    """The alarm topic (optional email subscription), environment-wide alarms and the dashboard."""

    def __init__(self, scope: Construct, construct_id: str, *, plan: WiringPlan, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.plan = plan
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=plan.names.alarm_topic,
            display_name=f"mm-processor {plan.config.environment} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if plan.config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(plan.config.alarm_email))
        self.alarms = AlarmFactory(self.topic, plan.config.environment)
        custom = Construct(self, "CustomMetrics")
        for metric in ALARMED_METRICS:
            self.alarms.custom_metric(custom, metric)
        for metric, meaning in RECONCILE_ALARMS.items():
            self.alarms.custom_metric(custom, metric, meaning=meaning)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=plan.names.dashboard, default_interval=Duration.hours(6)
        )

    def add_pipeline_widgets(
        self,
        *,
        router: lambda_.IFunction,
        completion: lambda_.IFunction,
        sweeper: lambda_.IFunction,
        queues: dict[str, sqs.IQueue],
    ) -> None:
        env = self.plan.config.environment

        def insights(title: str, metric: Metric, group_by: str | None = None) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title,
                width=8,
                left=[
                    cloudwatch.MathExpression(
                        expression=insights_query(metric.value, env, group_by=group_by),
                        using_metrics={},
                        period=PERIOD,
                        label=metric.value,
                    )
                ],
            )

        functions = {"router": router, "completion": completion, "timeout sweeper": sweeper}
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# mm-processor `{env}`\nKafka -> router -> SNS -> per-challenge SQS -> ECS -> completion",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"{name}: invocations / errors / throttles",
                    width=8,
                    left=[fn.metric_invocations(period=PERIOD), fn.metric_errors(period=PERIOD)],
                    right=[fn.metric_throttles(period=PERIOD)],
                )
                for name, fn in functions.items()
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="router: Kafka offset lag",
                width=8,
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name="OffsetLag",
                        dimensions_map={"FunctionName": router.function_name},
                        statistic="Maximum",
                        period=PERIOD,
                    )
                ],
            ),
            insights("router: records routed", Metric.RECORDS_ROUTED),
            insights("router: records rejected by reason", Metric.RECORDS_REJECTED, "Reason"),
        )
        self.dashboard.add_widgets(
            insights("tasks launched by challenge", Metric.TASKS_LAUNCHED, "ChallengeId"),
            insights("launch failures by reason", Metric.LAUNCH_FAILURES, "Reason"),
            insights("tasks failed", Metric.TASKS_FAILED),
        )
        self.dashboard.add_widgets(
            insights("reports sent", Metric.REPORTS_SENT),
            insights("report failures by reason", Metric.REPORT_FAILURES, "Reason"),
            cloudwatch.GraphWidget(
                title="dead-letter queues (messages visible)",
                width=8,
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum", label=name)
                    for name, queue in queues.items()
                ],
            ),
        )
        self.dashboard.add_widgets(
            insights("timeout sweeper: tasks stopped for timeout", Metric.TASKS_STOPPED_FOR_TIMEOUT),
            insights("STOPPED events reconciled (non-zero: event delivery broken)", Metric.STOPPED_EVENTS_RECONCILED),
            insights("reconciliation gave up (an operator must look)", Metric.RECONCILE_GAVE_UP),
        )
        self.dashboard.add_widgets(
            insights("orphan tasks stopped (no item tracked them)", Metric.ORPHAN_TASKS_STOPPED),
            insights("report re-drives gave up (an operator must look)", Metric.REPORT_RETRY_GAVE_UP),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="environment alarms", alarms=self.alarms.alarms, width=24)
        )
