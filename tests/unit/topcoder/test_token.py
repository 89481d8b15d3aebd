"""Token providers: caching across calls, refresh 60 s before expiry, forced refresh, no secret leaks."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from mm_adapters.topcoder.token import (
    Auth0ProxyTokenProvider,
    StaticParameterTokenProvider,
    TokenError,
    build_token_provider,
    jwt_expiry,
)
from mm_contracts.settings import TokenSettings
from tests.conftest import Clock
from tests.unit.topcoder.fakes import CountingClient, FakeProxyTransport, make_jwt

PARAMETER = "/mm-processor/auth0/token"
CLIENT_ID = "mm-client-id-7f3a"
CLIENT_SECRET = "s3cr3t-value-that-must-never-leak"


# ---- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def ssm(aws: None) -> CountingClient:
    from mm_adapters import aws as aws_clients

    return CountingClient(aws_clients.client("ssm"))


def put_token(ssm: CountingClient, value: str) -> None:
    ssm._client.put_parameter(Name=PARAMETER, Value=value, Type="SecureString", Overwrite=True)


@pytest.fixture
def secrets(aws: None) -> tuple[CountingClient, str]:
    from mm_adapters import aws as aws_clients

    client = CountingClient(aws_clients.client("secretsmanager"))
    arn = client._client.create_secret(
        Name="mm-processor/auth0-credentials",
        SecretString=json.dumps(
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
                "audience": "https://m2m.topcoder-dev.com/",
            }
        ),
    )["ARN"]
    return client, arn


def proxy_provider(
    secrets: tuple[CountingClient, str], clock: Clock, proxy: FakeProxyTransport, **kwargs: Any
) -> Auth0ProxyTokenProvider:
    client, arn = secrets
    return Auth0ProxyTokenProvider(
        "https://auth0proxy.example/token",
        arn,
        secrets_client=client,
        transport=proxy,
        clock=clock,
        **kwargs,
    )


# ---- JWT expiry ------------------------------------------------------------------------------------


def test_jwt_expiry_reads_exp_and_ignores_non_jwts() -> None:
    assert jwt_expiry(make_jwt(1_800_000_123)) == 1_800_000_123
    assert jwt_expiry(make_jwt(None)) is None
    assert jwt_expiry("opaque-token") is None
    assert jwt_expiry("a.!!!.c") is None


# ---- static SSM parameter --------------------------------------------------------------------------


def test_static_token_is_read_with_decryption_once_and_cached_across_calls(ssm: CountingClient, clock: Clock) -> None:
    # Given a JWT valid for an hour in the SecureString
    token = make_jwt(clock.now + 3600)
    put_token(ssm, token)
    provider = StaticParameterTokenProvider(PARAMETER, ssm_client=ssm, clock=clock)

    # When it is asked three times over ten minutes
    results = []
    for _ in range(3):
        results.append(provider.get_token())
        clock.advance(300)

    # Then SSM was read once (decrypted: the value is the plain token)
    assert results == [token] * 3
    assert ssm.calls == {"get_parameter": 1}


def test_static_token_is_refreshed_once_within_60_seconds_of_expiry(ssm: CountingClient, clock: Clock) -> None:
    exp = clock.now + 600
    put_token(ssm, make_jwt(exp))
    provider = StaticParameterTokenProvider(PARAMETER, ssm_client=ssm, clock=clock, max_age_seconds=10_000)
    provider.get_token()

    clock.now = exp - 61  # still outside the margin: cached
    provider.get_token()
    assert ssm.calls["get_parameter"] == 1

    # Someone rotated the parameter; 59 s before expiry the provider reads it again, once.
    rotated = make_jwt(exp + 3600)
    put_token(ssm, rotated)
    clock.now = exp - 59
    assert provider.get_token() == rotated
    assert provider.get_token() == rotated
    assert ssm.calls["get_parameter"] == 2


def test_static_opaque_token_is_cached_for_max_age(ssm: CountingClient, clock: Clock) -> None:
    put_token(ssm, "opaque-token-1")
    provider = StaticParameterTokenProvider(PARAMETER, ssm_client=ssm, clock=clock, max_age_seconds=300)
    provider.get_token()
    clock.advance(299)
    assert provider.get_token() == "opaque-token-1"
    put_token(ssm, "opaque-token-2")
    clock.advance(2)
    assert provider.get_token() == "opaque-token-2"
    assert ssm.calls["get_parameter"] == 2


def test_static_force_refresh_bypasses_the_cache(ssm: CountingClient, clock: Clock) -> None:
    put_token(ssm, make_jwt(clock.now + 3600, n=1))
    provider = StaticParameterTokenProvider(PARAMETER, ssm_client=ssm, clock=clock)
    provider.get_token()
    newer = make_jwt(clock.now + 3600, n=2)
    put_token(ssm, newer)

    assert provider.get_token(force_refresh=True) == newer
    assert ssm.calls["get_parameter"] == 2


def test_static_expired_token_is_a_token_error_without_the_token(ssm: CountingClient, clock: Clock) -> None:
    token = make_jwt(clock.now - 5)
    put_token(ssm, token)
    with pytest.raises(TokenError, match="has expired") as caught:
        StaticParameterTokenProvider(PARAMETER, ssm_client=ssm, clock=clock).get_token()
    assert token not in str(caught.value)


def test_static_missing_parameter_is_a_token_error_naming_it(ssm: CountingClient, clock: Clock) -> None:
    with pytest.raises(TokenError, match=r"/mm-processor/auth0/token: ParameterNotFound"):
        StaticParameterTokenProvider(PARAMETER, ssm_client=ssm, clock=clock).get_token()


def test_static_repr_never_shows_the_token(ssm: CountingClient, clock: Clock) -> None:
    token = make_jwt(clock.now + 3600)
    put_token(ssm, token)
    provider = StaticParameterTokenProvider(PARAMETER, ssm_client=ssm, clock=clock)
    provider.get_token()
    assert token not in repr(provider)
    assert token not in repr(provider.__dict__)
    assert "redacted" in repr(provider)


# ---- Auth0 proxy -----------------------------------------------------------------------------------


def test_proxy_body_follows_the_contract_and_the_token_is_cached(
    secrets: tuple[CountingClient, str], clock: Clock
) -> None:
    proxy = FakeProxyTransport(clock)
    provider = proxy_provider(secrets, clock, proxy)

    first = provider.get_token()
    clock.advance(1800)
    second = provider.get_token()

    assert first == second
    assert len(proxy.posts) == 1
    assert secrets[0].calls == {"get_secret_value": 1}
    assert proxy.posts[0]["json"] == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
        "audience": "https://m2m.topcoder-dev.com/",
        "fresh_token": False,
    }
    assert proxy.posts[0]["timeout"] == 10


def test_proxy_token_is_refreshed_once_within_60_seconds_of_expiry(
    secrets: tuple[CountingClient, str], clock: Clock
) -> None:
    proxy = FakeProxyTransport(clock, lifetime=3600)
    provider = proxy_provider(secrets, clock, proxy)
    exp = clock.now + 3600
    first = provider.get_token()

    clock.now = exp - 61
    assert provider.get_token() == first
    clock.now = exp - 59
    second = provider.get_token()
    third = provider.get_token()

    assert second != first
    assert third == second
    assert len(proxy.posts) == 2
    assert [post["json"]["fresh_token"] for post in proxy.posts] == [False, False]


def test_proxy_opaque_token_uses_expires_in_which_already_has_60_seconds_off(
    secrets: tuple[CountingClient, str], clock: Clock
) -> None:
    # expires_in = exp - 60 - now = 540 -> the real expiry is now + 600; refresh at 60 s before it.
    proxy = FakeProxyTransport(clock)
    proxy.responder = lambda body: (200, {"access_token": f"opaque-{len(proxy.posts)}", "expires_in": 540})
    provider = proxy_provider(secrets, clock, proxy)
    provider.get_token()
    clock.advance(539)
    assert provider.get_token() == "opaque-1"
    clock.advance(2)
    assert provider.get_token() == "opaque-2"


def test_proxy_force_refresh_bypasses_cache_sends_fresh_token_and_rereads_the_secret(
    secrets: tuple[CountingClient, str], clock: Clock
) -> None:
    proxy = FakeProxyTransport(clock)
    provider = proxy_provider(secrets, clock, proxy)
    first = provider.get_token()

    forced = provider.get_token(force_refresh=True)

    assert forced != first
    assert [post["json"]["fresh_token"] for post in proxy.posts] == [False, True]
    assert secrets[0].calls["get_secret_value"] == 2  # rotated credentials are picked up after a 401
    assert provider.get_token() == forced


def test_proxy_token_already_inside_the_margin_triggers_one_fresh_request(
    secrets: tuple[CountingClient, str], clock: Clock
) -> None:
    # The proxy's cache hands back a token with 30 s left; with a 120 s margin we ask for a fresh one.
    proxy = FakeProxyTransport(clock)
    answers = [(200, {"access_token": make_jwt(clock.now + 90), "expires_in": 30})]
    proxy.responder = lambda body: (
        answers.pop(0)
        if answers
        else (200, {"access_token": make_jwt(clock.now + 3600, fresh=True), "expires_in": 3540})
    )
    provider = proxy_provider(secrets, clock, proxy, refresh_margin_seconds=120)

    token = provider.get_token()

    assert jwt_expiry(token) == clock.now + 3600
    assert [post["json"]["fresh_token"] for post in proxy.posts] == [False, True]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, 'Payload validation error: "client_secret" is required'),
        (500, "Empty body."),
        (401, {"error": "access_denied", "error_description": "Unauthorized"}),
    ],
)
def test_proxy_error_answers_are_token_errors(
    secrets: tuple[CountingClient, str], clock: Clock, status: int, body: Any
) -> None:
    proxy = FakeProxyTransport(clock)
    proxy.responder = lambda _: (status, body)
    with pytest.raises(TokenError, match=f"answered {status}"):
        proxy_provider(secrets, clock, proxy).get_token()


def test_proxy_malformed_200_is_a_token_error(secrets: tuple[CountingClient, str], clock: Clock) -> None:
    proxy = FakeProxyTransport(clock)
    proxy.responder = lambda _: (200, {"token": "x"})
    with pytest.raises(TokenError, match="without a usable access_token"):
        proxy_provider(secrets, clock, proxy).get_token()


def test_incomplete_credentials_name_the_field_but_not_the_values(aws: None, clock: Clock) -> None:
    from mm_adapters import aws as aws_clients

    client = aws_clients.client("secretsmanager")
    arn = client.create_secret(
        Name="bad", SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    )["ARN"]
    provider = Auth0ProxyTokenProvider(
        "https://proxy/token",
        arn,
        secrets_client=client,
        transport=FakeProxyTransport(clock),
    )
    with pytest.raises(TokenError) as caught:
        provider.get_token()
    message = str(caught.value)
    assert "auth0_url" in message
    assert CLIENT_SECRET not in message
    assert CLIENT_ID not in message


def test_secret_credentials_and_token_never_reach_logs_or_errors(
    secrets: tuple[CountingClient, str], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Our loggers at DEBUG (botocore's own DEBUG wire dumps are out of scope and off in Lambda).
    caplog.set_level(logging.DEBUG, logger="mm_adapters")
    proxy = FakeProxyTransport(clock)
    provider = proxy_provider(secrets, clock, proxy)
    token = provider.get_token()
    provider.get_token(force_refresh=True)
    tokens = list(proxy.issued)

    # An error answer that echoes the credentials back must not carry them into the exception.
    proxy.responder = lambda body: (400, f"Payload validation error: {json.dumps(body)}")
    with pytest.raises(TokenError) as caught:
        provider.get_token(force_refresh=True)

    texts = [caplog.text, str(caught.value), repr(provider), repr(caught.value)]
    texts += [str(record.__dict__) for record in caplog.records]
    for text in texts:
        assert CLIENT_SECRET not in text
        assert CLIENT_ID not in text
        for issued in [token, *tokens]:
            assert issued not in text
    assert "<redacted>" in str(caught.value)


# ---- selection ----------------------------------------------------------------------------------


def test_build_token_provider_selects_by_token_source() -> None:
    base = {"environment_name": "dev", "powertools_service_name": "completion"}
    static = build_token_provider(TokenSettings(**base))
    assert isinstance(static, StaticParameterTokenProvider)
    assert static.parameter_name == "/mm-processor/auth0/token"

    proxy = build_token_provider(
        TokenSettings.from_env(
            {
                "ENVIRONMENT_NAME": "dev",
                "POWERTOOLS_SERVICE_NAME": "completion",
                "TOKEN_SOURCE": "auth0_proxy",
                "AUTH0_PROXY_URL": "https://auth0proxy.topcoder-dev.com/token",
                "AUTH0_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
                "TOKEN_REFRESH_MARGIN_SECONDS": "90",
            }
        )
    )
    assert isinstance(proxy, Auth0ProxyTokenProvider)
    assert proxy.proxy_url == "https://auth0proxy.topcoder-dev.com/token"
    assert proxy._margin == 90
