"""Client for the Topcoder Submission API v5: reviews are how a run's outcome reaches Topcoder.

Failure model: `mm_adapters.topcoder.http` (decision 030), shared with the review-api-v6 client.

POST is not idempotent. It is repeated within a call only when the request provably never reached the
server (connect errors) or the server refused it before processing (429). After an *ambiguous* failure
(5xx, read timeout, connection dropped mid-request) it is never repeated in the same call: the call raises
`ApiOutcomeUnknownError`, and the caller decides when to look (`find_reviews`) and whether to post again. A
look right after the failure proves nothing: a slow commit can still land (decisions 030, 074).

Never logged: the token, the Authorization header, request bodies. Logged: method, path, status, latency.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from mm_adapters.topcoder.http import (
    ApiAuthError,
    ApiError,
    ApiOutcomeUnknownError,
    ApiRejectedError,
    ApiTransientError,
    TopcoderHttpClient,
)
from mm_contracts.topcoder import ReviewCreate

if TYPE_CHECKING:
    from mm_adapters.topcoder.transport import HttpResponse

logger = logging.getLogger(__name__)

PER_PAGE = 100  # the spec's maximum perPage
MAX_PAGES = 50  # 5000 reviews for one submission is far beyond any real challenge

__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiOutcomeUnknownError",
    "ApiRejectedError",
    "ApiTransientError",
    "SubmissionApiClient",
]


class SubmissionApiClient(TopcoderHttpClient):
    """Topcoder Submission API v5. `base_url` includes `/v5` (e.g. https://api.topcoder-dev.com/v5)."""

    api_name: ClassVar[str] = "Submission API"
    logger: ClassVar[logging.Logger] = logger

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
    def _next_page(response: HttpResponse, page: int) -> int | None:
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
