"""Timeout sweeper Lambda (EventBridge schedule): describe due LAUNCHED tasks and stop or reconcile them, stop or
adopt the pipeline's untracked tasks, dead-letter stuck launches and re-drive unfinished reports, then reconcile
capacity slots, re-send unclaimed admissions, dispatch waiting runs and emit the capacity gauges (see
`sweeper_lambda.sweeper`; decisions 008, 071, 073, 080, 096).

Returns a summary; raises after the whole run when something failed, so the function's Errors metric shows
it (the failed items stay due and are retried by the next run).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from completion_lambda.capacity import ChallengeQueues, SweeperCapacity, challenge_settings_of, dispatcher_metrics
from completion_lambda.observability import (
    GaugeSink,
    MetricsSink,
    PowertoolsMetricsSink,
    logger,
    metrics,
    set_environment_dimension,
    tracer,
)
from mm_adapters import aws
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.status_store import StatusStore
from mm_capacity.config import EnvironmentCapacityLoader
from mm_capacity.dispatcher import Dispatcher
from mm_capacity.reconciler import SlotReconciler
from mm_capacity.store import CapacityStore
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda.sweeper import TimeoutSweeper


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
        capacity_store: CapacityStore | None = None,
        config_source: Any | None = None,
        environment_capacity: Callable[[], EnvironmentCapacity] | None = None,
        sqs: Any | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._ecs = ecs
        self._lambda_client = lambda_client
        self._metrics_sink = metrics_sink
        self._capacity_store = capacity_store
        self._config_source = config_source
        self._environment_capacity = environment_capacity
        self._sqs = sqs
        self._capacity: SweeperCapacity | None = None

    def lambda_client(self) -> Any:
        if self._lambda_client is None:
            self._lambda_client = aws.client("lambda")
        return self._lambda_client

    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = aws.client("sqs")
        return self._sqs

    @property
    def store(self) -> StatusStore:
        if self._store is None:
            self._store = StatusStore(self.settings.status_table_name)
        return self._store

    @property
    def metrics_sink(self) -> MetricsSink:
        if self._metrics_sink is None:
            self._metrics_sink = PowertoolsMetricsSink(self.settings.environment_name)
        return self._metrics_sink

    @property
    def capacity(self) -> SweeperCapacity:
        """The capacity passes' ports (decision 096); built once, no AWS call until a pass uses them."""
        if self._capacity is None:
            settings = self.settings
            if self._capacity_store is None:
                self._capacity_store = CapacityStore(
                    settings.capacity_table_name, settings.status_table_name, clock=self.store.sweep_time
                )
            if self._config_source is None:
                prefix = settings.challenge_config_parameter_prefix.rstrip("/")
                self._config_source = ChallengeConfigLoader(
                    name_for=lambda challenge_id: f"{prefix}/{challenge_id}/config",
                    max_age_seconds=settings.config_cache_seconds,
                )
            if self._environment_capacity is None:
                self._environment_capacity = EnvironmentCapacityLoader(
                    settings.capacity_parameter_name, settings.capacity_cache_seconds
                ).get
            queues = ChallengeQueues(settings.challenge_queue_name_template, self.sqs)
            challenge_settings = challenge_settings_of(self._config_source, logger=logger)
            sink = self.metrics_sink
            self._capacity = SweeperCapacity(
                store=self._capacity_store,
                dispatcher=Dispatcher(
                    self._capacity_store,
                    environment_capacity=self._environment_capacity,
                    challenge_settings=challenge_settings,
                    send=queues.send_admitted,
                    logger=logger,
                    metrics=dispatcher_metrics(self.metrics_sink),
                ),
                reconciler=SlotReconciler(
                    self._capacity_store,
                    self.store,
                    logger,
                    dispatcher_metrics(self.metrics_sink),
                    grace_seconds=settings.slot_reconcile_grace_seconds,
                ),
                send=queues.send_admitted,
                challenge_settings=challenge_settings,
                environment_capacity=self._environment_capacity,
                gauges=sink if isinstance(sink, GaugeSink) else PowertoolsMetricsSink(settings.environment_name),
            )
        return self._capacity

    def sweeper(self) -> TimeoutSweeper:
        if self._ecs is None:
            self._ecs = aws.client("ecs")
        return TimeoutSweeper(
            store=self.store,
            ecs=self._ecs,
            metrics=self.metrics_sink,
            settings=self.settings,
            logger=logger,
            lambda_client=self.lambda_client,
            capacity=self.capacity,
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
