"""Fixtures: a real Topcoder stand-in on loopback, a registered v5 and a registered v6 submission, and an
Auth0-proxy token provider pointed at the stand-in's `/token` (credentials from a stub Secrets Manager
client), with the v5 and the v6 clients over it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mm_adapters.topcoder import Auth0ProxyTokenProvider, ReviewSummationsClient, SubmissionApiClient
from tests.integration.topcoder.support import (
    CHALLENGE_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    SUBMISSION_ID,
    V6_MEMBER_ID,
    V6_SUBMISSION_ID,
    SleepRecorder,
    StubSecrets,
)
from topcoder_standin import TopcoderStandIn


@pytest.fixture
def standin() -> Iterator[TopcoderStandIn]:
    with TopcoderStandIn(clients={CLIENT_ID: CLIENT_SECRET}) as running:
        running.add_submission(SUBMISSION_ID, CHALLENGE_ID, 40_158_994)
        running.add_submission(V6_SUBMISSION_ID, CHALLENGE_ID, V6_MEMBER_ID)
        yield running


@pytest.fixture
def credentials() -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
        "audience": "https://m2m.topcoder-dev.com/",
    }


@pytest.fixture
def tokens(standin: TopcoderStandIn, credentials: dict[str, Any]) -> Auth0ProxyTokenProvider:
    return Auth0ProxyTokenProvider(
        standin.token_url,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:auth0",
        secrets_client=StubSecrets(credentials),
    )


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider, sleeps: SleepRecorder) -> SubmissionApiClient:
    return SubmissionApiClient(standin.base_url, tokens, timeout_seconds=5.0, max_retries=2, sleep=sleeps)


@pytest.fixture
def v6_client(
    standin: TopcoderStandIn, tokens: Auth0ProxyTokenProvider, sleeps: SleepRecorder
) -> ReviewSummationsClient:
    return ReviewSummationsClient(standin.v6_base_url, tokens, timeout_seconds=5.0, max_retries=2, sleep=sleeps)
