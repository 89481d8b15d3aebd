"""Sweeper Lambda (EventBridge schedule): the pipeline's safety net, run in passes (`sweeper_lambda.sweep`):
describe due LAUNCHED tasks and stop or reconcile them, stop or adopt the pipeline's untracked tasks, dead-letter
stuck launches and re-drive unfinished reports, then reconcile capacity slots, re-send unclaimed admissions,
dispatch waiting runs and emit the capacity gauges (decisions 008, 071, 073, 080, 096, 100).

The scheduled event carries nothing the sweep needs. Returns a summary; raises after the whole run when something
failed, so the function's Errors metric shows it (the failed items stay due and are retried by the next run).

A Parameter Store change event (`aws.ssm`, the environment's parameter-change rule, decision 121) runs only the
config versions pass: no ECS, no status table, no dispatch (`sweeper_lambda.parameter_change`, imported only then).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sweeper_lambda.observability import logger
from sweeper_lambda.ssm_event_names import is_ssm_event
from sweeper_lambda.wiring import SweeperDependencies, dependencies


class SweepIncompleteError(RuntimeError):
    """Some overdue tasks could not be stopped or reconciled in this run."""


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    if is_ssm_event(event):
        return _on_parameter_change(deps, event)
    result = deps.sweeper().sweep()
    logger.info("sweep finished", extra=result.to_dict())
    if result.failed:
        raise SweepIncompleteError(
            f"{len(result.failed)} of {result.examined} items or tasks could not be handled: {result.failed[:10]}"
        )
    return result.to_dict()


def _on_parameter_change(deps: SweeperDependencies, event: dict[str, Any]) -> dict[str, Any]:
    """The config versions pass alone; a failure raises (Errors metric) and the next scheduled sweep stamps it."""
    # Imported here: a scheduled sweep, the common invocation, builds none of the event's models (issue 13).
    from sweeper_lambda.parameter_change import IgnoredEvent, parameter_change_of

    settings = deps.settings
    change = parameter_change_of(
        event,
        caps_parameter=settings.capacity_parameter_name,
        config_prefix=settings.challenge_config_parameter_prefix,
    )
    if isinstance(change, IgnoredEvent):
        logger.warning("aws.ssm event ignored", extra={"reason": change.reason, "event_id": event.get("id")})
        return {"ignored": change.reason}
    sync = deps.config_versions().stamp()
    summary = {
        "parameterChanged": change.name,
        "operation": change.operation,
        "capsVersion": sync.caps_version,
        "stamped": sync.stamped,
        "raced": sync.raced,
    }
    logger.info("config versions stamped after a parameter change", extra=summary)
    return summary
