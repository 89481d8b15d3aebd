"""Topcoder integration: M2M token providers and the Submission API v5 client.

    provider = build_token_provider(settings)          # once per process: it holds the cached token
    client = SubmissionApiClient(settings.submission_api_url, provider,
                                 timeout_seconds=settings.api_timeout_seconds,
                                 max_retries=settings.api_max_retries)
    client.create_review(ReviewCreate(score=0, type_id=..., reviewer_id=..., score_card_id=...,
                                      submission_id=..., metadata={"testType": "provisional", ...}))

Nothing here talks to AWS or the network at import time.
"""

from mm_shared.topcoder.models import Auth0Credentials, ReviewCreate, ReviewStatus, ReviewSummationCreate
from mm_shared.topcoder.submission_api import (
    ApiAuthError,
    ApiError,
    ApiRejectedError,
    ApiTransientError,
    SubmissionApiClient,
)
from mm_shared.topcoder.token import (
    Auth0ProxyTokenProvider,
    StaticParameterTokenProvider,
    TokenError,
    TokenProvider,
    build_token_provider,
    jwt_expiry,
)

__all__ = [
    "ApiAuthError",
    "ApiError",
    "ApiRejectedError",
    "ApiTransientError",
    "Auth0Credentials",
    "Auth0ProxyTokenProvider",
    "ReviewCreate",
    "ReviewStatus",
    "ReviewSummationCreate",
    "StaticParameterTokenProvider",
    "SubmissionApiClient",
    "TokenError",
    "TokenProvider",
    "build_token_provider",
    "jwt_expiry",
]
