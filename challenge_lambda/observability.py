"""The challenge processor's Powertools logger (service name from POWERTOOLS_SERVICE_NAME).

Tracing is Lambda's own (active tracing, or OpenTelemetry by config: decision 112), nothing on the import path.

Metrics go through `mm_contracts.ports.MetricsSink` (`mm_adapters.metrics.EmfMetricsSink`, built in
`challenge_lambda.wiring` with this function's ChallengeId dimension). The run's phase is a dimension of per-run
counts (decision 085); the alarms and the dashboard query with Metrics Insights, summed over every dimension set,
so the extra dimension splits no alarm.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "challenge-processor"

logger = Logger(service=SERVICE)
