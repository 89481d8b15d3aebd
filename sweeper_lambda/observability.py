"""The sweeper function's Powertools logger and tracer.

Creating them touches no AWS service; the service name comes from POWERTOOLS_SERVICE_NAME. Metrics go through
`mm_contracts.ports.MetricsSink` (`mm_adapters.metrics.EmfMetricsSink`, built in `sweeper_lambda.wiring`).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer

logger = Logger()
tracer = Tracer()
