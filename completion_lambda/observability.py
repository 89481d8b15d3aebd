"""The completion function's Powertools logger (tracing is Lambda's own: decision 112).

Creating it touches no AWS service; the service name comes from POWERTOOLS_SERVICE_NAME. Metrics go through
`mm_contracts.ports.MetricsSink` (`mm_adapters.metrics.EmfMetricsSink`, built in `completion_lambda.wiring`).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger()
