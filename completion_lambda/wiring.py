"""What the completion function talks to, built from `CompletionSettings`, each part on first use.

`dependencies()` builds them once per process from the environment; `use_dependencies(deps)` is the one test
seam (the tests, the fault matrix and the local pipeline install theirs; None forgets, so the next call rebuilds
from the environment). Nothing here talks to AWS until a part is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from completion_lambda.capacity import FreedSlots
from completion_lambda.observability import logger
from completion_lambda.reporting import ReporterUnavailableError, ReviewApi, SummationsApi
from completion_lambda.service import CompletionPolicy, CompletionService, ConfigSource
from mm_adapters import aws
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.dependency_slot import DependencySlot
from mm_adapters.metrics import EmfMetricsSink
from mm_adapters.status_store import StatusStore
from mm_adapters.topcoder.review_summations import ReviewSummationsClient
from mm_adapters.topcoder.submission_api import SubmissionApiClient
from mm_adapters.topcoder.token import build_token_provider
from mm_capacity.callbacks import challenge_settings_of, dispatcher_metrics
from mm_capacity.config import EnvironmentCapacityLoader, SnapshotObserver
from mm_capacity.dispatcher import Admitted, Dispatcher
from mm_capacity.queues import ChallengeQueues
from mm_capacity.store import CapacityStore
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.ports import MetricsSink, TokenProvider
from mm_contracts.settings import CompletionSettings


class CompletionDependencies:
    """Everything the handler talks to, built on first use and kept for the container's lifetime.

    Tests pass fakes for any of them; the rest are built from the settings as in production.
    """

    def __init__(
        self,
        settings: CompletionSettings,
        *,
        store: StatusStore | None = None,
        config_source: ConfigSource | None = None,
        token_provider: TokenProvider | None = None,
        review_api: ReviewApi | None = None,
        summations_api: SummationsApi | None = None,
        ecs: Any | None = None,
        sqs: Any | None = None,
        metrics_sink: MetricsSink | None = None,
        capacity_store: CapacityStore | None = None,
        environment_capacity: Callable[[], EnvironmentCapacity] | None = None,
    ) -> None:
        self.settings = settings
        self._capacity_store = capacity_store
        self._environment_capacity = environment_capacity
        self._queues: ChallengeQueues | None = None
        self._freed_slots: FreedSlots | None = None
        self._store = store
        self._config_source = config_source
        self._token_provider = token_provider
        self._review_api = review_api
        self._summations_api = summations_api
        self._ecs = ecs
        self._sqs = sqs
        self._metrics_sink = metrics_sink

    @property
    def store(self) -> StatusStore:
        if self._store is None:
            self._store = StatusStore(self.settings.status_table_name, ttl_days=self.settings.status_ttl_days)
        return self._store

    @property
    def config_source(self) -> ConfigSource:
        if self._config_source is None:
            self._config_source = ChallengeConfigLoader.under_prefix(
                self.settings.challenge_config_parameter_prefix, self.settings.config_cache_seconds
            )
        return self._config_source

    @property
    def token_provider(self) -> TokenProvider:
        if self._token_provider is None:
            self._token_provider = build_token_provider(self.settings)
        return self._token_provider

    def review_api(self) -> ReviewApi:
        """v5: the Submission API client; only an environment with SUBMISSION_API_URL has one."""
        if self._review_api is None:
            if not self.settings.submission_api_url:
                raise ReporterUnavailableError("v5 challenge, but SUBMISSION_API_URL is not configured")
            self._review_api = SubmissionApiClient(
                self.settings.submission_api_url,
                self.token_provider,
                timeout_seconds=self.settings.api_timeout_seconds,
                max_retries=self.settings.api_max_retries,
            )
        return self._review_api

    def summations_api(self) -> SummationsApi:
        """v6: the review-api-v6 summations client; only an environment with REVIEW_API_URL has one."""
        if self._summations_api is None:
            if not self.settings.review_api_url:
                raise ReporterUnavailableError("v6 challenge, but REVIEW_API_URL is not configured")
            self._summations_api = ReviewSummationsClient(
                self.settings.review_api_url,
                self.token_provider,
                timeout_seconds=self.settings.api_timeout_seconds,
                max_retries=self.settings.api_max_retries,
            )
        return self._summations_api

    def ecs(self) -> Any:
        if self._ecs is None:
            self._ecs = aws.client("ecs")
        return self._ecs

    def sqs(self) -> Any:
        """For relaunching a transient start failure through its challenge queue (decision 072)."""
        if self._sqs is None:
            self._sqs = aws.client("sqs")
        return self._sqs

    @property
    def capacity_store(self) -> CapacityStore:
        if self._capacity_store is None:
            self._capacity_store = CapacityStore(
                self.settings.capacity_table_name,
                self.settings.status_table_name,
                ttl_days=self.settings.status_ttl_days,
                clock=self.store.now,
            )
        return self._capacity_store

    @property
    def environment_capacity(self) -> Callable[[], EnvironmentCapacity]:
        if self._environment_capacity is None:
            self._environment_capacity = EnvironmentCapacityLoader(
                self.settings.capacity_parameter_name, self.settings.capacity_cache_seconds
            ).get
        return self._environment_capacity

    @property
    def snapshot_observer(self) -> SnapshotObserver:
        """The dispatch's pool snapshot to the loaders (decision 121): the versions stamped on the pool items tell
        them whether their caps and configs are current, so a warm function reads SSM only when one changed.
        An injected plain callable or fake config source observes nothing (it keeps its own caching)."""
        caps = getattr(self.environment_capacity, "__self__", None)
        configs = self.config_source
        return SnapshotObserver(
            caps if isinstance(caps, EnvironmentCapacityLoader) else None,
            configs if isinstance(configs, ChallengeConfigLoader) else None,
        )

    @property
    def queues(self) -> ChallengeQueues | None:
        """The challenge queues (relaunches and admitted runs); None without a queue name template."""
        if self._queues is None and self.settings.challenge_queue_name_template:
            self._queues = ChallengeQueues(self.settings.challenge_queue_name_template, self.sqs)
        return self._queues

    def _send_admitted(self, admitted: Admitted) -> None:
        queues = self.queues
        if queues is None:
            # The run stays ADMITTED: the sweeper re-sends it after its admission deadline.
            raise RuntimeError("CHALLENGE_QUEUE_NAME_TEMPLATE is not set: admitted runs cannot be sent")
        queues.send_admitted(admitted)

    @property
    def freed_slots(self) -> FreedSlots:
        """Release + env-wide dispatch after a final outcome (decision 096). Nothing is built until first use."""
        if self._freed_slots is None:
            dispatcher = Dispatcher(
                self.capacity_store,
                environment_capacity=self.environment_capacity,
                challenge_settings=challenge_settings_of(self.config_source, logger=logger),
                send=self._send_admitted,
                logger=logger,
                metrics=dispatcher_metrics(self.metrics_sink),
                observe_snapshot=self.snapshot_observer,
            )
            self._freed_slots = FreedSlots(self.capacity_store, dispatcher, logger=logger, metrics=self.metrics_sink)
        return self._freed_slots

    @property
    def metrics_sink(self) -> MetricsSink:
        """EMF lines with the Environment (and, from POWERTOOLS_SERVICE_NAME, service) dimensions."""
        if self._metrics_sink is None:
            self._metrics_sink = EmfMetricsSink.for_function(self.settings)
        return self._metrics_sink

    def service(self) -> CompletionService:
        return CompletionService(
            environment_name=self.settings.environment_name,
            store=self.store,
            config_source=self.config_source,
            review_api=self.review_api,
            summations_api=self.summations_api,
            ecs=self.ecs,
            sqs=self.sqs,
            metrics=self.metrics_sink,
            policy=CompletionPolicy.from_settings(self.settings),
            logger=logger,
            capacity=self.freed_slots,
            queues=self.queues,
        )


_slot = DependencySlot(lambda: CompletionDependencies(CompletionSettings.from_env()))


def dependencies() -> CompletionDependencies:
    """This process's dependencies, built once from `CompletionSettings.from_env()`."""
    return _slot.get()


def use_dependencies(deps: CompletionDependencies | None) -> None:
    """The one test seam: install `deps` (or, with None, forget them: the next call rebuilds from the environment)."""
    _slot.use(deps)
