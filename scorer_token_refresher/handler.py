"""Scorer-token refresher Lambda (EventBridge schedule, decision 091): keep the Topcoder M2M token that scorer
task definitions reference (`secrets`: ACCESS_TOKEN) valid in its SSM SecureString. Never logs the token.

Every run publishes `ScorerTokenSecondsToExpiry` for the token the parameter holds afterwards (0 when none is
usable). The alarm fires when that falls to the refresh margin or below, and when the metric is missing, so a
refresher that fails or stops running never looks healthy; a failure also raises (Errors alarm). The next
scheduled run is the retry.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mm_adapters import aws
from mm_adapters.topcoder.token import Auth0ProxyTokenProvider, TokenProvider
from mm_contracts.metric_names import ENVIRONMENT_DIMENSION, SERVICE_DIMENSION, Metric
from mm_contracts.settings import ScorerTokenRefresherSettings
from scorer_token_refresher.refresh import (
    Action,
    RefreshOutcome,
    ScorerTokenError,
    StoredToken,
    read_stored,
    refresh,
)

logger = Logger()
tracer = Tracer()


@functools.cache
def settings() -> ScorerTokenRefresherSettings:
    return ScorerTokenRefresherSettings.from_env()


def token_provider_for(config: ScorerTokenRefresherSettings, **dependencies: Any) -> Auth0ProxyTokenProvider:
    """The provider with the refresher's margin as its own, so it never hands back a token that would need
    replacing at once: when the proxy's cached token falls inside the margin it asks for a fresh one (031).
    `dependencies`: the provider's seams (session, secrets_client, clock) for tests."""
    return Auth0ProxyTokenProvider(
        config.auth0_proxy_url,
        config.auth0_credentials_secret_arn,
        refresh_margin_seconds=config.refresh_margin_seconds,
        **dependencies,
    )


@functools.cache
def token_provider() -> Auth0ProxyTokenProvider:
    """One provider per container (a warm start reuses its cached token and credentials)."""
    return token_provider_for(settings())


def publish_seconds_to_expiry(settings: ScorerTokenRefresherSettings, seconds: float) -> None:
    """One EMF document: dimensions Environment and service (what the alarm names), value in seconds."""
    with single_metric(
        name=Metric.SCORER_TOKEN_SECONDS_TO_EXPIRY,
        unit=MetricUnit.Seconds,
        value=round(seconds),
        namespace=settings.powertools_metrics_namespace,
        default_dimensions={
            ENVIRONMENT_DIMENSION: settings.environment_name,
            SERVICE_DIMENSION: settings.powertools_service_name,
        },
    ):
        pass


def check(settings: ScorerTokenRefresherSettings, *, ssm: Any, provider: TokenProvider, now: float) -> RefreshOutcome:
    parameter = settings.scorer_token_parameter_name
    stored: StoredToken | None = None
    try:
        stored = read_stored(ssm, parameter)
        outcome = refresh(
            ssm,
            provider,
            parameter_name=parameter,
            kms_key_id=settings.scorer_token_kms_key_id,
            margin_seconds=settings.refresh_margin_seconds,
            now=now,
            stored=stored,
        )
    except Exception as error:
        # What the parameter still holds (0 when unknown) goes to the alarm; the raise to the Errors alarm.
        publish_seconds_to_expiry(settings, stored.seconds_left(now) if stored is not None else 0.0)
        problem = str(error) if isinstance(error, ScorerTokenError) else type(error).__name__
        logger.error(
            "scorer token refresh failed",
            extra={
                "parameter": parameter,
                "problem": problem,
                "stored_seconds_to_expiry": round(stored.seconds_left(now)) if stored is not None else None,
            },
        )
        raise
    publish_seconds_to_expiry(settings, outcome.seconds_to_expiry)
    fields = {"parameter": parameter, **outcome.log_fields()}
    if outcome.seconds_to_expiry <= settings.refresh_margin_seconds:
        # A brand-new token that already falls inside the margin: tasks may outlive it (shorter token lifetime
        # than the longest run). Stored anyway, it is the newest there is; the alarm says so.
        logger.warning("scorer token lives shorter than the refresh margin", extra=fields)
    elif outcome.action is Action.REFRESHED:
        logger.info("scorer token refreshed", extra=fields)
    else:
        logger.info("scorer token still fresh", extra=fields)
    return outcome


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = check(settings(), ssm=aws.client("ssm"), provider=token_provider(), now=time.time())
    return {
        "action": outcome.action.value,
        "why": outcome.why.value,
        "secondsToExpiry": round(outcome.seconds_to_expiry),
    }
