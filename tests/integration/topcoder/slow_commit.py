"""A Submission API whose POST /reviews times out and commits later: the slow commit of defect 4.

It is the client's transport (`mm_adapters.topcoder.transport.Transport`), on a virtual clock: the POST raises a
read timeout and the review becomes visible to GET /reviews only `commit_delay` seconds later (or never). The
client's injected sleep advances the same clock, so a look "a fraction of a second later" is exactly that.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fault_injection.http_faults import json_response
from mm_adapters.topcoder.transport import HttpRequest, HttpResponse, ReadTimedOut
from tests.fakes.clock import VirtualClock


@dataclass
class _Pending:
    visible_at: float | None  # None: the server never commits it
    review: dict[str, Any]


@dataclass
class SlowCommitApi:
    """POSTs number `slow_posts` (1-based) time out; each such review commits `commit_delay` s later, or never."""

    clock: VirtualClock
    commit_delay: float | None = 0.5
    slow_posts: frozenset[int] = frozenset({1})
    per_page: int = 100
    posts: int = 0
    gets: int = 0
    stored: list[_Pending] = field(default_factory=list)

    def add(self, review: dict[str, Any]) -> None:
        """A review already committed (someone else's, or ours from long ago)."""
        self.stored.append(_Pending(self.clock.now, {"id": str(uuid.uuid4()), **review}))

    def visible(self) -> list[dict[str, Any]]:
        return [p.review for p in self.stored if p.visible_at is not None and p.visible_at <= self.clock.now]

    def reviews_for(self, submission_id: str) -> list[dict[str, Any]]:
        """Everything the server ends up holding for the submission, committed or about to be."""
        return [p.review for p in self.stored if p.visible_at is not None and p.review["submissionId"] == submission_id]

    # ---- the transport the client uses
    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        parts = urlsplit(request.url)
        method, path = request.method, parts.path
        if method == "POST" and path.endswith("/reviews"):
            return self._post(json.loads(request.body or b"{}"))
        if method == "GET" and path.endswith("/reviews"):
            return self._get({key: values[0] for key, values in parse_qs(parts.query).items()})
        return json_response(404, {"message": f"no route {method} {path}"})

    def _post(self, body: dict[str, Any]) -> HttpResponse:
        self.posts += 1
        review = {"id": str(uuid.uuid4()), **body}
        if self.posts in self.slow_posts:
            visible_at = None if self.commit_delay is None else self.clock.now + self.commit_delay
            self.stored.append(_Pending(visible_at, review))
            raise ReadTimedOut("read timed out (virtual)")
        self.stored.append(_Pending(self.clock.now, review))
        return json_response(200, review)

    def _get(self, params: dict[str, Any]) -> HttpResponse:
        self.gets += 1
        matching = [r for r in self.visible() if r["submissionId"] == params.get("submissionId")]
        if "typeId" in params:
            matching = [r for r in matching if r["typeId"] == params["typeId"]]
        page = int(params.get("page", 1))
        per_page = min(int(params.get("perPage", self.per_page)), self.per_page)
        total_pages = max(1, -(-len(matching) // per_page))
        chunk = matching[(page - 1) * per_page : page * per_page]
        return json_response(200, chunk, {"X-Total-Pages": str(total_pages), "X-Page": str(page)})


class StaticTokens:
    def get_token(self, force_refresh: bool = False) -> str:
        return "static-test-token"
