"""Counting metrics: a small port so the logic can be tested with a fake and run with Powertools EMF."""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mm_contracts.metric_names import (
    CHALLENGE_DIMENSION,
    ENVIRONMENT_DIMENSION,
    METRICS_NAMESPACE,
    PHASE_DIMENSION,
    REASON_DIMENSION,
    Metric,
)

# The run's phase on per-run counts (decision 085). The alarms and the dashboard query with Metrics Insights, summed
# over every dimension set, so the extra dimension splits no alarm.


class MetricsSink(Protocol):
    def count(self, metric: Metric, *, reason: str | None = None, phase: str | None = None) -> None: ...


class PowertoolsMetricsSink:
    """One EMF line per count, with this function's dimensions spelled out on each.

    Powertools' `Metrics` keeps its metric set and default dimensions in class-level state shared by every
    instance in the process; setting `ChallengeId` there would leak it onto other functions hosted in the same
    process (the local pipeline), and a `Reason` would attach to every metric of the invocation.
    """

    def __init__(
        self, *, environment_name: str, challenge_id: str, service: str, namespace: str = METRICS_NAMESPACE
    ) -> None:
        self._namespace = namespace
        self._dimensions = {
            ENVIRONMENT_DIMENSION: environment_name,
            CHALLENGE_DIMENSION: challenge_id,
            "service": service,
        }

    def count(self, metric: Metric, *, reason: str | None = None, phase: str | None = None) -> None:
        dimensions = dict(self._dimensions)
        if reason is not None:
            dimensions[REASON_DIMENSION] = reason
        if phase is not None:
            dimensions[PHASE_DIMENSION] = phase
        with single_metric(
            name=metric.value,
            unit=MetricUnit.Count,
            value=1,
            namespace=self._namespace,
            default_dimensions=dimensions,
        ):
            pass


__all__ = ["PHASE_DIMENSION", "MetricsSink", "PowertoolsMetricsSink"]
