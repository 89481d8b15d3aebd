"""The router's Powertools logger, tracer and metrics, and a small metrics port the logic writes to.

Logic modules import from here (never from the handler module), so they stay callable without Lambda.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from mm_contracts.metric_names import ENVIRONMENT_DIMENSION, METRICS_NAMESPACE, REASON_DIMENSION, Metric

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "router")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE), service=SERVICE)

CORRELATION_KEY = "correlation_id"


@contextmanager
def record_log_keys(correlation_id: str) -> Iterator[None]:
    """Log lines written while one record is handled carry its `topic-partition-offset` id."""
    logger.append_keys(**{CORRELATION_KEY: correlation_id})
    try:
        yield
    finally:
        logger.remove_keys([CORRELATION_KEY])


class MetricsPort(Protocol):
    def count(self, metric: Metric, value: int, *, reason: str | None = None) -> None: ...


class PowertoolsMetrics:
    """EMF through Powertools; a reason-dimensioned count is its own EMF blob (`single_metric`), so each
    reason is a separate dimension value instead of being merged into the handler's metric set."""

    def __init__(self, sink: Metrics, environment: str) -> None:
        self._sink = sink
        self._environment = environment

    def count(self, metric: Metric, value: int, *, reason: str | None = None) -> None:
        if reason is None:
            self._sink.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)
            return
        with single_metric(
            name=metric.value,
            unit=MetricUnit.Count,
            value=value,
            namespace=self._sink.namespace,
            default_dimensions={ENVIRONMENT_DIMENSION: self._environment},
        ) as one:
            one.add_dimension(name=REASON_DIMENSION, value=reason)
