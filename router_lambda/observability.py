"""The router's Powertools logger (service name from POWERTOOLS_SERVICE_NAME) and the log keys of one record.
Tracing is Lambda's own (active tracing, or OpenTelemetry by config: decision 112), nothing on the import path.
Metrics go through `mm_contracts.ports.MetricsSink` (built in `router_lambda.wiring`).

Logic modules import from here (never from the handler module), so they stay callable without Lambda.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "router")

logger = Logger(service=SERVICE)

CORRELATION_KEY = "correlation_id"


@contextmanager
def record_log_keys(correlation_id: str) -> Iterator[None]:
    """Log lines written while one record is handled carry its `topic-partition-offset` id."""
    logger.append_keys(**{CORRELATION_KEY: correlation_id})
    try:
        yield
    finally:
        logger.remove_keys([CORRELATION_KEY])
