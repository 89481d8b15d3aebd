"""Faults in Topcoder API calls, injected by a transport around the clients' own (decisions 077, 122).

`with_http_faults(transport, plan)` wraps a `mm_adapters.topcoder.transport.Transport` (the real
`Urllib3Transport`, or a fake API) in a `FaultInjectingTransport`, which the Topcoder clients take as theirs.
Targeting ids come from the request: the
path segments (`/submissions/{id}`), the `submissionId` query parameter and the JSON body's
`submissionId`. Scope by default: 400, 404, slow commit and crash-after-POST act on writes
(POST/PUT/PATCH), the others on every call; a rule's `method` and `path` params (a path prefix after
`/v5`, e.g. `/reviews`) narrow it further.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fault_injection.botocore_faults import SimulatedCrash
from fault_injection.kinds import FaultKind
from fault_injection.plan import FaultPlan, FaultRule
from mm_adapters.topcoder.transport import HttpRequest, HttpResponse, ReadTimedOut, Transport, case_insensitive

Defer = Callable[[float, Callable[[], None]], None]  # run fn after `delay` seconds (virtual or real)

DEFAULT_COMMIT_DELAY_SECONDS = 30.0
DEFAULT_RETRY_AFTER_SECONDS = 1.0
_WRITES = frozenset({"POST", "PUT", "PATCH"})
_STATUS = {
    FaultKind.TOPCODER_5XX: 503,
    FaultKind.TOPCODER_429: 429,
    FaultKind.TOPCODER_400: 400,
    FaultKind.TOPCODER_404: 404,
    FaultKind.TOPCODER_401_REVOKED: 401,
    FaultKind.TOPCODER_401_ROTATED: 401,
}
# Asked in this order; the first that fires answers the call.
_ANY_METHOD = (
    FaultKind.TOPCODER_401_REVOKED,
    FaultKind.TOPCODER_401_ROTATED,
    FaultKind.TOPCODER_429,
    FaultKind.TOPCODER_5XX,
    FaultKind.TOPCODER_TIMEOUT,
)
_WRITE_ONLY = (FaultKind.TOPCODER_400, FaultKind.TOPCODER_404, FaultKind.TOPCODER_SLOW_COMMIT)


def _timer_defer(delay: float, fn: Callable[[], None]) -> None:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()


class FaultInjectingTransport:
    """Answers (or fails) a call as the plan says; otherwise passes it to the transport it wraps."""

    def __init__(
        self,
        plan: FaultPlan,
        inner: Transport,
        *,
        clock: Callable[[], float] = time.time,
        defer: Defer = _timer_defer,
    ) -> None:
        self._plan = plan
        self._inner = inner
        self._clock = clock
        self._defer = defer
        self._stale_tokens: set[str] = set()  # 401-rotated: tokens the server no longer accepts
        self._lock = threading.Lock()

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        method = request.method.upper()
        path = _api_path(request.url)
        ids = tuple(_request_ids(request))
        now = self._clock()

        def accept(rule: FaultRule) -> bool:
            wanted_method = str(rule.params.get("method", "")).upper()
            wanted_path = str(rule.params.get("path", ""))
            return (not wanted_method or wanted_method == method) and (not wanted_path or path.startswith(wanted_path))

        token = str(request.headers.get("Authorization", ""))
        with self._lock:
            stale = token in self._stale_tokens
        if stale:
            return json_response(401, {"message": "token expired (injected rotation)"})
        kinds = _ANY_METHOD + (_WRITE_ONLY if method in _WRITES else ())
        for kind in kinds:
            rule = self._plan.fire(kind, ids=ids, now=now, accept=accept)
            if rule is None:
                continue
            if kind is FaultKind.TOPCODER_401_ROTATED:
                with self._lock:
                    self._stale_tokens.add(token)
            if kind is FaultKind.TOPCODER_TIMEOUT:
                raise ReadTimedOut("injected read timeout (nothing committed)")
            if kind is FaultKind.TOPCODER_SLOW_COMMIT:
                self._defer(
                    rule.param("commit_delay_seconds", DEFAULT_COMMIT_DELAY_SECONDS),
                    lambda: self._commit_late(request, timeout),
                )
                raise ReadTimedOut("injected read timeout (the write commits later)")
            headers = {"Retry-After": f"{rule.param('retry_after', DEFAULT_RETRY_AFTER_SECONDS):g}"}
            return json_response(_STATUS[kind], {"message": f"injected {kind.value}"}, headers)
        response = self._inner.send(request, timeout=timeout)
        if (
            method == "POST"
            and path.startswith(_POSTS_THAT_REPORT)
            and 200 <= response.status_code < 300
            and self._plan.fire(FaultKind.CRASH_AFTER_REVIEW_POST, ids=ids, now=now, accept=accept)
        ):
            raise SimulatedCrash("injected: the function died after the review POST returned")
        return response

    def _commit_late(self, request: HttpRequest, timeout: float) -> None:
        self._inner.send(request, timeout=timeout)


def with_http_faults(
    transport: Transport,
    plan: FaultPlan,
    *,
    clock: Callable[[], float] = time.time,
    defer: Defer = _timer_defer,
) -> FaultInjectingTransport:
    """`transport` with `plan`'s Topcoder faults in front of it (pass the result to the clients as theirs)."""
    return FaultInjectingTransport(plan, transport, clock=clock, defer=defer)


# The POSTs that report a run: a v5 review and a v6 review summation (what `crash-after-review-post` follows).
_POSTS_THAT_REPORT = ("/reviews", "/reviewSummations")
_API_VERSIONS = ("/v5/", "/v6/")


def _api_path(url: str) -> str:
    """The path under the API's version prefix (`/v5/reviews` -> `/reviews`, `/v6/reviewSummations` -> ...)."""
    path = urlsplit(url).path
    for version in _API_VERSIONS:
        marker = path.find(version)
        if marker >= 0:
            return path[marker + 3 :]
    return path


def _request_ids(request: HttpRequest) -> Iterator[str]:
    parts = urlsplit(request.url)
    yield from (segment for segment in parts.path.split("/") if segment)
    yield from parse_qs(parts.query).get("submissionId", [])
    body = request.body
    if body:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return
        if isinstance(data, dict) and data.get("submissionId"):
            yield str(data["submissionId"])


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    """A JSON answer (an injected one, or a fake API's)."""
    all_headers = case_insensitive({"Content-Type": "application/json", **(headers or {})})
    return HttpResponse(status, all_headers, json.dumps(body).encode())


__all__ = [
    "DEFAULT_COMMIT_DELAY_SECONDS",
    "Defer",
    "FaultInjectingTransport",
    "json_response",
    "with_http_faults",
]
