"""The router function's dependencies, built from `RouterSettings`, and its one test seam.

`dependencies()` builds `RouterDependencies` once per process from the environment (a `SettingsError` names the
bad variable); each part is built on first use, so importing the handler creates no AWS client. The router, and
with it the challenge cache, lives as long as the warm execution environment. `use_dependencies(deps)` installs
other dependencies (tests, the local pipeline); `use_dependencies(None)` forgets them, so the next call rebuilds
from the environment. See docs/decisions/099.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from mm_adapters import aws
from mm_adapters.dependency_slot import DependencySlot
from mm_adapters.metrics import EmfMetricsSink
from mm_contracts.ports import Clock, MetricsSink
from mm_contracts.settings import RouterSettings
from router_lambda.audit import AuditSender, SqsSendMessageBatch
from router_lambda.audit_marks import AuditMarks, DynamoDBBatch
from router_lambda.challenges import ChallengeCache, ChallengeResolver
from router_lambda.publisher import Publisher, SnsPublishBatch
from router_lambda.routing import SubmissionRouter

UNPROCESSED_KEYS_ATTEMPTS = 4


class RouterDependencies:
    """Everything the router's logic is built from. Keyword overrides replace a part (tests pass fakes): real
    clients unless given, fetched lazily on each call (`mm_adapters.aws` caches them)."""

    def __init__(
        self,
        settings: RouterSettings,
        *,
        metrics: MetricsSink | None = None,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        sns: Callable[[], SnsPublishBatch] | None = None,
        sqs: Callable[[], SqsSendMessageBatch] | None = None,
        dynamodb: Callable[[], DynamoDBBatch] | None = None,  # the challenge table and the audit marks
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self._metrics = metrics
        self._sns = sns or (lambda: aws.client("sns"))
        self._sqs = sqs or (lambda: aws.client("sqs"))
        self._dynamodb = dynamodb or (lambda: aws.client("dynamodb"))
        self._router: SubmissionRouter | None = None

    @property
    def metrics(self) -> MetricsSink:
        """EMF lines with dimensions Environment and service (+ Reason on skip/reject counts)."""
        if self._metrics is None:
            self._metrics = EmfMetricsSink.for_function(self.settings)
        return self._metrics

    @property
    def router(self) -> SubmissionRouter:
        if self._router is None:
            self._router = self._build_router()
        return self._router

    def _build_router(self) -> SubmissionRouter:
        settings = self.settings
        return SubmissionRouter(
            settings,
            resolver=ChallengeResolver(
                settings.challenge_table_name,
                self._dynamodb,
                ChallengeCache(settings.challenge_cache_seconds, self.clock),
                max_attempts=UNPROCESSED_KEYS_ATTEMPTS,
                sleep=self.sleep,
                jitter=self.jitter,
            ),
            publisher=Publisher(
                settings.sns_topic_arn,
                self._sns,
                max_attempts=settings.publish_max_attempts,
                sleep=self.sleep,
                jitter=self.jitter,
            ),
            auditor=AuditSender(
                settings.audit_queue_url,
                self._sqs,
                max_attempts=settings.publish_max_attempts,
                sleep=self.sleep,
                jitter=self.jitter,
            ),
            marks=AuditMarks(
                settings.audit_marks_table_name,
                self._dynamodb,
                ttl_seconds=settings.audit_mark_ttl_days * 86_400,
                clock=self.clock,
                max_attempts=UNPROCESSED_KEYS_ATTEMPTS,
                sleep=self.sleep,
                jitter=self.jitter,
            ),
            metrics=self.metrics,
            clock=self.clock,
        )


_slot = DependencySlot(lambda: RouterDependencies(RouterSettings.from_env()))


def dependencies() -> RouterDependencies:
    return _slot.get()


def use_dependencies(deps: RouterDependencies | None) -> None:
    _slot.use(deps)
