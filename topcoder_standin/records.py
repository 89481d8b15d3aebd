"""What every part of the stand-in shares: the record of a request, the answer being built, the ISO clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now_iso(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RecordedRequest:
    """One request as received. `json` of a /token request has `client_secret` redacted."""

    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    valid: bool
    errors: list[str]
    status: int = 0  # the status answered (0 while the request is still being handled)
    authorized: bool | None = None  # API requests: did the bearer token check pass
    at: float = 0.0
    response_errors: list[str] = field(default_factory=list)  # v6: where the stand-in's answer broke the spec

    def breach(self, errors: list[str]) -> None:
        """The request broke the contract (spec, proxy rules or the API's own rules)."""
        self.valid, self.errors = False, errors


class Reply(Exception):
    """The answer to a request: status, body (JSON, or a `str` sent as text) and headers. Raised by the routes
    to answer early (a refusal), returned otherwise."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
