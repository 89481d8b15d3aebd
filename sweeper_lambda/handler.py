"""Sweeper Lambda (EventBridge schedule): the pipeline's safety net, run in passes (`sweeper_lambda.sweep`):
describe due LAUNCHED tasks and stop or reconcile them, stop or adopt the pipeline's untracked tasks, dead-letter
stuck launches and re-drive unfinished reports, then reconcile capacity slots, re-send unclaimed admissions,
dispatch waiting runs and emit the capacity gauges (decisions 008, 071, 073, 080, 096, 100).

The scheduled event carries nothing the sweep needs. Returns a summary; raises after the whole run when something
failed, so the function's Errors metric shows it (the failed items stay due and are retried by the next run).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sweeper_lambda.observability import logger
from sweeper_lambda.wiring import dependencies


class SweepIncompleteError(RuntimeError):
    """Some overdue tasks could not be stopped or reconciled in this run."""


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    result = deps.sweeper().sweep()
    logger.info("sweep finished", extra=result.to_dict())
    if result.failed:
        raise SweepIncompleteError(
            f"{len(result.failed)} of {result.examined} items or tasks could not be handled: {result.failed[:10]}"
        )
    return result.to_dict()
