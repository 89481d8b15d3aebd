"""The monitoring construct (`mm_constructs/monitoring.py`): alarms on DLQs, functions, lag, the rule and
custom metrics.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import json

import pytest

from infrastructure.wiring import WiringPlan
from mm_contracts.metric_names import Metric
from tests.infrastructure.templates import all_resources, by_name
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_alarms_cover_dlqs_functions_lag_rule_and_custom_metrics(synthesized: Synthesized, plan: WiringPlan) -> None:
    alarms = [r["Properties"] for _, _, r in all_resources(synthesized, "AWS::CloudWatch::Alarm")]
    # A plain alarm's metric, or each metric of a metric-math alarm (one per challenge, decision 081).
    metrics = [
        m
        for a in alarms
        for m in ([q["MetricStat"]["Metric"] for q in a.get("Metrics", []) if "MetricStat" in q] or [a])
    ]
    text = json.dumps(alarms)
    queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
    dlqs = [plan.names.challenge_dlq(c.challenge_id) for c in plan.config.challenges]
    dlqs += [plan.names.completion_dlq, plan.names.fanout_dlq]  # router failures: S3, alarmed by ESM metrics
    for dlq in dlqs:
        lid = queues[dlq][1]
        assert any(
            a.get("MetricName") == "ApproximateNumberOfMessagesVisible" and lid in json.dumps(a.get("Dimensions"))
            for a in metrics
        ), dlq
    n_functions = 3 + len(plan.config.challenges)
    assert sum(a.get("MetricName") == "Errors" for a in metrics) == n_functions
    assert sum(a.get("MetricName") == "Throttles" for a in metrics) == n_functions
    assert sum(a.get("MetricName") == "OffsetLag" for a in alarms) == 1
    assert sum(a.get("MetricName") == "FailedInvocations" for a in alarms) == 1
    for metric in (Metric.LAUNCH_FAILURES, Metric.TASKS_FAILED, Metric.REPORT_FAILURES, Metric.RECORDS_REJECTED):
        assert f"SELECT SUM({metric.value}) FROM MMProcessor WHERE Environment = 'example'" in text  # noqa: S608  # noqa: S608
    assert all(a["AlarmActions"] for a in alarms)


def test_reconciliation_alarms_fire_on_any_synthetic_event_and_any_give_up(synthesized: Synthesized) -> None:
    alarms = [r["Properties"] for _, _, r in all_resources(synthesized, "AWS::CloudWatch::Alarm")]
    for metric, words in (
        (Metric.STOPPED_EVENTS_RECONCILED, "delivery is broken"),
        (Metric.RECONCILE_GAVE_UP, "an operator must"),
    ):
        query = f"SELECT SUM({metric.value}) FROM MMProcessor WHERE Environment = 'example'"  # noqa: S608
        (alarm,) = [a for a in alarms if query in json.dumps(a.get("Metrics"))]
        # > 0 in one 5-minute period, notifying the alarm topic
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
            1,
        )
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"]
        assert words in alarm["AlarmDescription"]
    dashboard = next(r for _, _, r in all_resources(synthesized, "AWS::CloudWatch::Dashboard"))
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (Metric.STOPPED_EVENTS_RECONCILED, Metric.RECONCILE_GAVE_UP, Metric.TASKS_STOPPED_FOR_TIMEOUT):
        assert f"SUM({metric.value})" in body
