"""What the sweeper talks to, built from `TimeoutSweeperSettings`, each part on first use.

`dependencies()` builds them once per process from the environment; `use_dependencies(deps)` is the one test
seam (None forgets, so the next call rebuilds from the environment). Nothing here talks to AWS until a sweep does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mm_adapters import aws
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.dependency_slot import DependencySlot
from mm_adapters.metrics import EmfMetricsSink
from mm_adapters.status_store import StatusStore
from mm_capacity.callbacks import challenge_settings_of, dispatcher_metrics
from mm_capacity.config import EnvironmentCapacityLoader, SnapshotObserver, VersionStamps
from mm_capacity.dispatcher import Dispatcher
from mm_capacity.queues import ChallengeQueues
from mm_capacity.reconciler import SlotReconciler
from mm_capacity.store import CapacityStore
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.ports import MetricsSink
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda.capacity import SweeperCapacity
from sweeper_lambda.config_versions import ConfigVersionsPass
from sweeper_lambda.observability import logger
from sweeper_lambda.sweep import Sweeper


class SweeperDependencies:
    """Everything a sweep talks to; tests pass fakes for any of them, the rest come from the settings."""

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
        ssm: Any | None = None,
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
        self._ssm = ssm
        self._capacity: SweeperCapacity | None = None

    def lambda_client(self) -> Any:
        if self._lambda_client is None:
            self._lambda_client = aws.client("lambda")
        return self._lambda_client

    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = aws.client("sqs")
        return self._sqs

    def ssm(self) -> Any:
        """For the config versions pass (GetParameters); the loaders keep their own client."""
        if self._ssm is None:
            self._ssm = aws.client("ssm")
        return self._ssm

    def ecs(self) -> Any:
        if self._ecs is None:
            self._ecs = aws.client("ecs")
        return self._ecs

    @property
    def store(self) -> StatusStore:
        if self._store is None:
            self._store = StatusStore(self.settings.status_table_name)
        return self._store

    @property
    def metrics_sink(self) -> MetricsSink:
        """EMF lines with the Environment (and, from POWERTOOLS_SERVICE_NAME, service) dimensions: the capacity
        gauges' environment line is what the alarms watch."""
        if self._metrics_sink is None:
            self._metrics_sink = EmfMetricsSink.for_function(self.settings)
        return self._metrics_sink

    @property
    def capacity_store(self) -> CapacityStore:
        if self._capacity_store is None:
            settings = self.settings
            self._capacity_store = CapacityStore(
                settings.capacity_table_name, settings.status_table_name, clock=self.store.sweep_time
            )
        return self._capacity_store

    @property
    def config_source(self) -> Any:
        if self._config_source is None:
            self._config_source = ChallengeConfigLoader.under_prefix(
                self.settings.challenge_config_parameter_prefix, self.settings.config_cache_seconds
            )
        return self._config_source

    @property
    def environment_capacity(self) -> Callable[[], EnvironmentCapacity]:
        if self._environment_capacity is None:
            self._environment_capacity = EnvironmentCapacityLoader(
                self.settings.capacity_parameter_name, self.settings.capacity_cache_seconds
            ).get
        return self._environment_capacity

    @property
    def snapshot_observer(self) -> SnapshotObserver:
        """The dispatch's pool snapshot to the loaders (decision 121), as in the completion function; an injected
        plain callable or fake config source observes nothing."""
        caps = getattr(self.environment_capacity, "__self__", None)
        configs = self.config_source
        return SnapshotObserver(
            caps if isinstance(caps, EnvironmentCapacityLoader) else None,
            configs if isinstance(configs, ChallengeConfigLoader) else None,
        )

    @property
    def capacity(self) -> SweeperCapacity:
        """The capacity passes' ports (decision 096); built once, no AWS call until a pass uses them."""
        if self._capacity is None:
            queues = ChallengeQueues(self.settings.challenge_queue_name_template, self.sqs)
            challenge_settings = challenge_settings_of(self.config_source, logger=logger)
            count = dispatcher_metrics(self.metrics_sink)
            self._capacity = SweeperCapacity(
                store=self.capacity_store,
                dispatcher=Dispatcher(
                    self.capacity_store,
                    environment_capacity=self.environment_capacity,
                    challenge_settings=challenge_settings,
                    send=queues.send_admitted,
                    logger=logger,
                    metrics=count,
                    observe_snapshot=self.snapshot_observer,
                ),
                reconciler=SlotReconciler(
                    self.capacity_store,
                    self.store,
                    logger,
                    count,
                    grace_seconds=self.settings.slot_reconcile_grace_seconds,
                ),
                send=queues.send_admitted,
                challenge_settings=challenge_settings,
                environment_capacity=self.environment_capacity,
                gauges=self.metrics_sink,
            )
        return self._capacity

    def config_versions(self) -> ConfigVersionsPass:
        """The config versions pass (decision 121): the versions of the caps and the configs stamped on the pool
        items; its loaders observe them (an injected plain callable or fake observes nothing)."""
        store = self.capacity_store
        prefix = self.settings.challenge_config_parameter_prefix.rstrip("/")
        return ConfigVersionsPass(
            VersionStamps(self.settings.capacity_table_name, lambda: store.client),
            ssm=self.ssm,
            caps_parameter=self.settings.capacity_parameter_name,
            config_name_for=lambda challenge_id: f"{prefix}/{challenge_id}/config",
            logger=logger,
            caps_loader=getattr(self.environment_capacity, "__self__", None),
            config_loader=self.config_source,
        )

    def sweeper(self) -> Sweeper:
        return Sweeper(
            store=self.store,
            ecs=self.ecs(),
            metrics=self.metrics_sink,
            settings=self.settings,
            logger=logger,
            lambda_client=self.lambda_client,
            capacity=self.capacity,
            config_versions=self.config_versions(),
        )


_slot = DependencySlot(lambda: SweeperDependencies(TimeoutSweeperSettings.from_env()))


def dependencies() -> SweeperDependencies:
    """This process's dependencies, built once from `TimeoutSweeperSettings.from_env()`."""
    return _slot.get()


def use_dependencies(deps: SweeperDependencies | None) -> None:
    """The one test seam: install `deps` (or, with None, forget them: the next call rebuilds from the environment)."""
    _slot.use(deps)
