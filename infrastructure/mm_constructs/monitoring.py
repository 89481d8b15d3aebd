"""Monitoring: the alarm topic, the environment-wide alarms and the dashboard (`AlarmFactory`: `alarms.py`).

Alarms by default: every DLQ not empty, each function's errors and throttles (one combined alarm per challenge:
its DLQ, errors and throttles, decision 081), the Kafka offset lag, the
completion rule's failed invocations, the sweeper's reconciliation of lost STOPPED events (any synthetic event,
any give-up), and the custom EMF metrics of `mm_contracts.metric_names` (queried with
CloudWatch Metrics Insights, so every `Reason` dimension value is covered). Per-challenge alarms are made
in the shard stack that owns the challenge.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.mm_constructs.alarms import (
    ALARMED_METRICS,
    CAPACITY_GAUGES,
    PERIOD,
    RECONCILE_ALARMS,
    AlarmFactory,
    capacity_search,
    insights_query,
)
from infrastructure.wiring import WiringPlan
from mm_contracts.metric_names import (
    Metric,
)


def custom_metric_next_steps(alarms: AlarmFactory, *, audit_queue: str) -> dict[Metric, str]:
    """The operator command(s) each custom-metric alarm names (its description's `Next:`). The alarms are the
    environment's, so a command that takes a challenge says `<challengeId>`: the dashboard's graph shows which."""
    cli = alarms.cli
    health = cli("health")
    then_status = f"then {cli('status <submissionId>')} of a submission it lists"
    return {
        Metric.LAUNCH_FAILURES: (
            f"{cli('runs <challengeId> --state LAUNCH_FAILED')} (the dashboard's launch failures by reason), then "
            f"{cli('dlq list')} (a run that failed every launch is in its challenge's DLQ)"
        ),
        Metric.TASKS_FAILED: (
            f"{cli('runs <challengeId> --state FAILED')}, then {cli('status <submissionId>')} (why it failed)"
        ),
        Metric.REPORT_FAILURES: f"{cli('dlq show completion')}, then {health} (stuck reports)",
        Metric.RECORDS_REJECTED: (
            f"{health}; each rejected record and its reason is a message in the router audit queue {audit_queue} "
            "(kept 14 days; nothing consumes it)"
        ),
        Metric.STOPPED_EVENTS_RECONCILED: (
            f"{cli('dlq show completion')} (the task-stopped rule's undelivered events), then {health}"
        ),
        # A given-up item is off the byStateDeadline index, so `health` cannot list it: the sweeper's log names it.
        Metric.RECONCILE_GAVE_UP: (
            f"{cli('status <submissionId>')} of the run the sweeper's ERROR log names (its history says "
            f"RECONCILE_GAVE_UP), then {cli('dlq show completion')} (the synthesized STOPPED events that failed)"
        ),
        Metric.ORPHAN_TASKS_STOPPED: f"{health} (it lists stuck launches and reports), {then_status}",
        Metric.REPORT_RETRY_GAVE_UP: (
            f"{cli('status <submissionId>')} of the run the sweeper's ERROR log names (\"report still unfinished after "
            f'the last re-drive"), then {cli("dlq show completion")}'
        ),
    }


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
        next_steps = custom_metric_next_steps(self.alarms, audit_queue=plan.names.audit_queue)
        for metric in ALARMED_METRICS:
            self.alarms.custom_metric(custom, metric, next_step=next_steps[metric])
        for metric, meaning in RECONCILE_ALARMS.items():
            self.alarms.custom_metric(custom, metric, meaning=meaning, next_step=next_steps[metric])
        capacity = plan.config.capacity
        self.capacity_alarms = self.alarms.capacity_alarms(
            Construct(self, "Capacity"),
            sweep_minutes=plan.config.sweeper_interval_minutes,
            oldest_wait_minutes=capacity.oldest_wait_alarm_minutes,
            cap_reached_minutes=capacity.cap_reached_alarm_minutes,
        )
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
        self._add_capacity_row()
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="environment alarms", alarms=self.alarms.alarms, width=24)
        )

    def _add_capacity_row(self) -> None:
        """One graph per capacity gauge: the environment's line and one line per challenge (a SEARCH)."""
        env = self.plan.config.environment
        period = Duration.minutes(self.plan.config.sweeper_interval_minutes)
        titles = {
            Metric.RUNNING_TASKS: "capacity: running tasks",
            Metric.WAITING_RUNS: "capacity: waiting runs",
            Metric.OLDEST_WAIT_SECONDS: "capacity: oldest wait (s)",
            Metric.CAPACITY_FULL: "capacity: cap reached (1 = full)",
        }
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="## Capacity\nPer challenge and for the environment, from the sweeper's gauges "
                "(caps: `mm-processor caps show`; a challenge's queue: `mm-processor queue <challengeId>`)",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=titles[metric],
                    width=6,
                    left=[
                        self.alarms.capacity_gauge(metric, period, label="environment"),
                        cloudwatch.MathExpression(
                            expression=capacity_search(metric, env, int(period.to_seconds())),
                            using_metrics={},
                            period=period,
                            label="${PROP('Dim.ChallengeId')}",  # a dynamic label: each line names its challenge
                        ),
                    ],
                )
                for metric in CAPACITY_GAUGES
            )
        )
