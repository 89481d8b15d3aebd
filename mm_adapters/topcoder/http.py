"""The transport both Topcoder API clients share: errors, bounded retries, the one forced token refresh.

Failure model (decisions 030, 074, 089):
- 5xx, 429, timeouts, connection errors -> bounded retries with backoff, then `ApiTransientError`
  (the caller fails the invocation so the event is retried, and a DLQ redrive works later).
- Other 4xx -> `ApiRejectedError(status_code, body)` at once: repeating the same request cannot help.
- 401 -> one forced token refresh and one more try; a second 401 -> `ApiAuthError` (the caller treats it
  as transient: after the credentials are fixed, a redrive succeeds).
- `TokenError` from the token provider propagates unchanged (also transient for the caller).

Only idempotent methods (GET, HEAD, PUT, PATCH: repeating them leaves the same state) are repeated after an
*ambiguous* failure (5xx, read timeout, connection dropped mid-request). A POST is repeated only when it
provably never reached the server (connect errors) or was refused before processing (429); otherwise the
call raises `ApiOutcomeUnknownError` and the caller decides when to look and whether to post again.

Never logged: the token, the Authorization header, request bodies. Logged: method, path, status, latency.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from mm_adapters.topcoder.transport import (
    ConnectFailed,
    ConnectionLost,
    HttpResponse,
    ReadTimedOut,
    Transport,
    TransportError,
    Urllib3Transport,
    prepare,
)
from mm_contracts.ports import TokenProvider

MAX_ERROR_BODY_CHARS = 1000
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0
RETRY_AFTER_CAP_SECONDS = 10.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH"})
_jitter = random.SystemRandom()


class ApiError(Exception):
    """Base of the Topcoder API errors. Messages carry method, path and status, never a token."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ApiTransientError(ApiError):
    """5xx, 429, timeout or connection failure that outlasted the bounded retries: retry later."""


class ApiOutcomeUnknownError(ApiTransientError):
    """A POST failed ambiguously (5xx, read timeout, dropped connection): it may have been processed, or may
    still be. Never repeated by the client; the caller looks later, after a slow commit can have landed."""


class ApiRejectedError(ApiError):
    """The API rejected the request (4xx other than 401/429). Not retried; `body` is truncated."""

    def __init__(self, status_code: int, body: str, *, method: str = "", path: str = "") -> None:
        self.body = _truncate(body)
        where = f"{method} {path} ".lstrip() if method or path else ""
        super().__init__(f"{where}rejected with {status_code}: {self.body[:200]}", status_code=status_code)


class ApiAuthError(ApiError):
    """401 again after exactly one forced token refresh: the credentials are wrong or revoked."""


class _Ambiguous(Exception):
    """Internal: the request may or may not have been processed by the server."""

    def __init__(self, description: str, status_code: int | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.status_code = status_code


class _Retryable(Exception):
    """Internal: the request was certainly not processed (connect error, 429)."""

    def __init__(self, description: str, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.status_code = status_code
        self.retry_after = retry_after


class _Unauthorized(Exception):
    """Internal: the API answered 401."""


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_ERROR_BODY_CHARS else text[:MAX_ERROR_BODY_CHARS] + "...(truncated)"


def _retry_after(response: HttpResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_CAP_SECONDS)
    except ValueError:
        return None


def _failure(error: TransportError) -> _Retryable | _Ambiguous:
    """A POST may be repeated only when the server never saw it (no connection); every other failure is ambiguous."""
    name = type(error).__name__
    if isinstance(error, ConnectFailed):
        return _Retryable(f"connection failed ({name})")
    if isinstance(error, ConnectionLost):
        return _Ambiguous(f"connection lost ({name})")
    if isinstance(error, ReadTimedOut):  # the server may have processed the request
        return _Ambiguous(f"timed out ({name})")
    return _Ambiguous(f"request failed ({name})")


class TopcoderHttpClient:
    """Bearer-token JSON calls to one Topcoder API under `base_url`. Subclasses add the endpoints."""

    api_name: ClassVar[str] = "Topcoder API"  # the log line's prefix
    logger: ClassVar[logging.Logger] = logging.getLogger(__name__)

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        timeout_seconds: float = 10.0,
        max_retries: int = 2,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = token_provider
        self._timeout = timeout_seconds
        self._max_retries = max(0, max_retries)
        self._transport = transport if transport is not None else Urllib3Transport()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @staticmethod
    def _json(response: HttpResponse, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiTransientError(
                f"{method} {path} answered {response.status_code} with a body that is not JSON",
                status_code=response.status_code,
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        return self._json(self._call_raw(method, path, params=params, json_body=json_body), method, path)

    def _call_raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> HttpResponse:
        idempotent = method in IDEMPOTENT_METHODS
        attempts = 0
        refreshed = False  # at most one forced token refresh per call
        pending_refresh = False
        while True:
            attempts += 1
            force_refresh, pending_refresh = pending_refresh, False
            try:
                return self._send_once(method, path, params, json_body, force_refresh=force_refresh)
            except _Unauthorized:
                if refreshed:
                    raise ApiAuthError(
                        f"{method} {path} answered 401 again after a token refresh", status_code=401
                    ) from None
                # One forced refresh per call; it does not use up the retry budget.
                refreshed = True
                pending_refresh = True
                attempts -= 1
                continue
            except _Retryable as failure:
                if attempts > self._max_retries:
                    raise ApiTransientError(
                        f"{method} {path}: {failure.description} after {attempts} attempts",
                        status_code=failure.status_code,
                    ) from None
                self._backoff(attempts, failure.retry_after)
            except _Ambiguous as failure:
                if not idempotent:
                    # It may have been processed, or may still be (a slow commit): never repeated here.
                    raise ApiOutcomeUnknownError(
                        f"{method} {path}: {failure.description} (not repeated: outcome unknown)",
                        status_code=failure.status_code,
                    ) from None
                if attempts > self._max_retries:
                    raise ApiTransientError(
                        f"{method} {path}: {failure.description} after {attempts} attempts",
                        status_code=failure.status_code,
                    ) from None
                self._backoff(attempts, None)

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        delay = retry_after if retry_after is not None else min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        if retry_after is None:
            delay *= _jitter.uniform(0.5, 1.0)
        self._sleep(delay)

    def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        *,
        force_refresh: bool,
    ) -> HttpResponse:
        token = self._tokens.get_token(force_refresh=force_refresh)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "mm-processor"}
        started = time.monotonic()
        request = prepare(method, f"{self.base_url}{path}", params=params, json_body=json_body, headers=headers)
        try:
            response = self._transport.send(request, timeout=self._timeout)
        except TransportError as error:
            self._log(method, path, None, started, error=type(error).__name__)
            raise _failure(error) from None
        status = response.status_code
        self._log(method, path, status, started)
        if 200 <= status < 300:
            return response
        if status == 401:
            raise _Unauthorized
        if status == 429:
            raise _Retryable("throttled (429)", status_code=status, retry_after=_retry_after(response))
        if status >= 500:
            raise _Ambiguous(f"server error ({status})", status_code=status)
        raise ApiRejectedError(status, response.text, method=method, path=path)

    def _log(self, method: str, path: str, status: int | None, started: float, error: str | None = None) -> None:
        extra: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round((time.monotonic() - started) * 1000, 1),
        }
        if error:
            extra["error"] = error
        self.logger.info(
            "%s %s %s -> %s", self.api_name, method, path, status if status is not None else error, extra=extra
        )
