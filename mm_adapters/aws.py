"""Lazy, cached boto3 clients: nothing is built at import time, so moto (or a test) can start first.

Endpoints follow the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, which is how
the local pipeline points worker processes at the embedded emulator.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and 5xx; bounded attempts.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)


@functools.cache
def client(service_name: str) -> Any:
    return boto3.session.Session().client(service_name, config=_CLIENT_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests switch emulators between cases)."""
    client.cache_clear()
