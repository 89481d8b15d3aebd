"""The Submission API v5 subset the pipeline calls, as the stand-in serves it under /v5: submissions, review
types, reviews and review summations, each request validated against Topcoder's spec (`spec.py`) and the API's
own (joi) rules, authenticated before validation as the real API does, paginated with its `X-*` headers."""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI

from loopback import Request
from topcoder_standin.faults import Fault
from topcoder_standin.records import RecordedRequest, Reply, now_iso
from topcoder_standin.spec import API_PREFIX, REVIEW_TYPES_FILE_NAME, validate_api_request
from topcoder_standin.tokens import TokenAuthority

# Keys the API's own validation (joi) accepts on POST /reviews; it rejects any other key.
REVIEW_KEYS = frozenset(
    {"score", "typeId", "reviewerId", "scoreCardId", "submissionId", "status", "metadata", "reviewedDate"}
)
SUMMATION_KEYS = frozenset(
    {"submissionId", "aggregateScore", "scoreCardId", "isPassing", "isFinal", "metadata", "reviewedDate"}
)
_REVIEW_FILTERS = ("submissionId", "typeId", "reviewerId", "scoreCardId", "status", "score")


def seed_review_types(spec_path: Path) -> list[dict[str, Any]]:
    """The review types kept beside the spec (`submissions-api-v5.ReviewTypes.seed.json`), if any."""
    seed = spec_path.parent / REVIEW_TYPES_FILE_NAME
    if not seed.is_file():
        return []
    data = json.loads(seed.read_text(encoding="utf-8"))
    return [dict(item) for item in data]


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _not_found(submission_id: str) -> Reply:
    return Reply(404, {"message": f"Submission with ID = {submission_id} is not found"})


class SubmissionApiV5:
    """The v5 tables (submissions, review types, reviews, review summations) and its request handling. The
    submissions are also the ones review-api-v6 knows (one registry, as Topcoder's is one database)."""

    def __init__(
        self,
        openapi: OpenAPI,
        *,
        tokens: TokenAuthority,
        lock: threading.RLock,
        clock: Callable[[], float],
        review_types: list[dict[str, Any]],
        max_per_page: int,
        auto_register: bool,
        base_url: Callable[[], str],
    ) -> None:
        self._openapi = openapi
        self._tokens = tokens
        self._lock = lock
        self._clock = clock
        self._max_per_page = max_per_page
        self.auto_register = auto_register
        self._base_url = base_url
        self.submissions: dict[str, dict[str, Any]] = {}
        self.reviews: list[dict[str, Any]] = []
        self.review_summations: list[dict[str, Any]] = []
        self.review_types = review_types

    # ---- seeding --------------------------------------------------------------------------------

    def add_submission(
        self, submission_id: str, challenge_id: str, member_id: int | str, **fields: Any
    ) -> dict[str, Any]:
        now = now_iso(self._clock)
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
            self.submissions[submission_id] = submission
        return submission

    def add_review(self, review: Mapping[str, Any]) -> dict[str, Any]:
        stored = self._new_review(review, subject="seed")
        with self._lock:
            self.reviews.append(stored)
        return stored

    def knows(self, submission_id: str) -> bool:
        return self.auto_register or submission_id in self.submissions

    def challenge_of(self) -> dict[str, str]:
        """Submission id -> its challenge id."""
        with self._lock:
            return {sid: str(sub.get("challengeId")) for sid, sub in self.submissions.items()}

    # ---- requests -------------------------------------------------------------------------------

    def answer(self, record: RecordedRequest, request: Request, body: Any, fault: Fault | None) -> Reply:
        """Route (404), authenticate (401), validate (400), then answer or fail as the fault says."""
        raw_body = request.body or None
        result = validate_api_request(
            self._openapi, request.method, request.path, request.query_string, request.headers, raw_body
        )
        record.valid, record.errors = result.valid, list(result.errors)
        if not result.route_found:
            return Reply(404, {"message": f"{request.method} {request.path} is not an endpoint of the v5 spec"})
        subject = self._tokens.subject(request.headers)
        record.authorized = subject is not None
        if subject is None:
            # Authentication runs before validation in the real API.
            return Reply(401, {"message": "Invalid Token."})
        if not result.valid:
            return Reply(400, {"message": "; ".join(result.errors)})
        early = fault.before_store() if fault is not None else None
        if early is not None:
            return early  # failed before doing anything
        try:
            reply = self._route(request.method, request.path, request.query, body, subject)
        except Reply as refused:
            if refused.status == 400:
                # The API's own (joi) rules beyond the spec: also a contract breach by the client.
                record.valid = False
                message = refused.body.get("message") if isinstance(refused.body, dict) else refused.body
                record.errors.append(str(message))
            return refused
        late = fault.after_storing() if fault is not None else None
        return late if late is not None else reply  # processed, then (a commit-then-fail fault) failed

    def _route(self, method: str, path: str, query: Mapping[str, list[str]], body: Any, subject: str) -> Reply:
        route = path[len(API_PREFIX) :]
        if method == "POST" and route == "/reviews":
            self._check_keys(body, REVIEW_KEYS)
            if not _is_uuid(body.get("typeId")):
                raise Reply(400, {"message": '"typeId" must be a valid GUID'})
            review = self._create_review(body, subject)
            return Reply(200, review, {"Location": f"{self._base_url()}/reviews/{review['id']}"})
        if method == "GET" and route == "/reviews":
            return self._list(self.reviews, query, route, _REVIEW_FILTERS)
        if method == "GET" and route == "/reviewTypes":
            return self._list(self.review_types, query, route, ("name", "isActive"))
        if method == "GET" and route.startswith("/submissions/") and route.count("/") == 2:
            submission_id = route.rsplit("/", 1)[1]
            with self._lock:
                submission = self.submissions.get(submission_id)
            if submission is None:
                raise _not_found(submission_id)
            return Reply(200, dict(submission))
        if method == "POST" and route == "/reviewSummations":
            self._check_keys(body, SUMMATION_KEYS)
            return Reply(200, self._create_review_summation(body, subject))
        # In the spec but not part of what the pipeline calls.
        raise Reply(501, {"message": f"{method} {route} is not implemented by the stand-in"})

    def _new_review(self, body: Mapping[str, Any], *, subject: str) -> dict[str, Any]:
        now = now_iso(self._clock)
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

    @staticmethod
    def _check_keys(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise Reply(400, {"message": "; ".join(f'"{k}" is not allowed' for k in unknown)})

    def _create_review(self, body: dict[str, Any], subject: str) -> dict[str, Any]:
        with self._lock:
            types = {t["id"] for t in self.review_types}
            if body["typeId"] not in types:
                raise Reply(400, {"message": f"Review type with ID = {body['typeId']} does not exist"})
            submission_id = str(body["submissionId"])
            if submission_id not in self.submissions:
                if not self.auto_register:
                    raise _not_found(submission_id)
                self.add_submission(submission_id, "unknown", "unknown")
            review = self._new_review(body, subject=subject)
            self.reviews.append(review)
            return review

    def _create_review_summation(self, body: dict[str, Any], subject: str) -> dict[str, Any]:
        with self._lock:
            submission_id = str(body["submissionId"])
            if submission_id not in self.submissions and not self.auto_register:
                raise _not_found(submission_id)
            summation = self._new_review(body, subject=subject)
            summation.pop("status")
            self.review_summations.append(summation)
            return summation

    def _list(
        self, table: list[dict[str, Any]], query: Mapping[str, list[str]], route: str, fields: tuple[str, ...]
    ) -> Reply:
        with self._lock:
            items = [dict(item) for item in table]
        return self._paginate([i for i in items if _matches(i, query, fields)], query, route)

    def _paginate(self, items: list[dict[str, Any]], query: Mapping[str, list[str]], path: str) -> Reply:
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
            headers["Link"] = f'<{self._base_url()}{path}?page={page + 1}&perPage={per_page}>; rel="next"'
        if page > 1:
            headers["X-Prev-Page"] = str(page - 1)
        return Reply(200, chunk, headers)


def _matches(item: Mapping[str, Any], query: Mapping[str, list[str]], fields: tuple[str, ...]) -> bool:
    return all(str(item.get(name)).lower() == query[name][0].lower() for name in fields if name in query)
