"""A stand-in for Topcoder on loopback: the Submission API v5 subset the pipeline calls (`v5.py`), review-api-v6
review summations (`v6.py`), and the Auth0 proxy's `POST /token` (`tokens.py`). Every request is validated (spec /
proxy contract; v6 responses too), recorded, and answered the way Topcoder would; tests can inject faults
(`faults.py`). One `loopback.LoopbackServer` serves all three on one port.

    with TopcoderStandIn() as standin:
        standin.add_submission(submission_id, challenge_id, member_id)
        ...  # point the code under test at standin.base_url (…/v5) or standin.v6_base_url (…/v6)
        ...  # and standin.token_url (…/token)
        assert standin.violations() == []
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from loopback import LoopbackServer, Request, Response
from topcoder_standin.faults import Fault, FaultBook
from topcoder_standin.records import RecordedRequest, Reply, now_iso
from topcoder_standin.spec import (
    API_PREFIX,
    V6_API_PREFIX,
    default_spec_path,
    default_v6_spec_path,
    load_openapi,
)
from topcoder_standin.tokens import TOKEN_PATH, TokenAuthority
from topcoder_standin.v5 import SubmissionApiV5, seed_review_types
from topcoder_standin.v6 import SummationsApiV6

_PHASE_FLAGS = {"EXAMPLE": "isExample", "PROVISIONAL": "isProvisional", "SYSTEM": "isFinal"}


def _under(path: str, prefix: str) -> bool:
    return path.startswith(prefix + "/") or path == prefix


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
        openapi = load_openapi(str(self.spec_path))
        self.v6_spec_path = Path(v6_spec_path) if v6_spec_path is not None else default_v6_spec_path()
        if not self.v6_spec_path.is_file():
            raise FileNotFoundError(f"review-api-v6 spec not found at {self.v6_spec_path}")
        v6_openapi = load_openapi(str(self.v6_spec_path), V6_API_PREFIX)
        self._clock = clock
        self._lock = threading.RLock()  # one lock over every table (each part takes it)
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._faults = FaultBook(self._lock, clock)
        self._tokens = TokenAuthority(
            lock=self._lock,
            clock=clock,
            lifetime_seconds=token_lifetime_seconds,
            clients=clients,
            client_scopes=client_scopes,
        )
        self._v5 = SubmissionApiV5(
            openapi,
            tokens=self._tokens,
            lock=self._lock,
            clock=clock,
            review_types=review_types if review_types is not None else seed_review_types(self.spec_path),
            max_per_page=max_per_page,
            auto_register=auto_register_submissions,
            base_url=lambda: self.base_url,
        )
        self._v6 = SummationsApiV6(
            v6_openapi,
            tokens=self._tokens,
            submissions=self._v5,
            lock=self._lock,
            clock=clock,
            max_per_page=max_per_page,
        )
        self._server = LoopbackServer(
            self._answer, name="topcoder-standin", host=host, port=port, server_version="TopcoderStandIn/1.0"
        )
        self._host = host

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> TopcoderStandIn:
        if not self._server.running:
            self._stopping.clear()
            self._server.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on an injected delay
        self._server.stop()

    def __enter__(self) -> TopcoderStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._server.running:
            raise RuntimeError("the stand-in is not running")
        return self._server.port

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

    def add_submission(
        self, submission_id: str, challenge_id: str, member_id: int | str, **fields: Any
    ) -> dict[str, Any]:
        return self._v5.add_submission(submission_id, challenge_id, member_id, **fields)

    def add_review(self, **review: Any) -> dict[str, Any]:
        """Store a review directly (no request recorded), e.g. one written by another reviewer."""
        return self._v5.add_review(review)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def reviews(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._v5.reviews]

    @property
    def review_summations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._v5.review_summations]

    def reviews_for(self, submission_id: str) -> list[dict[str, Any]]:
        return [r for r in self.reviews if r.get("submissionId") == submission_id]

    @property
    def summations(self) -> list[dict[str, Any]]:
        """The review-api-v6 summations stored, metadata included, in creation order."""
        with self._lock:
            return [dict(item) for item in self._v6.store.items]

    def summations_for(self, submission_id: str, phase: str) -> list[dict[str, Any]]:
        """A submission's summations of one phase (`EXAMPLE`, `PROVISIONAL`, `SYSTEM` or a `ScoringPhase`):
        those whose phase flag is true, as `GET /reviewSummations?<phase>=true` selects them."""
        flag = _PHASE_FLAGS[str(phase).upper()]
        return [s for s in self.summations if s["submissionId"] == submission_id and s.get(flag) is True]

    def add_summation(self, **body: Any) -> dict[str, Any]:
        """Store a summation directly (no request recorded), e.g. one the scorer posted."""
        with self._lock:
            return dict(self._v6.store.create(body, subject="seed", now=now_iso(self._clock), known_submission=True))

    def violations(self) -> list[RecordedRequest]:
        """Requests that broke the spec or the proxy contract (each was answered 400, or 401/404), and v6
        answers of the stand-in's own that broke the v6 spec."""
        return [r for r in self.requests if not r.valid or r.response_errors]

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def in_flight(self) -> int:
        """Requests received and not yet answered (a slow commit still sleeping counts)."""
        with self._lock:
            return sum(1 for r in self._requests if r.status == 0)

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
        self._faults.queue(
            Fault(method.upper(), path, status, body, dict(headers or {}), delay, after_store, times, submission_id)
        )

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
        self._faults.use_plan(plan, on_rotate)

    @property
    def slowest_delay(self) -> float:
        """The longest answer delay ever configured (a slow commit can land this long after its request)."""
        return self._faults.slowest_delay

    # ---- tokens ---------------------------------------------------------------------------------

    def expire_all_tokens(self) -> None:
        """Every token issued so far is now expired (the API answers 401); the proxy cache is emptied."""
        self._tokens.expire_all()

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
        return self._tokens.issue_direct(client_id, audience, scopes)

    # ---- requests -------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Record, validate and answer one request (the HTTP handler's whole job)."""
        record = RecordedRequest(request.method, request.path, request.query, None, True, [], at=self._clock())
        with self._lock:
            self._requests.append(record)  # recorded on receipt; `status` is filled in when answered
        try:
            reply = self._dispatch(record, request)
        except BaseException:
            record.status = 500  # answered by the HTTP server's own error path; no longer in flight
            raise
        record.status = reply.status
        return reply

    def _dispatch(self, record: RecordedRequest, request: Request) -> Reply:
        try:
            body: Any = request.json()
        except ValueError:
            body = None
        record.json = body
        method, path = request.method, request.path
        fault = self._faults.for_request(method, path, record.query, body)
        try:
            self._before_answer(fault, request)
            if path == TOKEN_PATH and method == "POST":
                return self._tokens.answer(record, body, request.body, fault)
            if _under(path, API_PREFIX):
                return self._v5.answer(record, request, body, fault)
            if _under(path, V6_API_PREFIX):
                return self._v6.answer(record, request, body, fault)
        except Reply as early:
            return early
        record.breach([f"no such endpoint: {method} {path}"])
        return Reply(404, {"message": "Not found"})

    def _before_answer(self, fault: Fault | None, request: Request) -> None:
        """What a fault does before the request is handled: rotate the token in use, hold the answer back."""
        if fault is not None and fault.rotate_token:
            fresh = self._tokens.rotate(request.headers)
            callback = self._faults.on_rotate
            if callback is not None:
                callback(fresh)
        if fault is not None and fault.delay > 0:
            self._stopping.wait(fault.delay)

    def _answer(self, request: Request) -> Response:
        reply = self.handle(request)
        if isinstance(reply.body, str):
            return Response.text(reply.status, reply.body, headers=reply.headers)
        return Response.json(
            reply.status, reply.body, content_type="application/json; charset=utf-8", headers=reply.headers
        )
