"""Router Lambda entry point (MSK trigger): glue only. The logic is `router_lambda.router.Router`.

Settings are read once per execution environment (a `SettingsError` names the bad variable); the
Router, and with it the challenge cache, lives as long as the warm environment.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from mm_contracts.metric_names import ENVIRONMENT_DIMENSION
from mm_contracts.settings import RouterSettings
from router_lambda.observability import PowertoolsMetrics, logger, metrics, tracer
from router_lambda.router import Router

_router: Router | None = None


def get_router() -> Router:
    global _router
    if _router is None:
        settings = RouterSettings.from_env()
        metrics.set_default_dimensions(**{ENVIRONMENT_DIMENSION: settings.environment_name})
        _router = Router.from_settings(settings, metrics=PowertoolsMetrics(metrics, settings.environment_name))
    return _router


def reset() -> None:
    """Forget settings, clients' owner and cache (tests and the local pipeline switch environments)."""
    global _router
    _router = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return get_router().handle(event)
