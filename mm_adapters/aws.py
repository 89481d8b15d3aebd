"""Lazy, cached botocore clients: nothing is built at import time, so moto (or a test) can start first.

Clients come from botocore directly, not boto3: the functions use clients only (no resources, no S3 transfers),
and `import boto3` also loads `s3transfer` with `multiprocessing` and `concurrent.futures`, which no function
needs (decision 112). botocore is imported here, at import time, because every function's first call needs it.

Endpoints follow the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables (botocore reads them),
which is how the local pipeline points worker processes at the embedded emulator.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import botocore.session
from botocore.config import Config

# Standard retry mode: exponential backoff with jitter on throttling and 5xx; bounded attempts.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)
# One session for every client: it loads the endpoint and service data once. A botocore session is not
# thread-safe while it builds clients (the clients are), and a function may build from worker threads.
_building = threading.Lock()


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.Session()


@functools.cache
def client(service_name: str) -> Any:
    with _building:
        return _session().create_client(service_name, config=_CLIENT_CONFIG)


def reset_clients() -> None:
    """Forget cached clients and their session (tests switch emulators, and moto's patches, between cases)."""
    client.cache_clear()
    _session.cache_clear()
