"""Router Lambda entry point (MSK trigger): glue only. The logic is `router_lambda.routing.SubmissionRouter`, its
dependencies come from `router_lambda.wiring` (settings read once per execution environment; the router, and with
it the challenge cache, lives as long as the warm environment). Metrics are EMF lines written as they happen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from router_lambda.observability import logger
from router_lambda.records import MskEvent
from router_lambda.wiring import dependencies

if TYPE_CHECKING:  # importing the batch package runs its processors' imports: ~100 ms of a cold start
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    deps = dependencies()
    batch = MskEvent.model_validate(event)
    return deps.router.handle(batch)
