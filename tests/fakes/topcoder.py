"""Fake Topcoder APIs as transports (`mm_adapters.topcoder.transport.Transport`), and a token provider.

`FakeSubmissionApi` (v5 reviews) is the transport the real `SubmissionApiClient` is given, so the client's
own retry, refresh and look-before-post logic runs against it. It records every review it commits (with the
virtual instant), answers `GET /reviews` by submission and type with paging, and accepts only the tokens it issued.

`FakeReviewSummationsApi` (review-api-v6 summations) does the same for `ReviewSummationsClient`: it keeps the
stand-in's own summations table (`topcoder_standin.v6.SummationStore`: create, list with the phase filters and
`metadata=true`, patch), validates every request and answer against `review-api-v6-summations.yaml` (a request
that breaks it is answered 400 and kept in `violations`), and records every write with its virtual instant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fault_injection.http_faults import json_response
from mm_adapters.topcoder.transport import HttpRequest, HttpResponse
from mm_contracts.models.phase import ScoringPhase

BASE_URL = "https://api.topcoder.fake/v5"
V6_BASE_URL = "https://api.topcoder.fake/v6"
PER_PAGE_MAX = 100


@dataclass(frozen=True)
class CommittedReview:
    review: dict[str, Any]
    at: float

    @property
    def submission_id(self) -> str:
        return str(self.review.get("submissionId"))


class FakeTokenProvider:
    """Issues `token-1`; a forced refresh issues the next one (what a rotated M2M token needs)."""

    def __init__(self) -> None:
        self.generation = 1
        self.refreshes = 0

    @property
    def current(self) -> str:
        return f"token-{self.generation}"

    def get_token(self, force_refresh: bool = False) -> str:
        if force_refresh:
            self.generation += 1
            self.refreshes += 1
        return self.current


class FakeSubmissionApi:
    def __init__(self, clock: Callable[[], float], *, accept_token: Callable[[str], bool] | None = None) -> None:
        self._clock = clock
        self._accept = accept_token or (lambda token: token.startswith("token-"))
        self.reviews: list[CommittedReview] = []
        self.requests: list[tuple[str, str]] = []

    def reviews_of(self, submission_id: str) -> list[CommittedReview]:
        return [r for r in self.reviews if r.submission_id == submission_id]

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        method = request.method.upper()
        parts = urlsplit(request.url)
        path = parts.path.split("/v5", 1)[-1]
        self.requests.append((method, path))
        token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        if not self._accept(token):
            return json_response(401, {"message": "Invalid token"})
        if method == "POST" and path == "/reviews":
            body = json.loads(request.body or b"{}")
            review = {**body, "id": str(uuid.uuid4()), "createdBy": "mm-processor", "created": self._clock()}
            self.reviews.append(CommittedReview(review, self._clock()))
            return json_response(200, review)
        if method == "GET" and path == "/reviews":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            found = [
                r.review
                for r in self.reviews
                if r.submission_id == query.get("submissionId")
                and ("typeId" not in query or str(r.review.get("typeId")) == query["typeId"])
            ]
            per_page = min(PER_PAGE_MAX, int(query.get("perPage", 20)))
            page = int(query.get("page", 1))
            pages = max(1, -(-len(found) // per_page))
            chunk = found[(page - 1) * per_page : page * per_page]
            return json_response(200, chunk, {"X-Total-Pages": str(pages), "X-Page": str(page)})
        if method == "GET" and path.startswith("/submissions/"):
            return json_response(200, {"id": path.rpartition("/")[2]})
        return json_response(404, {"message": f"no route {method} {path}"})


@dataclass(frozen=True)
class SummationWrite:
    """One committed POST or PATCH of a summation (the body as sent)."""

    method: str
    summation_id: str
    body: dict[str, Any]
    at: float


class FakeReviewSummationsApi:
    """review-api-v6 `/reviewSummations` in memory, with the stand-in's semantics and the v6 spec's checks."""

    def __init__(self, clock: Callable[[], float], *, accept_token: Callable[[str], bool] | None = None) -> None:
        # Imported here: the stand-in's spec loader pulls in openapi-core, which only v6 users need.
        from topcoder_standin import spec, v6

        self._spec = spec
        self._v6 = v6
        self._openapi = spec.load_openapi(str(spec.default_v6_spec_path()), spec.V6_API_PREFIX)
        self._clock = clock
        self._accept = accept_token or (lambda token: token.startswith("token-"))
        self.store = v6.SummationStore()
        self.writes: list[SummationWrite] = []
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []  # requests (and answers) that broke the v6 spec

    def _now(self) -> str:
        return datetime.fromtimestamp(self._clock(), tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def summations_of(self, submission_id: str, phase: ScoringPhase | str | None = None) -> list[dict[str, Any]]:
        """A submission's summations (of one phase: its flag true, as `?<phase>=true` selects), metadata included."""
        flag = ScoringPhase(phase).summation_flag if phase else None
        return [
            dict(item)
            for item in self.store.items
            if item["submissionId"] == submission_id and (flag is None or item.get(flag) is True)
        ]

    def add_summation(self, **body: Any) -> dict[str, Any]:
        """Store a summation directly (no request, no fault): what a scorer posts for itself."""
        return self.store.create(body, subject="scorer", now=self._now(), known_submission=True)

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        method = request.method.upper()
        parts = urlsplit(request.url)
        path = parts.path
        route = path.split(self._spec.V6_API_PREFIX, 1)[-1]
        self.requests.append((method, route))
        raw = request.body
        headers = {str(k): str(v) for k, v in request.headers.items()}
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        if not self._accept(token):
            return json_response(401, {"message": "Invalid token", "statusCode": 401})
        checked = self._spec.validate_api_request(self._openapi, method, path, parts.query, headers, raw)
        if not checked.valid:
            self.violations += [f"{method} {route}: {error}" for error in checked.errors]
            return json_response(400, {"message": "; ".join(checked.errors), "statusCode": 400})
        status, answer = self._answer(method, route, parse_qs(parts.query), json.loads(raw or b"null"))
        self.violations += [
            f"answer to {method} {route}: {error}"
            for error in self._spec.validate_api_response(
                self._openapi,
                method,
                path,
                parts.query,
                headers,
                raw,
                status=status,
                response_body=answer,
                response_headers={},
            )
        ]
        return json_response(status, answer)

    def _answer(self, method: str, route: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        v6 = self._v6
        try:
            if method == "GET" and route == v6.SUMMATIONS_ROUTE:
                found = self.store.search(query, {}, max_per_page=PER_PAGE_MAX)
                metadata = query.get("metadata", [""])[0].lower() == "true"
                found["data"] = [v6.public_view(item, include_metadata=metadata) for item in found["data"]]
                return 200, found
            if method == "POST" and route == v6.SUMMATIONS_ROUTE:
                item = self.store.create(body, subject="mm-processor", now=self._now(), known_submission=True)
                self.writes.append(SummationWrite("POST", item["id"], dict(body), self._clock()))
                return 201, v6.public_view(item, include_metadata=False)
            if method == "PATCH" and route.startswith(v6.SUMMATIONS_ROUTE + "/"):
                summation_id = v6.summation_id_of(route)
                item = self.store.update(
                    summation_id, body, subject="mm-processor", now=self._now(), known_submission=True
                )
                self.writes.append(SummationWrite("PATCH", summation_id, dict(body), self._clock()))
                return 200, v6.public_view(item, include_metadata=False)
        except v6.V6Error as refused:
            return refused.status, refused.body
        return 404, {"message": f"Cannot {method} {route}", "statusCode": 404}


__all__ = [
    "BASE_URL",
    "V6_BASE_URL",
    "CommittedReview",
    "FakeReviewSummationsApi",
    "FakeSubmissionApi",
    "FakeTokenProvider",
    "SummationWrite",
]
