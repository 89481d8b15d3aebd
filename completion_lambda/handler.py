"""Completion Lambda: EventBridge "ECS Task State Change" (STOPPED) -> outcome -> one report of the run.

Also accepts the asynchronous "Run Report Due" payload (`mm_contracts.models.report_due`) for a run that has no
task (a v6 skip). Thin glue: settings, lazily built clients, parsing, then `CompletionService.process`. A raised error
fails the invocation on purpose (EventBridge target retries, then the function's async retries, then
the rule target's DLQ); every other path returns normally.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from completion_lambda.capacity import ChallengeQueues, FreedSlots, challenge_settings_of, dispatcher_metrics
from completion_lambda.observability import (
    MetricsSink,
    PowertoolsMetricsSink,
    logger,
    metrics,
    set_environment_dimension,
    tracer,
)
from completion_lambda.reporting import ReporterUnavailableError, ReviewApi, SummationsApi
from completion_lambda.service import CompletionPolicy, CompletionService, ConfigSource
from mm_adapters import aws
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.status_store import StatusStore
from mm_adapters.topcoder.review_summations import ReviewSummationsClient
from mm_adapters.topcoder.submission_api import SubmissionApiClient
from mm_adapters.topcoder.token import TokenProvider, build_token_provider
from mm_capacity.config import EnvironmentCapacityLoader
from mm_capacity.dispatcher import Admitted, Dispatcher
from mm_capacity.store import CapacityStore
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.ecs_event import ECS_EVENT_SOURCE, ECS_TASK_STATE_CHANGE, EcsTaskStateChangeEvent
from mm_contracts.models.report_due import RunReportDueEvent, parse_report_due_event
from mm_contracts.settings import CompletionSettings


class InvalidEventError(ValueError):
    """The event is not a well-formed ECS Task State Change or Run Report Due event (kept in the DLQ)."""


@functools.cache
def settings() -> CompletionSettings:
    return CompletionSettings.from_env()


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
            prefix = self.settings.challenge_config_parameter_prefix.rstrip("/")
            self._config_source = ChallengeConfigLoader(
                name_for=lambda challenge_id: f"{prefix}/{challenge_id}/config",
                max_age_seconds=self.settings.config_cache_seconds,
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
            )
            self._freed_slots = FreedSlots(self.capacity_store, dispatcher, logger=logger, metrics=self.metrics_sink)
        return self._freed_slots

    @property
    def metrics_sink(self) -> MetricsSink:
        if self._metrics_sink is None:
            self._metrics_sink = PowertoolsMetricsSink(self.settings.environment_name)
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


_dependencies: CompletionDependencies | None = None


def dependencies() -> CompletionDependencies:
    global _dependencies
    if _dependencies is None:
        _dependencies = CompletionDependencies(settings())
    return _dependencies


def use_dependencies(deps: CompletionDependencies | None) -> None:
    """Install (or with None, forget) the dependencies; for tests and the local pipeline."""
    global _dependencies
    _dependencies = deps


def parse_event(event: dict[str, Any]) -> EventBridgeModel | RunReportDueEvent:
    """The typed ECS event for an ECS Task State Change; the report-due event; the bare envelope for anything else.

    The envelope is checked first, so another kind of event is ignored (by the service) rather than
    failing detail validation. Validation errors are reported by location only: the input may hold a
    plain-text token.
    """
    try:
        report_due = parse_report_due_event(event)
        if report_due is not None:
            return report_due
        envelope = EventBridgeModel.model_validate(event)
        if envelope.source != ECS_EVENT_SOURCE or envelope.detail_type != ECS_TASK_STATE_CHANGE:
            return envelope
        return EcsTaskStateChangeEvent.model_validate(event)
    except ValidationError as error:
        locations = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in error.errors(include_input=False)
        )
        raise InvalidEventError(f"not a valid ECS Task State Change or Run Report Due event: {locations}") from None


@logger.inject_lambda_context(log_event=False, clear_state=True)  # never log the event: it may hold a token
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = dependencies()
    set_environment_dimension(deps.settings.environment_name)
    try:
        parsed = parse_event(event)
    except InvalidEventError:
        logger.exception("invalid event")
        raise
    return deps.service().process(parsed).to_dict()
