"""A fake Topcoder Submission API (v5 reviews) as a `requests` transport adapter, and a token provider.

Mounted on the session the real `SubmissionApiClient` uses, so the client's own retry, refresh and
look-before-post logic runs against it. It records every review it commits (with the virtual instant),
answers `GET /reviews` by submission and type with paging, and accepts only the tokens it issued.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

from fault_injection.http_faults import json_response

BASE_URL = "https://api.topcoder.fake/v5"
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


class FakeSubmissionApi(BaseAdapter):
    def __init__(self, clock: Callable[[], float], *, accept_token: Callable[[str], bool] | None = None) -> None:
        super().__init__()
        self._clock = clock
        self._accept = accept_token or (lambda token: token.startswith("token-"))
        self.reviews: list[CommittedReview] = []
        self.requests: list[tuple[str, str]] = []

    def reviews_of(self, submission_id: str) -> list[CommittedReview]:
        return [r for r in self.reviews if r.submission_id == submission_id]

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
        method = (request.method or "GET").upper()
        parts = urlsplit(request.url or "")
        path = parts.path.split("/v5", 1)[-1]
        self.requests.append((method, path))
        token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        if not self._accept(token):
            return json_response(request, 401, {"message": "Invalid token"})
        if method == "POST" and path == "/reviews":
            body = json.loads(request.body or b"{}")
            review = {**body, "id": str(uuid.uuid4()), "createdBy": "mm-processor", "created": self._clock()}
            self.reviews.append(CommittedReview(review, self._clock()))
            return json_response(request, 200, review)
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
            return json_response(request, 200, chunk, {"X-Total-Pages": str(pages), "X-Page": str(page)})
        if method == "GET" and path.startswith("/submissions/"):
            return json_response(request, 200, {"id": path.rpartition("/")[2]})
        return json_response(request, 404, {"message": f"no route {method} {path}"})

    def close(self) -> None:
        pass


def fake_api_session(api: FakeSubmissionApi) -> requests.Session:
    session = requests.Session()
    session.mount("https://", api)
    session.mount("http://", api)
    return session


__all__ = ["BASE_URL", "CommittedReview", "FakeSubmissionApi", "FakeTokenProvider", "fake_api_session"]
