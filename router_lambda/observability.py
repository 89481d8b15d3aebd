"""The router's Powertools logger (service name from POWERTOOLS_SERVICE_NAME) and the log key naming a record.
Tracing is Lambda's own (active tracing, or OpenTelemetry by config: decision 112), nothing on the import path.
Metrics go through `mm_contracts.ports.MetricsSink` (built in `router_lambda.wiring`).

Logic modules import from here (never from the handler module), so they stay callable without Lambda.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "router")

logger = Logger(service=SERVICE)

# Each per-record line carries it among its own fields (decision 113: no logger keys appended per record).
CORRELATION_KEY = "correlation_id"
