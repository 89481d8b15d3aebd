"""Client for the Topcoder Submission API v5: reviews are how a run's outcome reaches Topcoder.

Failure model (decision 030):
- 5xx, 429, timeouts, connection errors -> bounded retries with backoff, then `ApiTransientError`
  (the caller fails the invocation so the event is retried, and a DLQ redrive works later).
- Other 4xx -> `ApiRejectedError(status_code, body)` at once: repeating the same request cannot help.
- 401 -> one forced token refresh and one more try; a second 401 -> `ApiAuthError` (the caller treats it
  as transient: after the credentials are fixed, a redrive succeeds).
- `TokenError` from the token provider propagates unchanged (also transient for the caller).

POST is not idempotent. It is repeated within a call only when the request provably never reached the
server (connect errors) or the server refused it before processing (429). After an *ambiguous* failure
(5xx, read timeout, connection dropped mid-request) it is never repeated in the same call: the call raises
`ApiOutcomeUnknownError`, and the caller decides when to look (`find_reviews`) and whether to post again. A
look right after the failure proves nothing: a slow commit can still land (decisions 030, 074).

Never logged: the token, the Authorization header, request bodies. Logged: method, path, status, latency.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from mm_shared.topcoder.models import ReviewCreate
from mm_shared.topcoder.token import TokenProvider

logger = logging.getLogger(__name__)

MAX_ERROR_BODY_CHARS = 1000
PER_PAGE = 100  # the spec's maximum perPage
MAX_PAGES = 50  # 5000 reviews for one submission is far beyond any real challenge
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 4.0
RETRY_AFTER_CAP_SECONDS = 10.0
_jitter = random.SystemRandom()


class ApiError(Exception):
    """Base of the Submission API errors. Messages carry method, path and status, never a token."""

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


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_ERROR_BODY_CHARS else text[:MAX_ERROR_BODY_CHARS] + "...(truncated)"


def _is_connect_failure(error: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established (so the server never saw the request)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause: BaseException | None = error.args[0] if error.args and isinstance(error.args[0], BaseException) else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, NewConnectionError | NameResolutionError | ConnectionRefusedError)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_CAP_SECONDS)
    except ValueError:
        return None


class SubmissionApiClient:
    """Topcoder Submission API v5. `base_url` includes `/v5` (e.g. https://api.topcoder-dev.com/v5)."""

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        timeout_seconds: float = 10.0,
        max_retries: int = 2,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = token_provider
        self._timeout = timeout_seconds
        self._max_retries = max(0, max_retries)
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"SubmissionApiClient(base_url={self.base_url!r})"

    # ---- public API -------------------------------------------------------------------------------

    def create_review(self, review: ReviewCreate) -> dict[str, Any]:
        """POST /reviews; returns the created review. After an ambiguous failure it raises
        `ApiOutcomeUnknownError` and never posts again itself: calling it again is safe only after the caller
        has waited out the slow-commit window and looked (`find_reviews`)."""
        result = self._call("POST", "/reviews", json_body=review.to_wire())
        if not isinstance(result, dict):
            raise ApiTransientError("POST /reviews answered 2xx without a review object")
        return result

    def find_reviews(self, *, submission_id: str, type_id: str | None = None) -> list[dict[str, Any]]:
        """GET /reviews filtered by submission (and review type), every page.

        Complete or nothing: a look that decides whether to post must never miss a page, so more than
        MAX_PAGES pages raise `ApiTransientError` instead of returning part of the list.
        """
        params: dict[str, Any] = {"submissionId": submission_id, "perPage": PER_PAGE}
        if type_id is not None:
            params["typeId"] = type_id
        reviews: list[dict[str, Any]] = []
        page: int | None = 1
        fetched = 0
        while page is not None:
            if fetched >= MAX_PAGES:
                raise ApiTransientError(f"GET /reviews: more than {MAX_PAGES} pages for one submission")
            response = self._call_raw("GET", "/reviews", params={**params, "page": page})
            fetched += 1
            items = self._json(response, "GET", "/reviews")
            if not isinstance(items, list):
                raise ApiTransientError("GET /reviews answered 2xx without a list", status_code=response.status_code)
            reviews.extend(item for item in items if isinstance(item, dict))
            page = self._next_page(response, page)
        # Filter again client-side: a search-backed API may match loosely.
        return [
            review
            for review in reviews
            if str(review.get("submissionId")) == submission_id
            and (type_id is None or str(review.get("typeId")) == type_id)
        ]

    def get_submission(self, submission_id: str) -> dict[str, Any]:
        result = self._call("GET", f"/submissions/{submission_id}")
        if not isinstance(result, dict):
            raise ApiTransientError("GET /submissions/{id} answered 2xx without an object")
        return result

    # ---- transport --------------------------------------------------------------------------------

    @staticmethod
    def _next_page(response: requests.Response, page: int) -> int | None:
        next_page = response.headers.get("X-Next-Page", "").strip()
        if next_page:
            try:
                candidate = int(next_page)
            except ValueError:
                return None
            return candidate if candidate > page else None
        try:
            total_pages = int(response.headers.get("X-Total-Pages", "").strip() or 0)
        except ValueError:
            return None
        return page + 1 if page < total_pages else None

    @staticmethod
    def _json(response: requests.Response, method: str, path: str) -> Any:
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
    ) -> requests.Response:
        idempotent = method in {"GET", "HEAD"}
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
    ) -> requests.Response:
        token = self._tokens.get_token(force_refresh=force_refresh)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "mm-processor"}
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                f"{self.base_url}{path}",
                params=params,
                json=json_body,
                headers=headers,
                timeout=(self._timeout, self._timeout),
                allow_redirects=False,
            )
        except requests.ConnectionError as error:
            self._log(method, path, None, started, error=type(error).__name__)
            if _is_connect_failure(error):
                raise _Retryable(f"connection failed ({type(error).__name__})") from None
            raise _Ambiguous(f"connection lost ({type(error).__name__})") from None
        except requests.Timeout as error:  # a read timeout: the server may have processed the request
            self._log(method, path, None, started, error=type(error).__name__)
            raise _Ambiguous(f"timed out ({type(error).__name__})") from None
        except requests.RequestException as error:
            self._log(method, path, None, started, error=type(error).__name__)
            raise _Ambiguous(f"request failed ({type(error).__name__})") from None
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

    @staticmethod
    def _log(method: str, path: str, status: int | None, started: float, error: str | None = None) -> None:
        extra: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round((time.monotonic() - started) * 1000, 1),
        }
        if error:
            extra["error"] = error
        logger.info("Submission API %s %s -> %s", method, path, status if status is not None else error, extra=extra)


class _Unauthorized(Exception):
    """Internal: the API answered 401."""
