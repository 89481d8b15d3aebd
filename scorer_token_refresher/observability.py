"""The scorer-token refresher's Powertools logger and tracer (service name from POWERTOOLS_SERVICE_NAME)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "scorer-token-refresher"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
