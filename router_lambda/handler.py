"""Router Lambda entry point (MSK trigger): glue only. The logic is `router_lambda.routing.SubmissionRouter`, its
dependencies come from `router_lambda.wiring` (settings read once per execution environment; the router, and with
it the challenge cache, lives as long as the warm environment). Metrics are EMF lines written as they happen.
The heap is frozen once, after the first invocation (`mm_adapters.warm_heap`, decision 113).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mm_adapters.warm_heap import HeapFreeze
from router_lambda.observability import logger
from router_lambda.records import MskEvent
from router_lambda.wiring import dependencies

if TYPE_CHECKING:  # importing the batch package runs its processors' imports: ~100 ms of a cold start
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

warm_heap = HeapFreeze()


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    response = dependencies().router.handle(MskEvent.model_validate(event))
    warm_heap.after_invocation()  # the batch's models are gone by now; only the first call freezes
    return response
