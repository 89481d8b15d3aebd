"""Lazy boto3 clients for the operator tools, from one session (profile, region, endpoint).

`mm_adapters.aws.client` serves the functions: one process, the default session, endpoints from the standard
`AWS_ENDPOINT_URL*` variables. An operator names a profile and, for a local emulator, an endpoint on the
command line, so the tools build their own session; the retry policy is the same kind (standard, bounded).
"""

from __future__ import annotations

from typing import Any, Protocol

import boto3
from botocore.config import Config

_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20)


class ClientSource(Protocol):
    """Where the tools get a client for a service (a test hands in its own)."""

    def client(self, service_name: str) -> Any: ...


class AwsClients:
    """One boto3 session; each service's client is built on first use and then reused."""

    def __init__(self, *, profile: str | None = None, region: str | None = None, endpoint_url: str | None = None):
        self._profile = profile
        self._region = region
        self._endpoint_url = endpoint_url
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}

    def _session_once(self) -> boto3.session.Session:
        # ProfileNotFound surfaces here, on the first call, not when the command parses its arguments.
        if self._session is None:
            self._session = boto3.session.Session(profile_name=self._profile, region_name=self._region)
        return self._session

    def client(self, service_name: str) -> Any:
        if service_name not in self._clients:
            self._clients[service_name] = self._session_once().client(  # type: ignore[call-overload]
                service_name, endpoint_url=self._endpoint_url, config=_CLIENT_CONFIG
            )
        return self._clients[service_name]
