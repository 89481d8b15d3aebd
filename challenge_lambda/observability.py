"""Counting metrics: a small port so the logic can be tested with a fake and run with Powertools EMF."""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mm_shared.observability import CHALLENGE_DIMENSION, ENVIRONMENT_DIMENSION, REASON_DIMENSION, Metric


class MetricsSink(Protocol):
    def count(self, metric: Metric, *, reason: str | None = None) -> None: ...


class PowertoolsMetricsSink:
    """Plain counts go to the invocation's metric set; a count with a Reason is its own EMF line,
    because a dimension added to the shared set would attach to every metric of the invocation."""

    def __init__(self, metrics: Metrics, *, environment_name: str, challenge_id: str) -> None:
        self._metrics = metrics
        self._dimensions = {ENVIRONMENT_DIMENSION: environment_name, CHALLENGE_DIMENSION: challenge_id}
        metrics.set_default_dimensions(**self._dimensions)

    def count(self, metric: Metric, *, reason: str | None = None) -> None:
        if reason is None:
            self._metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=1)
            return
        dimensions = dict(self._dimensions)
        if self._metrics.service:
            dimensions["service"] = str(self._metrics.service)
        dimensions[REASON_DIMENSION] = reason
        with single_metric(
            name=metric.value,
            unit=MetricUnit.Count,
            value=1,
            namespace=self._metrics.namespace,
            default_dimensions=dimensions,
        ):
            pass


__all__ = ["MetricsSink", "PowertoolsMetricsSink"]
