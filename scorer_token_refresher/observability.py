"""The scorer-token refresher's Powertools logger (service name from POWERTOOLS_SERVICE_NAME).

Tracing is Lambda's own (active tracing, or OpenTelemetry by config: decision 112), nothing on the import path."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "scorer-token-refresher"

logger = Logger(service=SERVICE)
