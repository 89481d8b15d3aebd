"""The challenge processor function's dependencies, built from `ChallengeProcessorSettings`, and its one test seam.

One function per challenge, one worker process per function (also in the local pipeline, decision 060), so one
set of dependencies per process: `dependencies()` builds `ChallengeDependencies` from the environment on first
use (a `SettingsError` names the bad variable) and each part on its own first use, so importing the handler
creates no AWS client. `use_dependencies(deps)` installs other dependencies (tests, the local pipeline);
`use_dependencies(None)` forgets them, so the next call rebuilds from the environment. See docs/decisions/028, 099.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from challenge_lambda.credentials import (
    ScorerCredentialResolver,
    TokenProviderFactory,
    default_token_provider_factory,
)
from challenge_lambda.launcher import EcsLauncher
from challenge_lambda.observability import logger as function_logger
from challenge_lambda.processor import ChallengeProcessor
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.dependency_slot import DependencySlot
from mm_adapters.metrics import EmfMetricsSink
from mm_adapters.status_store import StatusStore
from mm_capacity.config import EnvironmentCapacityLoader
from mm_capacity.store import CapacityStore
from mm_contracts.metric_names import CHALLENGE_DIMENSION
from mm_contracts.ports import Clock, MetricsSink
from mm_contracts.settings import ChallengeProcessorSettings


class ChallengeDependencies:
    """Everything the challenge processor is built from. Keyword overrides replace a part (tests pass fakes or
    clients of their own; `processor` installs a whole processor); a client left None is the function's own,
    fetched lazily (`mm_adapters.aws` caches them)."""

    def __init__(
        self,
        settings: ChallengeProcessorSettings,
        *,
        metrics: MetricsSink | None = None,
        logger: Logger | None = None,
        ssm_client: Any | None = None,
        dynamodb_client: Any | None = None,
        lambda_client: Any | None = None,
        sqs_client: Any | None = None,
        launcher: EcsLauncher | None = None,
        token_provider_factory: TokenProviderFactory | None = None,
        clock: Clock = time.time,
        config_clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        processor: ChallengeProcessor | None = None,
    ) -> None:
        self.settings = settings
        self.logger = logger or function_logger
        self.clock = clock
        self.config_clock = config_clock
        self.sleep = sleep
        self._metrics = metrics
        self._ssm = ssm_client
        self._dynamodb = dynamodb_client
        self._lambda = lambda_client
        self._sqs = sqs_client
        self._launcher = launcher
        self._token_provider_factory = token_provider_factory
        self._processor = processor

    @property
    def metrics(self) -> MetricsSink:
        """EMF lines with dimensions Environment, ChallengeId and service (+ Reason, Phase where counted)."""
        if self._metrics is None:
            self._metrics = EmfMetricsSink.for_function(
                self.settings, dimensions={CHALLENGE_DIMENSION: self.settings.challenge_id}
            )
        return self._metrics

    @property
    def processor(self) -> ChallengeProcessor:
        if self._processor is None:
            self._processor = self._build_processor()
        return self._processor

    def _build_processor(self) -> ChallengeProcessor:
        settings = self.settings
        parameter_name = settings.challenge_config_parameter
        return ChallengeProcessor(
            challenge_id=settings.challenge_id,
            environment_name=settings.environment_name,
            max_receive_count=settings.max_receive_count,
            lease_seconds=settings.launch_lease_seconds,
            allowed_url_hosts=settings.allowed_url_hosts,
            # One challenge per function: the parameter name comes from the environment as deployed.
            config_loader=ChallengeConfigLoader(
                lambda _challenge_id: parameter_name,
                settings.config_cache_seconds,
                self._ssm,
                clock=self.config_clock,
            ),
            status_store=StatusStore(
                settings.status_table_name,
                ttl_days=settings.status_ttl_days,
                clock=self.clock,
                dynamodb_client=self._dynamodb,
            ),
            launcher=self._launcher or EcsLauncher(),
            credentials=ScorerCredentialResolver(
                token_parameter_name=settings.token_parameter_name,
                token_provider_factory=self._token_provider_factory or default_token_provider_factory(settings),
            ),
            metrics=self.metrics,
            logger=self.logger,
            capacity_store=CapacityStore(
                settings.capacity_table_name,
                settings.status_table_name,
                ttl_days=settings.status_ttl_days,
                clock=self.clock,
                dynamodb_client=self._dynamodb,
            ),
            environment_capacity=EnvironmentCapacityLoader(
                settings.capacity_parameter_name,
                settings.capacity_cache_seconds,
                self._ssm,
                clock=self.config_clock,
            ),
            challenge_queue_url=settings.challenge_queue_url,
            completion_function_name=settings.completion_function_name,
            lambda_client=self._lambda,
            sqs_client=self._sqs,
            clock=self.clock,
            sleep=self.sleep,
        )


_slot = DependencySlot(lambda: ChallengeDependencies(ChallengeProcessorSettings.from_env()))


def dependencies() -> ChallengeDependencies:
    return _slot.get()


def use_dependencies(deps: ChallengeDependencies | None) -> None:
    _slot.use(deps)
