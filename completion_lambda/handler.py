"""Completion Lambda: EventBridge "ECS Task State Change" (STOPPED) -> outcome -> one report of the run.

Also accepts the asynchronous "Run Report Due" payload (`mm_contracts.models.report_due`) for a run that has no
task (a v6 skip). Thin glue: the dependencies (`completion_lambda.wiring`), parsing (`completion_lambda.events`),
then `CompletionService.process`. A raised error fails the invocation on purpose (EventBridge target retries, then
the function's async retries, then the rule target's DLQ); every other path returns normally.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from completion_lambda.events import InvalidEventError, parse_event
from completion_lambda.observability import logger
from completion_lambda.wiring import dependencies


@logger.inject_lambda_context(log_event=False, clear_state=True)  # never log the event: it may hold a token
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    try:
        parsed = parse_event(event)
    except InvalidEventError:
        logger.exception("invalid event")
        raise
    return deps.service().process(parsed).to_dict()
