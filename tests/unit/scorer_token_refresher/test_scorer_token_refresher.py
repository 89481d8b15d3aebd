"""The scorer-token refresher (decision 091): the token for scorer tasks kept in an SSM SecureString, written only
when missing or near expiry, never logged; a failure publishes what the parameter still holds and raises.

Against moto SSM and Secrets Manager, with the real Auth0ProxyTokenProvider over a fake proxy transport."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mm_adapters import aws as aws_clients
from mm_contracts.settings import ScorerTokenRefresherSettings
from scorer_token_refresher import handler as refresher
from scorer_token_refresher import wiring
from scorer_token_refresher.check import check
from scorer_token_refresher.observability import logger
from scorer_token_refresher.refresh import Action, ScorerTokenError, Why
from tests.builders import FakeLambdaContext
from tests.conftest import Clock
from tests.unit.topcoder.fakes import FakeProxyTransport, make_jwt

PARAMETER = "/mm-processor/test/auth0/scorer-token"
MARGIN = 5_700  # a one-hour run + a 30-minute interval + slack
LIFETIME = 86_400  # Topcoder M2M tokens live a day
CLIENT_ID = "mm-client-id-7f3a"
CLIENT_SECRET = "s3cr3t-value-that-must-never-leak"


@pytest.fixture
def credentials_arn(aws: None) -> str:
    return str(
        aws_clients.client("secretsmanager").create_secret(
            Name="mm-processor/test/auth0",
            SecretString=json.dumps(
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
                    "audience": "https://m2m.topcoder-dev.com/",
                }
            ),
        )["ARN"]
    )


@pytest.fixture
def settings(credentials_arn: str) -> ScorerTokenRefresherSettings:
    return ScorerTokenRefresherSettings(
        environment_name="test",
        auth0_proxy_url="https://auth0proxy.example/token",
        auth0_credentials_secret_arn=credentials_arn,
        scorer_token_parameter_name=PARAMETER,
        refresh_margin_seconds=MARGIN,
    )


@pytest.fixture
def proxy(clock: Clock) -> FakeProxyTransport:
    return FakeProxyTransport(clock, lifetime=LIFETIME)


def run(settings: ScorerTokenRefresherSettings, proxy: FakeProxyTransport, clock: Clock, ssm: Any = None) -> Any:
    deps = wiring.ScorerTokenRefresherDependencies(
        settings, ssm=ssm, token_provider=wiring.token_provider_for(settings, transport=proxy, clock=clock)
    )
    return check(settings, ssm=deps.ssm, provider=deps.token_provider, metrics=deps.metrics, now=clock())


def stored() -> dict[str, Any]:
    return dict(aws_clients.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"])


def store(value: str) -> None:
    aws_clients.client("ssm").put_parameter(Name=PARAMETER, Value=value, Type="SecureString", Overwrite=True)


def gauges(output: str) -> list[float]:
    documents = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    for document in documents:
        (metric,) = document["_aws"]["CloudWatchMetrics"]
        assert metric["Namespace"] == "MMProcessor"
        assert metric["Metrics"] == [{"Name": "ScorerTokenSecondsToExpiry", "Unit": "Seconds"}]
        assert metric["Dimensions"] == [["Environment", "service"]]  # what the alarm names
        assert document["Environment"] == "test"
        assert document["service"] == "scorer-token-refresher"
    return [value for document in documents for value in document["ScorerTokenSecondsToExpiry"]]


def log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = logger.registered_formatter
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger.name]


def assert_no_secret_in(text: str, tokens: list[str]) -> None:
    assert CLIENT_SECRET not in text
    for token in tokens:
        assert token not in text
        assert token.split(".")[1] not in text  # not even the claims part


def test_the_first_run_creates_the_secure_string_with_a_token_from_the_proxy(
    settings: ScorerTokenRefresherSettings,
    proxy: FakeProxyTransport,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome = run(settings, proxy, clock)

    assert (outcome.action, outcome.why) == (Action.REFRESHED, Why.MISSING)
    (token,) = proxy.issued
    parameter = stored()
    assert parameter["Value"] == token
    assert parameter["Type"] == "SecureString"
    description = aws_clients.client("ssm").describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [PARAMETER]}]
    )["Parameters"][0]
    assert description["KeyId"] == "alias/aws/ssm"
    output = capsys.readouterr().out
    assert gauges(output) == [LIFETIME]
    (line,) = log_lines(caplog)
    assert (line["level"], line["action"], line["why"]) == ("INFO", "refreshed", "missing")
    assert_no_secret_in(output + json.dumps(log_lines(caplog)), proxy.issued)


def test_a_fresh_stored_token_is_kept_and_nothing_is_written_or_fetched(
    settings: ScorerTokenRefresherSettings, proxy: FakeProxyTransport, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = make_jwt(clock() + MARGIN + 60)
    store(kept)

    outcome = run(settings, proxy, clock)

    assert (outcome.action, outcome.why) == (Action.KEPT, Why.FRESH)
    assert proxy.posts == []
    assert stored()["Value"] == kept
    assert stored()["Version"] == 1  # no PutParameter
    assert gauges(capsys.readouterr().out) == [MARGIN + 60]


@pytest.mark.parametrize(
    ("stored_value", "why"),
    [
        (lambda now: make_jwt(now + MARGIN), Why.EXPIRES_SOON),  # exactly at the margin counts as due
        (lambda now: make_jwt(now + 120), Why.EXPIRES_SOON),
        (lambda now: make_jwt(now - 10), Why.EXPIRES_SOON),  # already expired
        (lambda now: "opaque-token-without-claims", Why.NO_EXPIRY),
    ],
)
def test_a_stored_token_that_expires_within_the_margin_is_replaced(
    settings: ScorerTokenRefresherSettings,
    proxy: FakeProxyTransport,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    stored_value: Any,
    why: Why,
) -> None:
    store(stored_value(clock()))

    outcome = run(settings, proxy, clock)

    assert (outcome.action, outcome.why) == (Action.REFRESHED, why)
    assert stored()["Value"] == proxy.issued[-1]
    assert stored()["Version"] == 2
    assert gauges(capsys.readouterr().out) == [LIFETIME]


def test_a_proxy_cached_token_inside_the_margin_is_not_stored_a_fresh_one_is(
    settings: ScorerTokenRefresherSettings, proxy: FakeProxyTransport, clock: Clock
) -> None:
    # Given a proxy whose cache serves a token with 10 minutes left until asked for a fresh one
    short = make_jwt(clock() + 600)

    def answer(body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("fresh_token"):
            token = make_jwt(clock() + LIFETIME, fresh=True)
            proxy.issued.append(token)
            return 200, {"access_token": token, "expires_in": LIFETIME - 60}
        return 200, {"access_token": short, "expires_in": 540}

    proxy.responder = answer

    outcome = run(settings, proxy, clock)

    assert [post["json"].get("fresh_token", False) for post in proxy.posts] == [False, True]
    assert stored()["Value"] == proxy.issued[-1] != short
    assert outcome.seconds_to_expiry == LIFETIME


def test_a_token_that_lives_shorter_than_the_margin_is_stored_and_warned_about(
    settings: ScorerTokenRefresherSettings,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    short_lived = FakeProxyTransport(clock, lifetime=3600)  # shorter than MARGIN, even fresh

    outcome = run(settings, short_lived, clock)

    assert outcome.action is Action.REFRESHED
    assert stored()["Value"] == short_lived.issued[-1]
    assert gauges(capsys.readouterr().out) == [3600]  # <= the margin: the alarm fires
    assert log_lines(caplog)[-1]["level"] == "WARNING"


def test_a_failing_proxy_publishes_what_the_parameter_still_holds_and_raises(
    settings: ScorerTokenRefresherSettings,
    proxy: FakeProxyTransport,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = make_jwt(clock() + 900)
    store(old)
    proxy.responder = lambda body: (503, f"upstream down for {body['client_id']}:{body['client_secret']}")

    with pytest.raises(ScorerTokenError, match="no token from the Auth0 proxy: Auth0 proxy answered 503"):
        run(settings, proxy, clock)

    assert stored()["Value"] == old  # untouched
    output = capsys.readouterr().out
    assert gauges(output) == [900]  # below the margin: the alarm fires
    (line,) = log_lines(caplog)
    assert line["level"] == "ERROR"
    assert line["stored_seconds_to_expiry"] == 900
    assert_no_secret_in(output + json.dumps(log_lines(caplog)), [old])


def test_an_unreadable_parameter_publishes_zero_and_raises_without_calling_the_proxy(
    settings: ScorerTokenRefresherSettings, proxy: FakeProxyTransport, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    class DeniedSsm:
        def get_parameter(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParameter")

    with pytest.raises(ScorerTokenError, match=f"cannot read SSM parameter {PARAMETER}: AccessDeniedException"):
        run(settings, proxy, clock, ssm=DeniedSsm())

    assert proxy.posts == []
    assert gauges(capsys.readouterr().out) == [0]


def test_a_failed_write_raises_naming_the_parameter_never_the_token(
    settings: ScorerTokenRefresherSettings, proxy: FakeProxyTransport, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    class ReadOnlySsm:
        def __init__(self) -> None:
            self._ssm = aws_clients.client("ssm")

        def get_parameter(self, **kwargs: Any) -> Any:
            return self._ssm.get_parameter(**kwargs)

        def put_parameter(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": kwargs["Value"]}}, "PutParameter")

    with pytest.raises(ScorerTokenError) as raised:
        run(settings, proxy, clock, ssm=ReadOnlySsm())

    assert str(raised.value) == f"cannot write SSM parameter {PARAMETER}: AccessDeniedException"
    assert raised.value.__cause__ is None  # `from None`: botocore's message (it may echo input) is not chained
    assert raised.value.__suppress_context__
    assert gauges(capsys.readouterr().out) == [0]  # nothing was stored


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"access_token": "opaque-value", "expires_in": 86_000}, "without a readable exp claim"),
        ({"access_token": make_jwt(1_000), "expires_in": 86_000}, "an expired token"),
    ],
)
def test_a_token_whose_age_cannot_be_trusted_is_not_stored(
    settings: ScorerTokenRefresherSettings,
    proxy: FakeProxyTransport,
    clock: Clock,
    answer: dict[str, Any],
    problem: str,
) -> None:
    proxy.responder = lambda body: (200, answer)
    with pytest.raises(ScorerTokenError, match=problem):
        run(settings, proxy, clock)
    with pytest.raises(ClientError, match="ParameterNotFound"):
        stored()


def test_the_handler_reads_its_settings_and_returns_the_outcome(
    settings: ScorerTokenRefresherSettings,
    proxy: FakeProxyTransport,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    wiring.use_dependencies(None)
    # the real clock decides (the handler's `now`); the fake proxy issues a day-long token from it
    monkeypatch.setattr(clock, "now", time.time())
    real_builder = wiring.token_provider_for
    monkeypatch.setattr(wiring, "token_provider_for", lambda config: real_builder(config, transport=proxy))

    context = FakeLambdaContext(
        function_name="mm-test-scorer-token-refresher",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:mm-test-scorer-token-refresher",
        aws_request_id="request-1",
    )

    try:
        first = refresher.handler({}, context)
        second = refresher.handler({}, context)
    finally:
        wiring.use_dependencies(None)
    assert (first["action"], first["why"]) == ("refreshed", "missing")
    assert LIFETIME - 5 <= first["secondsToExpiry"] <= LIFETIME
    assert (second["action"], second["why"]) == ("kept", "fresh")
    assert len(proxy.posts) == 1
    assert_no_secret_in(capsys.readouterr().out, proxy.issued)
