"""A stand-in for Topcoder on loopback: the Submission API v5 subset the pipeline calls, review-api-v6
review summations (`v6.py`), and the Auth0 proxy's `POST /token`. Every request is validated (spec / proxy
contract; v6 responses too), recorded, and answered the way Topcoder would; tests can inject faults.

    with TopcoderStandIn() as standin:
        standin.add_submission(submission_id, challenge_id, member_id)
        ...  # point the code under test at standin.base_url (…/v5) or standin.v6_base_url (…/v6)
        ...  # and standin.token_url (…/token)
        assert standin.violations() == []
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

from topcoder_standin import v6
from topcoder_standin.spec import (
    API_PREFIX,
    REVIEW_TYPES_FILE_NAME,
    V6_API_PREFIX,
    default_spec_path,
    default_v6_spec_path,
    load_openapi,
    validate_api_request,
    validate_api_response,
    validate_proxy_body,
)

TOKEN_PATH = "/token"
# Fault-plan defaults on the API side (the callers' read timeout is 10 s): a slow commit lands, and a timed-out
# request is answered, after the caller gave up.
DEFAULT_SLOW_COMMIT_SECONDS = 12.0
DEFAULT_TIMEOUT_DELAY = 12.0
_WRITES = frozenset({"POST", "PUT", "PATCH"})
PROXY_EXPIRY_MARGIN_SECONDS = 60  # the proxy answers expires_in = exp - 60 - now
# Keys the API's own validation (joi) accepts on POST /reviews; it rejects any other key.
_REVIEW_KEYS = frozenset(
    {"score", "typeId", "reviewerId", "scoreCardId", "submissionId", "status", "metadata", "reviewedDate"}
)
_SUMMATION_KEYS = frozenset(
    {"submissionId", "aggregateScore", "scoreCardId", "isPassing", "isFinal", "metadata", "reviewedDate"}
)
# The scopes a minted M2M token carries unless the test says otherwise (`client_scopes`, `issue_token`): the
# v5 calls' (not checked by the v5 side) and the v6 summation scopes (checked per route).
V5_M2M_SCOPES = ("read:submission", "read:review_type", "create:review", "read:review", "update:review")
DEFAULT_M2M_SCOPES = (*V5_M2M_SCOPES, *v6.SUMMATION_SCOPES)
_PHASE_FLAGS = {"EXAMPLE": "isExample", "PROVISIONAL": "isProvisional", "SYSTEM": "isFinal"}


def _now_iso(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


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


@dataclass
class _Fault:
    method: str
    path: str
    status: int | None  # None: answer normally (after `delay`)
    body: Any
    headers: dict[str, str]
    delay: float
    after_store: bool  # process (store) first, then answer `status`: a commit-then-fail server
    remaining: int
    submission_id: str | None = None  # only requests about this submission (body, query or path); None: any
    rotate_token: bool = False  # revoke the presented token and issue a new one first (topcoder-401-rotated)


@dataclass
class _Issued:
    client_key: str
    exp: float
    subject: str
    scopes: frozenset[str] = frozenset()


@dataclass
class _State:
    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    review_summations: list[dict[str, Any]] = field(default_factory=list)
    review_types: list[dict[str, Any]] = field(default_factory=list)
    summations: v6.SummationStore = field(default_factory=v6.SummationStore)  # review-api-v6
    tokens: dict[str, _Issued] = field(default_factory=dict)
    proxy_cache: dict[str, str] = field(default_factory=dict)  # client key -> token (the proxy's Redis)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)


class _Reply(Exception):
    """Internal: answer with this status and JSON body."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class TopcoderStandIn:
    """Loopback Topcoder: Submission API v5 (`base_url`), review-api-v6 summations (`v6_base_url`) and the
    Auth0 proxy (`token_url`)."""

    def __init__(
        self,
        spec_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        review_types: list[dict[str, Any]] | None = None,
        token_lifetime_seconds: int = 86_400,  # Auth0's default M2M token lifetime
        clients: Mapping[str, str] | None = None,  # client_id -> client_secret; None accepts any
        max_per_page: int = 100,  # the API's MAX_PAGE_SIZE; lower it to exercise pagination
        auto_register_submissions: bool = False,  # accept reviews for unknown submissions (manual runs)
        clock: Callable[[], float] = time.time,
        v6_spec_path: str | Path | None = None,
        # client_id -> the scopes Auth0 grants that client (its M2M application's grants); absent: all of ours
        client_scopes: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.spec_path = Path(spec_path) if spec_path is not None else default_spec_path()
        if not self.spec_path.is_file():
            raise FileNotFoundError(
                f"Topcoder spec not found at {self.spec_path}; set MM_TOPCODER_SPEC or pass spec_path"
            )
        self._openapi = load_openapi(str(self.spec_path))
        self.v6_spec_path = Path(v6_spec_path) if v6_spec_path is not None else default_v6_spec_path()
        if not self.v6_spec_path.is_file():
            raise FileNotFoundError(f"review-api-v6 spec not found at {self.v6_spec_path}")
        self._v6_openapi = load_openapi(str(self.v6_spec_path), V6_API_PREFIX)
        self._client_scopes = {key: tuple(value) for key, value in (client_scopes or {}).items()}
        self._host = host
        self._port = port
        self._lifetime = token_lifetime_seconds
        self._clients = dict(clients) if clients is not None else None
        self._max_per_page = max_per_page
        self._auto_register = auto_register_submissions
        self._clock = clock
        self._signing_key = secrets.token_bytes(32)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._state = _State(review_types=review_types if review_types is not None else self._seed_review_types())
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._slowest_delay = 0.0
        self._plan: Any = None  # a fault_injection.FaultPlan whose HTTP kinds this API plays (use_fault_plan)
        self._on_rotate: Callable[[str], None] | None = None
        self._revoked: set[str] = set()

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> TopcoderStandIn:
        if self._server is not None:
            return self
        standin = self

        class Handler(_Handler):
            owner = standin

        self._stopping.clear()
        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns promptly
            name="topcoder-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on an injected delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> TopcoderStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The Submission API base, `/v5` included (what SUBMISSION_API_URL holds)."""
        return f"{self.root_url}{API_PREFIX}"

    @property
    def v6_base_url(self) -> str:
        """review-api-v6's base, `/v6` included (what REVIEW_API_URL holds)."""
        return f"{self.root_url}{V6_API_PREFIX}"

    @property
    def token_url(self) -> str:
        """The Auth0 proxy endpoint (what AUTH0_PROXY_URL holds)."""
        return f"{self.root_url}{TOKEN_PATH}"

    # ---- seeding and inspection -----------------------------------------------------------------

    def _seed_review_types(self) -> list[dict[str, Any]]:
        seed = self.spec_path.parent / REVIEW_TYPES_FILE_NAME
        if not seed.is_file():
            return []
        data = json.loads(seed.read_text(encoding="utf-8"))
        return [dict(item) for item in data]

    def add_submission(
        self, submission_id: str, challenge_id: str, member_id: int | str, **fields: Any
    ) -> dict[str, Any]:
        now = _now_iso(self._clock)
        submission = {
            "id": submission_id,
            "type": "Contest Submission",
            "url": f"https://example.invalid/submissions/{submission_id}.zip",
            "memberId": member_id,
            "challengeId": challenge_id,
            "created": now,
            "updated": now,
            "createdBy": "standin",
            "updatedBy": "standin",
            **fields,
        }
        with self._lock:
            self._state.submissions[submission_id] = submission
        return submission

    def add_review(self, **review: Any) -> dict[str, Any]:
        """Store a review directly (no request recorded), e.g. one written by another reviewer."""
        stored = self._new_review(review, subject="seed")
        with self._lock:
            self._state.reviews.append(stored)
        return stored

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    @property
    def reviews(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._state.reviews]

    @property
    def review_summations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._state.review_summations]

    def reviews_for(self, submission_id: str) -> list[dict[str, Any]]:
        return [r for r in self.reviews if r.get("submissionId") == submission_id]

    @property
    def summations(self) -> list[dict[str, Any]]:
        """The review-api-v6 summations stored, metadata included, in creation order."""
        with self._lock:
            return [dict(item) for item in self._state.summations.items]

    def summations_for(self, submission_id: str, phase: str) -> list[dict[str, Any]]:
        """A submission's summations of one phase (`EXAMPLE`, `PROVISIONAL`, `SYSTEM` or a `ScoringPhase`):
        those whose phase flag is true, as `GET /reviewSummations?<phase>=true` selects them."""
        flag = _PHASE_FLAGS[str(phase).upper()]
        return [s for s in self.summations if s["submissionId"] == submission_id and s.get(flag) is True]

    def add_summation(self, **body: Any) -> dict[str, Any]:
        """Store a summation directly (no request recorded), e.g. one the scorer posted."""
        with self._lock:
            return dict(
                self._state.summations.create(body, subject="seed", now=_now_iso(self._clock), known_submission=True)
            )

    def violations(self) -> list[RecordedRequest]:
        """Requests that broke the spec or the proxy contract (each was answered 400, or 401/404), and v6
        answers of the stand-in's own that broke the v6 spec."""
        return [r for r in self.requests if not r.valid or r.response_errors]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    # ---- fault injection ------------------------------------------------------------------------

    def respond_with(
        self,
        method: str,
        path: str,
        *,
        status: int | None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
        after_store: bool = False,
        submission_id: str | None = None,
    ) -> None:
        """The next `times` requests to `method path` (path without query, e.g. `/v5/reviews`) are still
        validated and recorded, then answered with `status`/`body` after `delay` seconds. `status=None`
        answers normally after the delay; `after_store=True` stores first and then fails. With
        `submission_id`, only requests about that submission count (its id in the body, query or path)."""
        with self._lock:
            self._state.faults.append(
                _Fault(
                    method.upper(), path, status, body, dict(headers or {}), delay, after_store, times, submission_id
                )
            )
            self._slowest_delay = max(self._slowest_delay, delay)

    def fail_next(
        self, method: str, path: str, *, status: int = 500, times: int = 1, body: Any = None, **options: Any
    ) -> None:
        if body is None:
            body = {"message": f"injected failure {status}"}
        self.respond_with(method, path, status=status, body=body, times=times, **options)

    def delay_next(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        self.respond_with(method, path, status=None, delay=seconds, times=times)

    def use_fault_plan(self, plan: Any, *, on_rotate: Callable[[str], None] | None = None) -> None:
        """Play the Topcoder faults of a `fault_injection.FaultPlan` on the API side (decision 079), for every
        client (the completion function and the scorer alike): `topcoder-5xx` (503), `topcoder-429`
        (Retry-After), `topcoder-timeout` (answers 504 only after `delay_seconds`, past the client's read
        timeout; nothing stored), `topcoder-slow-commit` (a write stored and answered `commit_delay_seconds`
        late), `topcoder-401-rotated` (the token in use is revoked, a new one issued and handed to
        `on_rotate`, as an operator rotating the secret), `topcoder-401-revoked`, `topcoder-400` and
        `topcoder-404` (writes only; nothing stored). Rules may narrow by the params `method` and `path`
        (a prefix after `/v5` or `/v6`). `crash-after-review-post` happens in the caller, not here."""
        with self._lock:
            self._plan = plan
            self._on_rotate = on_rotate
            for rule in plan.rules:
                name = str(rule.kind.value)
                if name == "topcoder-slow-commit":
                    self._slowest_delay = max(
                        self._slowest_delay, rule.param("commit_delay_seconds", DEFAULT_SLOW_COMMIT_SECONDS)
                    )
                elif name == "topcoder-timeout":
                    self._slowest_delay = max(self._slowest_delay, rule.param("delay_seconds", DEFAULT_TIMEOUT_DELAY))

    def _plan_fault(self, method: str, path: str, query: Mapping[str, list[str]], body: Any) -> _Fault | None:
        """The plan's fault for this API request, as a one-off `_Fault` (None: answer normally)."""
        plan = self._plan
        prefix = next((p for p in (API_PREFIX, V6_API_PREFIX) if path.startswith(p + "/") or path == p), None)
        if plan is None or prefix is None:
            return None
        from fault_injection import FaultKind

        route = path[len(prefix) :]
        ids = [segment for segment in path.split("/") if segment]
        ids += [*query.get("submissionId", [])]
        if isinstance(body, dict) and body.get("submissionId") is not None:
            ids.append(str(body["submissionId"]))

        def accept(rule: Any) -> bool:
            wanted_method = str(rule.params.get("method", "")).upper()
            wanted_path = str(rule.params.get("path", ""))
            return (not wanted_method or wanted_method == method) and (not wanted_path or route.startswith(wanted_path))

        kinds = [
            FaultKind.TOPCODER_401_REVOKED,
            FaultKind.TOPCODER_401_ROTATED,
            FaultKind.TOPCODER_429,
            FaultKind.TOPCODER_5XX,
            FaultKind.TOPCODER_TIMEOUT,
        ]
        if method in _WRITES:
            kinds += [FaultKind.TOPCODER_400, FaultKind.TOPCODER_404, FaultKind.TOPCODER_SLOW_COMMIT]
        for kind in kinds:
            rule = plan.fire(kind, ids=ids, now=self._clock(), accept=accept)
            if rule is None:
                continue
            message = {"message": f"injected {kind.value}"}
            if kind is FaultKind.TOPCODER_SLOW_COMMIT:
                delay = rule.param("commit_delay_seconds", DEFAULT_SLOW_COMMIT_SECONDS)
                return _Fault(method, path, None, None, {}, delay, False, 1)
            if kind is FaultKind.TOPCODER_TIMEOUT:
                delay = rule.param("delay_seconds", DEFAULT_TIMEOUT_DELAY)
                return _Fault(method, path, 504, message, {}, delay, False, 1)
            if kind is FaultKind.TOPCODER_429:
                retry_after = {"Retry-After": f"{rule.param('retry_after', 1.0):g}"}
                return _Fault(method, path, 429, message, retry_after, 0.0, False, 1)
            if kind is FaultKind.TOPCODER_401_ROTATED:
                return _Fault(method, path, 401, {"message": "Invalid Token."}, {}, 0.0, False, 1, rotate_token=True)
            status = {
                FaultKind.TOPCODER_401_REVOKED: 401,
                FaultKind.TOPCODER_5XX: 503,
                FaultKind.TOPCODER_400: 400,
                FaultKind.TOPCODER_404: 404,
            }[kind]
            return _Fault(
                method, path, status, message if status != 401 else {"message": "Invalid Token."}, {}, 0.0, False, 1
            )
        return None

    def _rotate(self, headers: Mapping[str, str]) -> None:
        """topcoder-401-rotated: the presented token stops working; a new one goes to the secret's owner."""
        _, _, token = str(headers.get("Authorization") or "").partition(" ")
        with self._lock:
            issued = self._state.tokens.get(token.strip())
            self._revoked.add(token.strip())
            fresh = self._issue(
                f"rotated-{uuid.uuid4().hex}",
                issued.subject.split("@")[0] if issued else "x",
                "",
                issued.scopes if issued else DEFAULT_M2M_SCOPES,
            )
            callback = self._on_rotate
        if callback is not None:
            callback(fresh)

    def expire_all_tokens(self) -> None:
        """Every token issued so far is now expired (the API answers 401); the proxy cache is emptied."""
        with self._lock:
            past = self._clock() - 1
            for issued in self._state.tokens.values():
                issued.exp = past
            self._state.proxy_cache.clear()

    def issue_token(
        self,
        client_id: str = "standin-client",
        audience: str = "https://m2m.topcoder-dev.com/",
        *,
        scopes: Iterable[str] | None = None,
    ) -> str:
        """A valid token without going through the proxy (for tests of the API alone). `scopes`: the `scope`
        claim (default: the v5 and the v6 summation scopes); an empty list mints a token without the claim,
        which review-api-v6 treats as a user's, not a machine's."""
        with self._lock:
            granted = tuple(scopes) if scopes is not None else self._scopes_of(client_id)
            return self._issue(f"auth0-{client_id}-direct", client_id, audience, granted)

    def _scopes_of(self, client_id: str) -> tuple[str, ...]:
        return self._client_scopes.get(client_id, DEFAULT_M2M_SCOPES)

    @property
    def slowest_delay(self) -> float:
        """The longest answer delay ever configured (a slow commit can land this long after its request)."""
        with self._lock:
            return self._slowest_delay

    def in_flight(self) -> int:
        """Requests received and not yet answered (a slow commit still sleeping counts)."""
        with self._lock:
            return sum(1 for r in self._state.requests if r.status == 0)

    def _take_fault(self, method: str, path: str, submission_id: str | None = None) -> _Fault | None:
        with self._lock:
            for fault in self._state.faults:
                if fault.submission_id is not None and fault.submission_id != submission_id:
                    continue
                if fault.method == method and fault.path == path and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._state.faults.remove(fault)
                    return fault
        return None

    # ---- tokens ---------------------------------------------------------------------------------

    def _issue(self, client_key: str, client_id: str, audience: str, scopes: Iterable[str]) -> str:
        now = self._clock()
        exp = math.floor(now) + self._lifetime
        subject = f"{client_id}@clients"
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "iss": "https://topcoder-standin.invalid/",
            "sub": subject,
            "aud": audience,
            "iat": math.floor(now),
            "exp": exp,
            "gty": "client-credentials",
            "jti": uuid.uuid4().hex,
        }
        granted = tuple(scopes)
        if granted:
            claims["scope"] = " ".join(granted)  # Auth0's M2M claim: space-separated
        payload = _b64url(json.dumps(claims).encode())
        signature = _b64url(hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        token = f"{header}.{payload}.{signature}"
        self._state.tokens[token] = _Issued(client_key, exp, subject, frozenset(granted))
        self._state.proxy_cache[client_key] = token
        return token

    def _handle_token(self, body: dict[str, Any]) -> tuple[int, Any]:
        client_id = str(body["client_id"])
        if self._clients is not None and self._clients.get(client_id) != body["client_secret"]:
            # The proxy passes Auth0's answer through.
            return 401, {"error": "access_denied", "error_description": "Unauthorized"}
        target = body.get("audience") or body.get("scope") or ""
        digest = hashlib.md5(  # noqa: S324 - mirrors the proxy's cache key, not a security function
            json.dumps([client_id, body["client_secret"], target]).encode()
        ).hexdigest()
        client_key = f"{body.get('provider', 'auth0')}-{client_id}-{digest}"
        now = self._clock()
        with self._lock:
            cached = None if body.get("fresh_token") else self._state.proxy_cache.get(client_key)
            issued = self._state.tokens.get(cached) if cached else None
            if cached and issued and issued.exp - PROXY_EXPIRY_MARGIN_SECONDS - now > 0:
                token = cached
            else:
                token = self._issue(client_key, client_id, str(target), self._scopes_of(client_id))
                issued = self._state.tokens[token]
            assert issued is not None
            expires_in = math.floor(issued.exp - PROXY_EXPIRY_MARGIN_SECONDS - now)
        return 200, {"access_token": token, "expires_in": expires_in}

    def _authorized(self, headers: Mapping[str, str]) -> str | None:
        """The token's subject if the bearer token was issued here and is not expired."""
        issued = self._bearer(headers)
        return issued.subject if issued is not None else None

    def _bearer(self, headers: Mapping[str, str]) -> _Issued | None:
        """The bearer token's record if it was issued here, is not expired and not revoked."""
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        with self._lock:
            issued = self._state.tokens.get(token.strip())
            if issued is None or issued.exp <= self._clock() or token.strip() in self._revoked:
                return None
            return issued

    # ---- API ------------------------------------------------------------------------------------

    def _new_review(self, body: Mapping[str, Any], *, subject: str) -> dict[str, Any]:
        now = _now_iso(self._clock)
        review = {
            "id": str(uuid.uuid4()),
            "created": now,
            "updated": now,
            "createdBy": subject,
            "updatedBy": subject,
            "status": "completed",  # the API's default when none is sent
        }
        review.update(body)
        return review

    def _check_keys(self, body: Mapping[str, Any], allowed: frozenset[str]) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _Reply(400, {"message": "; ".join(f'"{k}" is not allowed' for k in unknown)})

    def _create_review(self, body: dict[str, Any], subject: str) -> dict[str, Any]:
        with self._lock:
            types = {t["id"] for t in self._state.review_types}
            if body["typeId"] not in types:
                raise _Reply(400, {"message": f"Review type with ID = {body['typeId']} does not exist"})
            submission_id = str(body["submissionId"])
            if submission_id not in self._state.submissions:
                if not self._auto_register:
                    raise _Reply(404, {"message": f"Submission with ID = {submission_id} is not found"})
                self.add_submission(submission_id, "unknown", "unknown")
            review = self._new_review(body, subject=subject)
            self._state.reviews.append(review)
            return review

    def _create_review_summation(self, body: dict[str, Any], subject: str) -> dict[str, Any]:
        with self._lock:
            submission_id = str(body["submissionId"])
            if submission_id not in self._state.submissions and not self._auto_register:
                raise _Reply(404, {"message": f"Submission with ID = {submission_id} is not found"})
            summation = self._new_review(body, subject=subject)
            summation.pop("status")
            self._state.review_summations.append(summation)
            return summation

    def _paginate(self, items: list[dict[str, Any]], query: Mapping[str, list[str]], path: str) -> _Reply:
        page = int(query.get("page", ["1"])[0])
        per_page = min(int(query.get("perPage", ["20"])[0]), self._max_per_page)
        total = len(items)
        total_pages = max(1, math.ceil(total / per_page)) if total else 0
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(total),
            "X-Total-Pages": str(total_pages),
        }
        if page < total_pages:
            headers["X-Next-Page"] = str(page + 1)
            headers["Link"] = f'<{self.base_url}{path}?page={page + 1}&perPage={per_page}>; rel="next"'
        if page > 1:
            headers["X-Prev-Page"] = str(page - 1)
        return _Reply(200, chunk, headers)

    @staticmethod
    def _matches(item: Mapping[str, Any], query: Mapping[str, list[str]], fields: tuple[str, ...]) -> bool:
        return all(str(item.get(name)).lower() == query[name][0].lower() for name in fields if name in query)

    def _route_api(self, method: str, path: str, query: Mapping[str, list[str]], body: Any, subject: str) -> _Reply:
        route = path[len(API_PREFIX) :]
        if method == "POST" and route == "/reviews":
            self._check_keys(body, _REVIEW_KEYS)
            if not _is_uuid(body.get("typeId")):
                raise _Reply(400, {"message": '"typeId" must be a valid GUID'})
            review = self._create_review(body, subject)
            return _Reply(200, review, {"Location": f"{self.base_url}/reviews/{review['id']}"})
        if method == "GET" and route == "/reviews":
            with self._lock:
                items = [dict(r) for r in self._state.reviews]
            fields = ("submissionId", "typeId", "reviewerId", "scoreCardId", "status", "score")
            return self._paginate([r for r in items if self._matches(r, query, fields)], query, route)
        if method == "GET" and route == "/reviewTypes":
            with self._lock:
                items = [dict(t) for t in self._state.review_types]
            return self._paginate([t for t in items if self._matches(t, query, ("name", "isActive"))], query, route)
        if method == "GET" and route.startswith("/submissions/") and route.count("/") == 2:
            submission_id = route.rsplit("/", 1)[1]
            with self._lock:
                submission = self._state.submissions.get(submission_id)
            if submission is None:
                raise _Reply(404, {"message": f"Submission with ID = {submission_id} is not found"})
            return _Reply(200, dict(submission))
        if method == "POST" and route == "/reviewSummations":
            self._check_keys(body, _SUMMATION_KEYS)
            return _Reply(200, self._create_review_summation(body, subject))
        # In the spec but not part of what the pipeline calls.
        raise _Reply(501, {"message": f"{method} {route} is not implemented by the stand-in"})

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes | None) -> _Reply:
        """Validate, record and answer one request (the HTTP handler's whole job)."""
        parts = urlsplit(raw_path)
        path, query_string = parts.path, parts.query
        query = parse_qs(query_string)
        record = RecordedRequest(method, path, query, None, True, [], at=self._clock())
        with self._lock:
            self._state.requests.append(record)  # recorded on receipt; `status` is filled in when answered
        try:
            try:
                body: Any = json.loads(raw_body) if raw_body else None
            except ValueError:
                body = None
            record.json = body
            fault = self._plan_fault(method, path, query, body) or self._take_fault(
                method, path, _submission_of(path, query, body)
            )
            if fault is not None and fault.rotate_token:
                self._rotate(headers)
            if fault is not None and fault.delay > 0:
                self._stopping.wait(fault.delay)
            if path == TOKEN_PATH and method == "POST":
                reply = self._token_request(record, body, raw_body, fault)
            elif path.startswith(API_PREFIX + "/") or path == API_PREFIX:
                reply = self._api_request(record, method, path, query_string, query, headers, raw_body, body, fault)
            elif path.startswith(V6_API_PREFIX + "/") or path == V6_API_PREFIX:
                reply = self._v6_request(record, method, path, query_string, query, headers, raw_body, body, fault)
            else:
                record.valid, record.errors = False, [f"no such endpoint: {method} {path}"]
                reply = _Reply(404, {"message": "Not found"})
        except _Reply as early:
            reply = early
        except BaseException:
            record.status = 500  # answered by the HTTP server's own error path; no longer in flight
            raise
        record.status = reply.status
        return reply

    def _token_request(
        self, record: RecordedRequest, body: Any, raw_body: bytes | None, fault: _Fault | None
    ) -> _Reply:
        if isinstance(body, dict) and "client_secret" in body:
            record.json = {**body, "client_secret": "<redacted>"}
        if not raw_body:
            return _Reply(500, "Empty body.")
        errors = validate_proxy_body(body)
        if errors:
            record.valid, record.errors = False, errors
            return _Reply(400, f"Payload validation error: {errors}")
        if fault is not None and fault.status is not None:
            return _Reply(fault.status, fault.body, fault.headers)
        status, payload = self._handle_token(body)
        return _Reply(status, payload)

    def _api_request(
        self,
        record: RecordedRequest,
        method: str,
        path: str,
        query_string: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        raw_body: bytes | None,
        body: Any,
        fault: _Fault | None,
    ) -> _Reply:
        result = validate_api_request(self._openapi, method, path, query_string, headers, raw_body)
        record.valid, record.errors = result.valid, list(result.errors)
        if not result.route_found:
            return _Reply(404, {"message": f"{method} {path} is not an endpoint of the v5 spec"})
        subject = self._authorized(headers)
        record.authorized = subject is not None
        if subject is None:
            # Authentication runs before validation in the real API.
            return _Reply(401, {"message": "Invalid Token."})
        if not result.valid:
            return _Reply(400, {"message": "; ".join(result.errors)})
        if fault is not None and fault.status is not None and not fault.after_store:
            return _Reply(fault.status, fault.body, fault.headers)  # failed before doing anything
        try:
            reply = self._route_api(method, path, query, body, subject)
            if fault is not None and fault.status is not None and fault.after_store:
                return _Reply(fault.status, fault.body, fault.headers)  # processed, then failed
            return reply
        except _Reply as reply:
            if reply.status == 400:
                # The API's own (joi) rules beyond the spec: also a contract breach by the client.
                record.valid = False
                record.errors.append(str(reply.body.get("message") if isinstance(reply.body, dict) else reply.body))
            return reply

    def _v6_request(
        self,
        record: RecordedRequest,
        method: str,
        path: str,
        query_string: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        raw_body: bytes | None,
        body: Any,
        fault: _Fault | None,
    ) -> _Reply:
        """review-api-v6: authenticate (401), check the route's scope (403), validate (400), in the order of
        its guards and pipes; then answer, and check the answer against the v6 spec too."""
        reply = self._v6_answer(record, method, path, query_string, query, headers, raw_body, body, fault)
        record.response_errors = validate_api_response(
            self._v6_openapi,
            method,
            path,
            query_string,
            headers,
            raw_body,
            status=reply.status,
            response_body=reply.body,
            response_headers=reply.headers,
        )
        return reply

    def _v6_answer(
        self,
        record: RecordedRequest,
        method: str,
        path: str,
        query_string: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        raw_body: bytes | None,
        body: Any,
        fault: _Fault | None,
    ) -> _Reply:
        result = validate_api_request(self._v6_openapi, method, path, query_string, headers, raw_body)
        record.valid, record.errors = result.valid, list(result.errors)
        route = path[len(V6_API_PREFIX) :]
        scope = v6.required_scope(method, route)
        if not result.route_found or scope is None:
            record.valid = False
            record.errors = record.errors or [f"{method} {path} is not served by the stand-in"]
            return _Reply(404, {"message": f"Cannot {method} {path}", "statusCode": 404})
        issued = self._bearer(headers)
        record.authorized = issued is not None
        if issued is None:
            return _Reply(401, {"message": "Missing or invalid token!", "statusCode": 401})
        if scope not in v6.expand_scopes(issued.scopes):
            # A valid request with too little grant is the caller's configuration, not a contract breach.
            return _Reply(403, {"message": f"Forbidden: requires scope {scope}", "statusCode": 403})
        if not result.valid:
            return _Reply(400, {"message": "; ".join(result.errors), "statusCode": 400})
        if fault is not None and fault.status is not None and not fault.after_store:
            return _Reply(fault.status, fault.body, fault.headers)  # failed before doing anything
        try:
            reply = self._route_v6(method, route, query, body, issued)
        except v6.V6Error as refused:
            if refused.status == 400:  # the API's own rules beyond the spec: also a breach by the client
                record.valid = False
                record.errors.append(str(refused))
            return _Reply(refused.status, refused.body)
        if fault is not None and fault.status is not None and fault.after_store:
            return _Reply(fault.status, fault.body, fault.headers)  # processed, then failed
        return reply

    def _route_v6(self, method: str, route: str, query: Mapping[str, list[str]], body: Any, issued: _Issued) -> _Reply:
        now = _now_iso(self._clock)
        machine = bool(issued.scopes)  # jwt.service.ts: a token with a scope claim is a machine's
        with self._lock:
            store = self._state.summations
            if method == "GET":
                include_metadata = machine and query.get("metadata", [""])[0].lower() == "true"
                challenge_of = {sid: str(sub.get("challengeId")) for sid, sub in self._state.submissions.items()}
                found = store.search(query, challenge_of, max_per_page=self._max_per_page)
                found["data"] = [v6.public_view(item, include_metadata=include_metadata) for item in found["data"]]
                return _Reply(200, found)
            known = self._auto_register or str(body.get("submissionId")) in self._state.submissions
            if method == "POST":
                item = store.create(body, subject=issued.subject, now=now, known_submission=known)
                return _Reply(201, v6.public_view(item, include_metadata=False))
            item = store.update(
                v6.summation_id_of(route), body, subject=issued.subject, now=now, known_submission=known
            )
            return _Reply(200, v6.public_view(item, include_metadata=False))


def _submission_of(path: str, query: Mapping[str, list[str]], body: Any) -> str | None:
    """The submission a request is about: `submissionId` in the JSON body or the query, or the path's id."""
    if isinstance(body, dict) and body.get("submissionId") is not None:
        return str(body["submissionId"])
    if query.get("submissionId"):
        return query["submissionId"][0]
    prefix = f"{API_PREFIX}/submissions/"
    if path.startswith(prefix):
        return path[len(prefix) :].split("/", 1)[0] or None
    return None


class _Handler(BaseHTTPRequestHandler):
    owner: TopcoderStandIn
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms stalls
    server_version = "TopcoderStandIn/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: requests are recorded, not printed (and never with their Authorization header)."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else None
        headers = CaseInsensitiveDict(self.headers.items())
        reply = self.owner.handle(self.command, self.path, headers, raw_body)
        if isinstance(reply.body, str):
            payload, content_type = reply.body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(reply.body).encode("utf-8"), "application/json; charset=utf-8"
        try:
            self.send_response(reply.status, HTTPStatus(reply.status).phrase if reply.status in _PHRASES else None)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout): nothing to answer

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


_PHRASES = {status.value for status in HTTPStatus}
