"""Topcoder integration: M2M token providers, the Submission API v5 client and the review-api-v6
summations client (`ReviewSummationsClient`, same failure model).

    provider = build_token_provider(settings)          # once per process: it holds the cached token
    client = SubmissionApiClient(settings.submission_api_url, provider,
                                 timeout_seconds=settings.api_timeout_seconds,
                                 max_retries=settings.api_max_retries)
    client.create_review(ReviewCreate(score=0, type_id=..., reviewer_id=..., score_card_id=...,
                                      submission_id=..., metadata={"testType": "provisional", ...}))

The token port they take is `mm_contracts.ports.TokenProvider`. Nothing here talks to AWS or the network at
import time. The names below load on first use (PEP 562 `__getattr__`): a function that needs only a token
provider (the scorer-token refresher imports `mm_adapters.topcoder.token`) builds no API client or review model
(decision 112).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mm_contracts.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from mm_adapters.topcoder.http import (
        ApiAuthError,
        ApiError,
        ApiOutcomeUnknownError,
        ApiRejectedError,
        ApiTransientError,
    )
    from mm_adapters.topcoder.review_summations import ReviewSummationsClient
    from mm_adapters.topcoder.submission_api import SubmissionApiClient
    from mm_adapters.topcoder.token import (
        Auth0ProxyTokenProvider,
        StaticParameterTokenProvider,
        TokenError,
        build_token_provider,
        jwt_expiry,
    )
    from mm_contracts.topcoder import (
        Auth0Credentials,
        ReviewCreate,
        ReviewStatus,
        ReviewSummationCreate,
        ReviewSummationRequest,
        ReviewSummationUpdate,
    )

# Name -> the module that defines it.
_MODULE = {
    "ApiAuthError": "mm_adapters.topcoder.http",
    "ApiError": "mm_adapters.topcoder.http",
    "ApiOutcomeUnknownError": "mm_adapters.topcoder.http",
    "ApiRejectedError": "mm_adapters.topcoder.http",
    "ApiTransientError": "mm_adapters.topcoder.http",
    "ReviewSummationsClient": "mm_adapters.topcoder.review_summations",
    "SubmissionApiClient": "mm_adapters.topcoder.submission_api",
    "Auth0ProxyTokenProvider": "mm_adapters.topcoder.token",
    "StaticParameterTokenProvider": "mm_adapters.topcoder.token",
    "TokenError": "mm_adapters.topcoder.token",
    "build_token_provider": "mm_adapters.topcoder.token",
    "jwt_expiry": "mm_adapters.topcoder.token",
    "Auth0Credentials": "mm_contracts.topcoder_auth",
    "ReviewCreate": "mm_contracts.topcoder",
    "ReviewStatus": "mm_contracts.topcoder",
    "ReviewSummationCreate": "mm_contracts.topcoder",
    "ReviewSummationRequest": "mm_contracts.topcoder",
    "ReviewSummationUpdate": "mm_contracts.topcoder",
}


__getattr__ = lazy_exports(__name__, _MODULE)


__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiOutcomeUnknownError",
    "ApiRejectedError",
    "ApiTransientError",
    "Auth0Credentials",
    "Auth0ProxyTokenProvider",
    "ReviewCreate",
    "ReviewStatus",
    "ReviewSummationCreate",
    "ReviewSummationRequest",
    "ReviewSummationUpdate",
    "ReviewSummationsClient",
    "StaticParameterTokenProvider",
    "SubmissionApiClient",
    "TokenError",
    "build_token_provider",
    "jwt_expiry",
]
