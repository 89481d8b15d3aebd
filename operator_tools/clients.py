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
        self._clients: dict[tuple[str, int | None, int | None], Any] = {}

    def _session_once(self) -> boto3.session.Session:
        # ProfileNotFound surfaces here, on the first call, not when the command parses its arguments.
        if self._session is None:
            self._session = boto3.session.Session(profile_name=self._profile, region_name=self._region)
        return self._session

    def client(
        self, service_name: str, *, read_timeout: int | None = None, total_max_attempts: int | None = None
    ) -> Any:
        """The service's client; `read_timeout` (s) and `total_max_attempts` (every attempt, the first included:
        1 sends a request once) override the tools' defaults for a call that needs them (a synchronous invoke
        longer than the default read timeout, which must not be sent twice). Each combination is its own client,
        built once."""
        key = (service_name, read_timeout, total_max_attempts)
        if key not in self._clients:
            config = _CLIENT_CONFIG
            if read_timeout is not None or total_max_attempts is not None:
                config = config.merge(_override(read_timeout, total_max_attempts))
            self._clients[key] = self._session_once().client(  # type: ignore[call-overload]
                service_name, endpoint_url=self._endpoint_url, config=config
            )
        return self._clients[key]


def _override(read_timeout: int | None, total_max_attempts: int | None) -> Config:
    options: dict[str, Any] = {}
    if read_timeout is not None:
        options["read_timeout"] = read_timeout
    if total_max_attempts is not None:
        # botocore's `max_attempts` counts retries only; `total_max_attempts` counts the first attempt too.
        options["retries"] = {"mode": "standard", "total_max_attempts": total_max_attempts}
    return Config(**options)
