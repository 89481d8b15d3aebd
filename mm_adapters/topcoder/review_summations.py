"""Client for review-api-v6 review summations: where a v6 run's outcome reaches Topcoder (decision 089).

    client = ReviewSummationsClient(settings.review_api_url, provider,
                                    timeout_seconds=settings.api_timeout_seconds,
                                    max_retries=settings.api_max_retries)
    existing = client.list_summations(submission_id=..., phase=ScoringPhase.PROVISIONAL)
    if existing: client.patch_summation(existing[0]["id"], ReviewSummationUpdate(...))
    else:        client.create_summation(ReviewSummationRequest(...))

`base_url` includes `/v6` (e.g. https://api.topcoder-dev.com/v6). The M2M token needs the scopes
create:review_summation, read:review_summation and update:review_summation (review-api-v6
`src/shared/enums/scopes.enum.ts`); without one the API answers 403 (`ApiRejectedError`).

Failure model: `mm_adapters.topcoder.http`. A POST is never repeated after an ambiguous failure
(`ApiOutcomeUnknownError`: the caller lists again later, then patches what landed); PATCH is idempotent
and retried like a GET.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import ValidationError

from mm_adapters.topcoder.http import ApiTransientError, TopcoderHttpClient
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.topcoder import ReviewSummationRecord, ReviewSummationRequest, ReviewSummationUpdate

logger = logging.getLogger(__name__)

SUMMATIONS_PATH = "/reviewSummations"
PER_PAGE = 100  # the API has no maximum (`PaginationDto`); its default of 10 would mean more pages
MAX_PAGES = 50  # a submission has at most one summation per phase and reviewer: far beyond any real case

# The scopes each call needs (review-api-v6 review-summation.controller.ts `@Scopes`).
CREATE_SCOPE = "create:review_summation"
READ_SCOPE = "read:review_summation"
UPDATE_SCOPE = "update:review_summation"
REQUIRED_SCOPES = (CREATE_SCOPE, READ_SCOPE, UPDATE_SCOPE)


class ReviewSummationsClient(TopcoderHttpClient):
    """review-api-v6 `/reviewSummations`: list a submission's summations of one phase, create, patch."""

    api_name: ClassVar[str] = "Review API v6"
    logger: ClassVar[logging.Logger] = logger

    def list_summations(self, *, submission_id: str, phase: ScoringPhase) -> list[dict[str, Any]]:
        """GET /reviewSummations?submissionId=&<phase filter>=true&metadata=true, every page.

        Complete or nothing: the upsert decides from this list whether to create, so more than MAX_PAGES
        pages raise `ApiTransientError` instead of returning part of it. The envelope is
        `{data, meta: {page, perPage, totalCount, totalPages}}` (`PaginatedResponse`, pagination.dto.ts).
        """
        params: dict[str, Any] = {
            "submissionId": submission_id,
            phase.list_filter: "true",
            "metadata": "true",
            "perPage": PER_PAGE,
        }
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            if page > MAX_PAGES:
                raise ApiTransientError(f"GET {SUMMATIONS_PATH}: more than {MAX_PAGES} pages for one submission")
            response = self._call_raw("GET", SUMMATIONS_PATH, params={**params, "page": page})
            envelope = self._json(response, "GET", SUMMATIONS_PATH)
            items = envelope.get("data") if isinstance(envelope, dict) else None
            if not isinstance(items, list):
                raise ApiTransientError(
                    f"GET {SUMMATIONS_PATH} answered 2xx without a data list", status_code=response.status_code
                )
            found.extend(self._checked(item, "GET") for item in items)
            if not self._has_next_page(envelope.get("meta"), page, len(items)):
                break
            page += 1
        # Filter again client-side: the phase flag is what makes it this phase's summation.
        return [
            item
            for item in found
            if str(item.get("submissionId")) == submission_id and item.get(phase.summation_flag) is True
        ]

    def create_summation(self, body: ReviewSummationRequest) -> dict[str, Any]:
        """POST /reviewSummations; the created summation. Never repeated after an ambiguous failure."""
        return self._checked(self._call("POST", SUMMATIONS_PATH, json_body=body.to_wire()), "POST")

    def patch_summation(self, summation_id: str, body: ReviewSummationUpdate) -> dict[str, Any]:
        """PATCH /reviewSummations/{id}: only the fields set in `body` change."""
        path = f"{SUMMATIONS_PATH}/{quote(summation_id, safe='')}"
        return self._checked(self._call("PATCH", path, json_body=body.to_wire()), "PATCH")

    @staticmethod
    def _has_next_page(meta: Any, page: int, count: int) -> bool:
        if count == 0:
            return False
        if isinstance(meta, dict):
            total_pages = meta.get("totalPages")
            if isinstance(total_pages, int) and not isinstance(total_pages, bool):
                return page < total_pages
            per_page = meta.get("perPage")
            if isinstance(per_page, int) and not isinstance(per_page, bool) and per_page > 0:
                return count >= per_page
        return count >= PER_PAGE  # no usable meta: a full page may have a successor

    @staticmethod
    def _checked(item: Any, method: str) -> dict[str, Any]:
        """A summation object with an id and a submission id, else the answer is not one we can act on."""
        try:
            if isinstance(item, dict):
                ReviewSummationRecord.model_validate(item)
                return item
        except ValidationError:
            pass
        raise ApiTransientError(f"{method} {SUMMATIONS_PATH} answered 2xx without a summation object")


__all__ = [
    "CREATE_SCOPE",
    "READ_SCOPE",
    "REQUIRED_SCOPES",
    "UPDATE_SCOPE",
    "ReviewSummationsClient",
]
