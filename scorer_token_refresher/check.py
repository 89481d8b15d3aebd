"""One run of the scorer-token refresher: refresh the stored token when needed (`refresh.py`), publish
`ScorerTokenSecondsToExpiry` for the token the parameter holds afterwards (0 when none is usable; dimensions
Environment and service: what the alarm names), log the outcome. Never logs the token.

A failure still publishes what the parameter holds (0 when unknown) for the alarm, then raises (Errors alarm).
"""

from __future__ import annotations

from typing import Any

from mm_contracts.metric_names import Metric
from mm_contracts.ports import MetricsSink, TokenProvider
from mm_contracts.settings import ScorerTokenRefresherSettings
from scorer_token_refresher.observability import logger
from scorer_token_refresher.refresh import Action, RefreshOutcome, ScorerTokenError, StoredToken, read_stored, refresh


def publish_seconds_to_expiry(metrics: MetricsSink, seconds: float) -> None:
    metrics.gauge(Metric.SCORER_TOKEN_SECONDS_TO_EXPIRY, round(seconds), seconds=True)


def check(
    settings: ScorerTokenRefresherSettings, *, ssm: Any, provider: TokenProvider, metrics: MetricsSink, now: float
) -> RefreshOutcome:
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
        publish_seconds_to_expiry(metrics, stored.seconds_left(now) if stored is not None else 0.0)
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
    publish_seconds_to_expiry(metrics, outcome.seconds_to_expiry)
    _log_outcome(outcome, parameter, settings.refresh_margin_seconds)
    return outcome


def _log_outcome(outcome: RefreshOutcome, parameter: str, margin_seconds: int) -> None:
    fields = {"parameter": parameter, **outcome.log_fields()}
    if outcome.seconds_to_expiry <= margin_seconds:
        # A brand-new token that already falls inside the margin: tasks may outlive it (shorter token lifetime
        # than the longest run). Stored anyway, it is the newest there is; the alarm says so.
        logger.warning("scorer token lives shorter than the refresh margin", extra=fields)
    elif outcome.action is Action.REFRESHED:
        logger.info("scorer token refreshed", extra=fields)
    else:
        logger.info("scorer token still fresh", extra=fields)
