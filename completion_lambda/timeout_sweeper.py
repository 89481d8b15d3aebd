"""Timeout sweeper Lambda (EventBridge schedule): describe due LAUNCHED tasks and stop or reconcile them, stop or
adopt the pipeline's untracked tasks, dead-letter stuck launches and re-drive unfinished reports (see
`completion_lambda.sweeper`; decisions 008, 071, 073, 080).

Returns a summary; raises after the whole run when something failed, so the function's Errors metric shows
it (the failed items stay due and are retried by the next run).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from completion_lambda.observability import (
    MetricsSink,
    PowertoolsMetricsSink,
    logger,
    metrics,
    set_environment_dimension,
    tracer,
)
from completion_lambda.sweeper import TimeoutSweeper
from mm_shared import aws
from mm_shared.settings import TimeoutSweeperSettings
from mm_shared.status_store import StatusStore


class SweepIncompleteError(RuntimeError):
    """Some overdue tasks could not be stopped or reconciled in this run."""


@functools.cache
def settings() -> TimeoutSweeperSettings:
    return TimeoutSweeperSettings.from_env()


class SweeperDependencies:
    def __init__(
        self,
        settings: TimeoutSweeperSettings,
        *,
        store: StatusStore | None = None,
        ecs: Any | None = None,
        lambda_client: Any | None = None,
        metrics_sink: MetricsSink | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._ecs = ecs
        self._lambda_client = lambda_client
        self._metrics_sink = metrics_sink

    def lambda_client(self) -> Any:
        if self._lambda_client is None:
            self._lambda_client = aws.client("lambda")
        return self._lambda_client

    def sweeper(self) -> TimeoutSweeper:
        if self._store is None:
            self._store = StatusStore(self.settings.status_table_name)
        if self._ecs is None:
            self._ecs = aws.client("ecs")
        if self._metrics_sink is None:
            self._metrics_sink = PowertoolsMetricsSink(self.settings.environment_name)
        return TimeoutSweeper(
            store=self._store,
            ecs=self._ecs,
            metrics=self._metrics_sink,
            settings=self.settings,
            logger=logger,
            lambda_client=self.lambda_client,
        )


_dependencies: SweeperDependencies | None = None


def dependencies() -> SweeperDependencies:
    global _dependencies
    if _dependencies is None:
        _dependencies = SweeperDependencies(settings())
    return _dependencies


def use_dependencies(deps: SweeperDependencies | None) -> None:
    global _dependencies
    _dependencies = deps


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    set_environment_dimension(deps.settings.environment_name)
    result = deps.sweeper().sweep()
    logger.info("sweep finished", extra=result.to_dict())
    if result.failed:
        raise SweepIncompleteError(
            f"{len(result.failed)} of {result.examined} items or tasks could not be handled: {result.failed[:10]}"
        )
    return result.to_dict()
