"""review-api-v6 review summations, as the stand-in serves them under /v6 (decision 089).

What it imitates, from `topcoder-platform/review-api-v6` (snapshot of 2026-07-03):
- scopes per route (`review-summation.controller.ts` `@Scopes`; `all:review_summation` grants all four,
  `src/shared/enums/scopes.enum.ts`); a token with a `scope` claim is a machine caller
  (`src/shared/modules/global/jwt.service.ts`);
- create answers 201 with the stored item; a `submissionId` longer than 14 characters is 400, an unknown
  submission 404; PATCH and PUT share `updateSummation`: an unknown id is 404, and only the fields sent
  change (`review-summation.service.ts`);
- the list filters `submissionId`, `challengeId`, `scorecardId`, `example` / `provisional` / `system`
  (isExample / isProvisional / isFinal true), and answers `{data, meta: {page, perPage, totalCount,
  totalPages}}` (`src/dto/pagination.dto.ts`, default perPage 10);
- `metadata` is returned only by the list, and only to a machine caller that asked `metadata=true`
  (`buildResponse` drops it otherwise, so create/patch/put answers never carry it).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from openapi_core import OpenAPI

from loopback import Request
from topcoder_standin.records import RecordedRequest, Reply, now_iso
from topcoder_standin.spec import V6_API_PREFIX, validate_api_request, validate_api_response

if TYPE_CHECKING:
    from topcoder_standin.faults import Fault
    from topcoder_standin.tokens import Issued, TokenAuthority
    from topcoder_standin.v5 import SubmissionApiV5

SUMMATIONS_ROUTE = "/reviewSummations"
CREATE_SCOPE = "create:review_summation"
READ_SCOPE = "read:review_summation"
UPDATE_SCOPE = "update:review_summation"
DELETE_SCOPE = "delete:review_summation"
ALL_SCOPE = "all:review_summation"
SUMMATION_SCOPES = (CREATE_SCOPE, READ_SCOPE, UPDATE_SCOPE)
MAX_SUBMISSION_ID_LENGTH = 14  # reviewSummation.submissionId is VarChar(14) (a nanoid)
DEFAULT_PER_PAGE = 10
_PHASE_FILTERS = {"example": "isExample", "provisional": "isProvisional", "system": "isFinal"}
_FIELDS = (
    "submissionId",
    "aggregateScore",
    "scorecardId",
    "isPassing",
    "isFinal",
    "isProvisional",
    "isExample",
    "reviewedDate",
    "metadata",
)


class V6Error(Exception):
    """The API's answer to a request it refuses: status and body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "statusCode": status}


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    granted = set(scopes)
    if ALL_SCOPE in granted:
        granted |= {CREATE_SCOPE, READ_SCOPE, UPDATE_SCOPE, DELETE_SCOPE}
    return frozenset(granted)


def required_scope(method: str, route: str) -> str | None:
    """The M2M scope a route needs (`route` without the /v6 prefix); None for a route we do not serve."""
    if route == SUMMATIONS_ROUTE:
        return {"POST": CREATE_SCOPE, "GET": READ_SCOPE}.get(method)
    if route.startswith(SUMMATIONS_ROUTE + "/") and route.count("/") == 2:
        return {"PATCH": UPDATE_SCOPE, "PUT": UPDATE_SCOPE}.get(method)
    return None


def summation_id_of(route: str) -> str:
    return route.rsplit("/", 1)[1]


def public_view(item: Mapping[str, Any], *, include_metadata: bool) -> dict[str, Any]:
    view = dict(item)
    if not include_metadata:
        view.pop("metadata", None)
    return view


class SummationStore:
    """The summations table. Not thread-safe by itself: the stand-in calls it under its lock."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def create(self, body: Mapping[str, Any], *, subject: str, now: str, known_submission: bool) -> dict[str, Any]:
        self._check_submission(body, known_submission)
        item: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "scorecardId": None,
            "isFinal": None,
            "isProvisional": None,
            "isExample": None,
            "reviewedDate": None,
            "metadata": None,
            "createdAt": now,
            "createdBy": subject,
            "updatedAt": now,
            "updatedBy": subject,
        }
        item.update({name: body[name] for name in _FIELDS if name in body})
        self.items.append(item)
        return item

    def update(
        self, summation_id: str, body: Mapping[str, Any], *, subject: str, now: str, known_submission: bool
    ) -> dict[str, Any]:
        item = self.get(summation_id)
        if item is None:
            raise V6Error(404, f"Review summation with ID {summation_id} not found.")
        if body.get("submissionId"):
            self._check_submission(body, known_submission)
        item.update({name: body[name] for name in _FIELDS if name in body})
        item["updatedAt"], item["updatedBy"] = now, subject
        return item

    def get(self, summation_id: str) -> dict[str, Any] | None:
        return next((item for item in self.items if item["id"] == summation_id), None)

    def search(
        self, query: Mapping[str, list[str]], challenge_of: Mapping[str, str], *, max_per_page: int
    ) -> dict[str, Any]:
        """One page of the matching items and the pagination meta (metadata still included)."""

        def wanted(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        matches = list(self.items)
        if wanted("submissionId"):
            matches = [i for i in matches if i["submissionId"] == wanted("submissionId")]
        if wanted("scorecardId"):
            matches = [i for i in matches if i.get("scorecardId") == wanted("scorecardId")]
        if wanted("challengeId"):
            matches = [i for i in matches if challenge_of.get(i["submissionId"]) == wanted("challengeId")]
        for parameter, flag in _PHASE_FILTERS.items():
            if (wanted(parameter) or "").lower() == "true":
                matches = [i for i in matches if i.get(flag) is True]
        page = int(wanted("page") or 1)
        per_page = min(int(wanted("perPage") or DEFAULT_PER_PAGE), max_per_page)
        total = len(matches)
        return {
            "data": [dict(i) for i in matches[(page - 1) * per_page : page * per_page]],
            "meta": {"page": page, "perPage": per_page, "totalCount": total, "totalPages": math.ceil(total / per_page)},
        }

    @staticmethod
    def _check_submission(body: Mapping[str, Any], known_submission: bool) -> None:
        submission_id = str(body["submissionId"])
        if len(submission_id) > MAX_SUBMISSION_ID_LENGTH:
            raise V6Error(
                400,
                f"Invalid submissionId format. Expected {MAX_SUBMISSION_ID_LENGTH} characters, "
                f"got {len(submission_id)}",
            )
        if not known_submission:
            raise V6Error(404, f"Submission with ID {submission_id} not found.")


class SummationsApiV6:
    """review-api-v6's summation routes: authenticate (401), check the route's scope (403), validate (400), in
    the order of its guards and pipes; then answer, and check the answer against the v6 spec too."""

    def __init__(
        self,
        openapi: OpenAPI,
        *,
        tokens: TokenAuthority,
        submissions: SubmissionApiV5,
        lock: threading.RLock,
        clock: Callable[[], float],
        max_per_page: int,
    ) -> None:
        self._openapi = openapi
        self._tokens = tokens
        self._submissions = submissions
        self._lock = lock
        self._clock = clock
        self._max_per_page = max_per_page
        self.store = SummationStore()

    def answer(self, record: RecordedRequest, request: Request, body: Any, fault: Fault | None) -> Reply:
        reply = self._answer(record, request, body, fault)
        record.response_errors = validate_api_response(
            self._openapi,
            request.method,
            request.path,
            request.query_string,
            request.headers,
            request.body or None,
            status=reply.status,
            response_body=reply.body,
            response_headers=reply.headers,
        )
        return reply

    def _answer(self, record: RecordedRequest, request: Request, body: Any, fault: Fault | None) -> Reply:
        method, path = request.method, request.path
        result = validate_api_request(
            self._openapi, method, path, request.query_string, request.headers, request.body or None
        )
        record.valid, record.errors = result.valid, list(result.errors)
        route = path[len(V6_API_PREFIX) :]
        scope = required_scope(method, route)
        if not result.route_found or scope is None:
            record.breach(record.errors or [f"{method} {path} is not served by the stand-in"])
            return Reply(404, {"message": f"Cannot {method} {path}", "statusCode": 404})
        issued = self._tokens.bearer(request.headers)
        record.authorized = issued is not None
        if issued is None:
            return Reply(401, {"message": "Missing or invalid token!", "statusCode": 401})
        if scope not in expand_scopes(issued.scopes):
            # A valid request with too little grant is the caller's configuration, not a contract breach.
            return Reply(403, {"message": f"Forbidden: requires scope {scope}", "statusCode": 403})
        if not result.valid:
            return Reply(400, {"message": "; ".join(result.errors), "statusCode": 400})
        early = fault.before_store() if fault is not None else None
        if early is not None:
            return early  # failed before doing anything
        try:
            reply = self._route(method, route, request.query, body, issued)
        except V6Error as refused:
            if refused.status == 400:  # the API's own rules beyond the spec: also a breach by the client
                record.valid = False
                record.errors.append(str(refused))
            return Reply(refused.status, refused.body)
        late = fault.after_storing() if fault is not None else None
        return late if late is not None else reply  # processed, then (a commit-then-fail fault) failed

    def _route(self, method: str, route: str, query: Mapping[str, list[str]], body: Any, issued: Issued) -> Reply:
        now = now_iso(self._clock)
        machine = bool(issued.scopes)  # jwt.service.ts: a token with a scope claim is a machine's
        with self._lock:
            if method == "GET":
                include_metadata = machine and query.get("metadata", [""])[0].lower() == "true"
                challenge_of = self._submissions.challenge_of()
                found = self.store.search(query, challenge_of, max_per_page=self._max_per_page)
                found["data"] = [public_view(item, include_metadata=include_metadata) for item in found["data"]]
                return Reply(200, found)
            known = self._submissions.knows(str(body.get("submissionId")))
            if method == "POST":
                item = self.store.create(body, subject=issued.subject, now=now, known_submission=known)
                return Reply(201, public_view(item, include_metadata=False))
            item = self.store.update(
                summation_id_of(route), body, subject=issued.subject, now=now, known_submission=known
            )
            return Reply(200, public_view(item, include_metadata=False))
