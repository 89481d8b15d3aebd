"""Topcoder integration: M2M token providers, the Submission API v5 client and the review-api-v6
summations client (`ReviewSummationsClient`, same failure model).

    provider = build_token_provider(settings)          # once per process: it holds the cached token
    client = SubmissionApiClient(settings.submission_api_url, provider,
                                 timeout_seconds=settings.api_timeout_seconds,
                                 max_retries=settings.api_max_retries)
    client.create_review(ReviewCreate(score=0, type_id=..., reviewer_id=..., score_card_id=...,
                                      submission_id=..., metadata={"testType": "provisional", ...}))

The token port they take is `mm_contracts.ports.TokenProvider`. Nothing here talks to AWS or the network at
import time.
"""

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
