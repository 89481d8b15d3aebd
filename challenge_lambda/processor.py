"""One SQS message in, at most one scorer task out: the challenge processor's logic, free of Lambda glue.

`process()` returns when the message can be deleted (a task was launched, or the delivery is a
duplicate) and raises `RecordFailed` when it must go back to the queue (SQS retries it, then moves it
to the challenge DLQ after `MAX_RECEIVE_COUNT` receives). See docs/decisions/020-029.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn
from uuid import UUID

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from challenge_lambda.credentials import (
    ScorerCredentialResolver,
    TokenProviderFactory,
    TokenUnavailableError,
    default_token_provider_factory,
)
from challenge_lambda.launcher import (
    EcsLauncher,
    LaunchErrorKind,
    LaunchOutcomeUnknown,
    LaunchRejected,
    LaunchResult,
    RunTaskRequest,
    build_run_task_request,
)
from challenge_lambda.observability import MetricsSink
from mm_shared.challenge_config import ChallengeConfigError, ChallengeConfigLoader, ConfigErrorReason
from mm_shared.models.challenge import ChallengeConfig
from mm_shared.models.lifecycle import FINAL_STATES
from mm_shared.models.routed import RoutedSubmission
from mm_shared.observability import Metric
from mm_shared.settings import ChallengeProcessorSettings
from mm_shared.status_store import LaunchClaim, LaunchDecision, StatusStore
from mm_shared.url_policy import url_refusal

_MAX_DETAIL = 300


class RecordOutcome(StrEnum):
    LAUNCHED = "launched"
    DUPLICATE = "duplicate"  # acknowledged without RunTask


class FailureReason(StrEnum):
    """Reason codes of failures decided here (RunTask reasons come from the launcher)."""

    INVALID_MESSAGE = "InvalidMessage"
    WRONG_CHALLENGE = "WrongChallenge"
    CONFIG_ERROR = "ConfigError"
    TOKEN_UNAVAILABLE = "TokenUnavailable"
    UNEXPECTED = "Unexpected"
    LAUNCH_IN_FLIGHT = "LaunchInFlight"  # another delivery holds a live launch lease: retried, not a failure
    URL_NOT_ALLOWED = "UrlNotAllowed"  # the submission URL fails the shared URL policy (decision 076)


class RecordFailed(Exception):
    """The message goes back to SQS (batch item failure). The message is safe to log: no secrets."""

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = reason_code
        self.detail = detail[:_MAX_DETAIL]
        super().__init__(f"{reason_code}: {self.detail}")


class InFlightElsewhere(RecordFailed):
    """Back to SQS without counting a failure: a concurrent delivery is launching this submission."""


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    body: str
    receive_count: int


class ChallengeProcessor:
    def __init__(
        self,
        *,
        challenge_id: str,
        environment_name: str,
        max_receive_count: int,
        lease_seconds: int,
        allowed_url_hosts: tuple[str, ...],
        config_loader: ChallengeConfigLoader,
        status_store: StatusStore,
        launcher: EcsLauncher,
        credentials: ScorerCredentialResolver,
        metrics: MetricsSink,
        logger: Logger,
    ) -> None:
        self.challenge_id = str(UUID(challenge_id))  # canonical form, as the router writes it
        self._environment = environment_name
        self._max_receive_count = max_receive_count
        self._lease_seconds = lease_seconds
        self._allowed_url_hosts = allowed_url_hosts
        self._configs = config_loader
        self._store = status_store
        self._launcher = launcher
        self._credentials = credentials
        self._metrics = metrics
        self._logger = logger
        # Set after a config error or a configuration-class RunTask error: the next message (on this
        # warm instance) re-reads the parameter instead of trusting the cache.
        self._refresh_config = False

    @classmethod
    def from_settings(
        cls,
        settings: ChallengeProcessorSettings,
        *,
        metrics: MetricsSink,
        logger: Logger,
        ssm_client: Any | None = None,
        dynamodb_client: Any | None = None,
        launcher: EcsLauncher | None = None,
        token_provider_factory: TokenProviderFactory | None = None,
        clock: Callable[[], float] = time.time,
        config_clock: Callable[[], float] = time.monotonic,
    ) -> ChallengeProcessor:
        parameter_name = settings.challenge_config_parameter
        return cls(
            challenge_id=settings.challenge_id,
            environment_name=settings.environment_name,
            max_receive_count=settings.max_receive_count,
            lease_seconds=settings.launch_lease_seconds,
            allowed_url_hosts=settings.allowed_url_hosts,
            # One challenge per function: the parameter name comes from the environment as deployed.
            config_loader=ChallengeConfigLoader(
                lambda _challenge_id: parameter_name,
                settings.config_cache_seconds,
                ssm_client,
                clock=config_clock,
            ),
            status_store=StatusStore(
                settings.status_table_name,
                ttl_days=settings.status_ttl_days,
                clock=clock,
                dynamodb_client=dynamodb_client,
            ),
            launcher=launcher or EcsLauncher(),
            credentials=ScorerCredentialResolver(
                token_parameter_name=settings.token_parameter_name,
                token_provider_factory=token_provider_factory or default_token_provider_factory(settings),
            ),
            metrics=metrics,
            logger=logger,
        )

    # ------------------------------------------------------------------ entry
    def process(self, message: InboundMessage) -> RecordOutcome:
        try:
            return self._process(message)
        except InFlightElsewhere:
            raise
        except RecordFailed as failure:
            self._on_failed(message, failure.reason_code, failure.detail)
            raise
        except Exception as error:
            # Status table or other infrastructure errors: the lease (if any) stays, SQS retries.
            self._logger.exception(
                "record failed unexpectedly; back to the queue",
                extra={"error_type": type(error).__name__, **_ids(message)},
            )
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.UNEXPECTED.value)
            self._on_failed(message, FailureReason.UNEXPECTED.value, type(error).__name__)
            raise
        finally:
            self._logger.set_correlation_id(None)

    def _process(self, message: InboundMessage) -> RecordOutcome:
        submission = self._parse(message)
        # Every log line of this record carries the submission id as correlation id (as the completion
        # function's do), so one Logs Insights filter follows a submission across functions.
        self._logger.set_correlation_id(submission.submission_id)
        ids = {"submission_id": submission.submission_id, "kafka_record": submission.correlation_id}
        config = self._config(ids)
        claim = self._store.claim_launch(
            submission,
            scorer_type=config.scorer_type,
            lease_seconds=self._lease_seconds,
            timeout_seconds=config.timeout,
        )
        if claim.decision is LaunchDecision.DUPLICATE_IN_FLIGHT:
            # Another delivery holds a live launch lease. This may be a second copy of the very same SQS
            # message: acknowledging it would delete the message, and if the holder then died nothing would
            # retry the launch. Hand it back instead; after the visibility timeout the claim is settled
            # (LAUNCHED: acknowledged then) or its lease has expired (re-claimed with the same clientToken).
            self._logger.info("launch in flight in another delivery; message handed back", extra=ids)
            raise InFlightElsewhere(FailureReason.LAUNCH_IN_FLIGHT.value, "another delivery holds the launch lease")
        if not claim.granted:
            self._metrics.count(Metric.DUPLICATES_SKIPPED)
            self._logger.info(
                "duplicate delivery acknowledged without RunTask",
                extra={
                    "decision": claim.decision.value,
                    "state": claim.record.state.value if claim.record else None,
                    "task_arn": claim.record.task_arn if claim.record else None,
                    **ids,
                },
            )
            return RecordOutcome.DUPLICATE
        request = self._request(submission, config, claim, message)
        result = self._launch(submission, claim, request, message)
        return self._record_launched(submission, config, claim, result, ids)

    # ------------------------------------------------------------------ steps
    def _parse(self, message: InboundMessage) -> RoutedSubmission:
        try:
            submission = RoutedSubmission.model_validate_json(message.body)
        except ValidationError as error:
            fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or e["type"] for e in error.errors()}))
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.INVALID_MESSAGE.value)
            raise RecordFailed(
                FailureReason.INVALID_MESSAGE.value, f"body is not a RoutedSubmission (fields: {fields})"
            ) from None
        if submission.challenge_id != self.challenge_id:
            # A routing mistake (filter policy, subscription). Never launch; keep the evidence in the DLQ.
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.WRONG_CHALLENGE.value)
            raise RecordFailed(
                FailureReason.WRONG_CHALLENGE.value,
                f"message for challenge {submission.challenge_id} (submission {submission.submission_id}) "
                f"reached the processor of {self.challenge_id}",
            )
        # The router's policy again, from the same module and allow list: never launch a scorer on a URL the
        # queue could hand us past the router (file://, the metadata address, a foreign host). Permanent: the
        # message reaches the DLQ after its receives, nothing is claimed, RunTask is never called.
        refusal = url_refusal(submission.url, self._allowed_url_hosts)
        if refusal is not None:
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.URL_NOT_ALLOWED.value)
            raise RecordFailed(
                FailureReason.URL_NOT_ALLOWED.value,
                f"submission {submission.submission_id}: url refused ({refusal.value})",  # never the URL itself
            )
        return submission

    def _config(self, ids: dict[str, str]) -> ChallengeConfig:
        try:
            config = self._configs.get(self.challenge_id, force_refresh=self._refresh_config)
            if not config.subnets:
                raise ChallengeConfigError(
                    self.challenge_id,
                    "(loaded config)",
                    ConfigErrorReason.INVALID_FIELDS,
                    "subnets: Fargate awsvpc networking needs at least one subnet",
                )
        except ChallengeConfigError as error:
            self._refresh_config = True
            self._configs.invalidate(self.challenge_id)
            self._metrics.count(Metric.CONFIG_ERRORS)
            self._logger.error(
                "challenge config unusable; message back to the queue",
                extra={
                    "config_error": error.reason.value,
                    "config_detail": error.detail,
                    "parameter": error.parameter_name,
                    **ids,
                },
            )
            raise RecordFailed(FailureReason.CONFIG_ERROR.value, str(error)) from None
        self._refresh_config = False
        return config

    def _request(
        self, submission: RoutedSubmission, config: ChallengeConfig, claim: LaunchClaim, message: InboundMessage
    ) -> RunTaskRequest:
        try:
            credentials = self._credentials.resolve(config.scorer_credentials_mode)
        except TokenUnavailableError as error:
            self._launch_failed(submission, claim, message, FailureReason.TOKEN_UNAVAILABLE.value, str(error))
        if credentials.insecure:
            # The value itself is never logged; the overrides of this mode are never logged either.
            self._logger.warning(
                "scorer credentials mode environment_token_insecure: the M2M token is placed in the task "
                "environment and is visible in DescribeTasks, ECS events and CloudTrail",
                extra={"submission_id": submission.submission_id},
            )
        return build_run_task_request(
            submission,
            config,
            environment_name=self._environment,
            attempt=claim.attempt,
            credential_environment=credentials.environment,
            secret_values=credentials.secret_values,
        )

    def _launch(
        self, submission: RoutedSubmission, claim: LaunchClaim, request: RunTaskRequest, message: InboundMessage
    ) -> LaunchResult:
        try:
            return self._launcher.run_task(request)
        except LaunchRejected as error:
            if error.kind is LaunchErrorKind.PERMANENT:
                self._refresh_config = True  # e.g. the task definition named in the cached config is gone
            self._launch_failed(
                submission,
                claim,
                message,
                error.reason_code,
                request.redact(error.detail),
                token_settled=error.token_settled,
            )
        except LaunchOutcomeUnknown as error:
            self._outcome_unknown(submission, claim, request, message, error.reason_code, request.redact(error.detail))
        except Exception as error:
            # A bug or an unforeseen error type: we cannot prove ECS saw nothing, so treat it as ambiguous.
            self._outcome_unknown(submission, claim, request, message, type(error).__name__, request.redact(str(error)))

    def _launch_failed(
        self,
        submission: RoutedSubmission,
        claim: LaunchClaim,
        message: InboundMessage,
        reason_code: str,
        detail: str,
        *,
        token_settled: bool = True,
    ) -> NoReturn:
        """A definite failure of this call: record it and fail (the next claim gets a new clientToken unless an
        earlier call of this attempt was ambiguous and this answer does not settle it)."""
        dead_lettered = message.receive_count >= self._max_receive_count
        recorded = self._store.mark_launch_failed(
            submission.submission_id,
            attempt=claim.attempt,
            reason=f"{reason_code}: {detail}",
            dead_lettered=dead_lettered,
            token_settled=token_settled,
        )
        self._metrics.count(Metric.LAUNCH_FAILURES, reason=reason_code)
        self._logger.warning(
            "launch failed; message back to the queue",
            extra={
                "reason": reason_code,
                "detail": detail,
                "attempt": claim.attempt,
                "dead_lettered": dead_lettered,
                "recorded": recorded,
                "submission_id": submission.submission_id,
            },
        )
        # `from None`: the original exception (whose text may echo request values) is not chained into tracebacks.
        raise RecordFailed(reason_code, detail) from None

    def _outcome_unknown(
        self,
        submission: RoutedSubmission,
        claim: LaunchClaim,
        request: RunTaskRequest,
        message: InboundMessage,
        reason_code: str,
        detail: str,
    ) -> NoReturn:
        """RunTask may have started a task: the attempt is marked ambiguous, so every retry reuses this
        clientToken; on the last receive the item says DEAD_LETTERED (the sweeper adopts or stops a task
        that did start)."""
        dead_lettered = message.receive_count >= self._max_receive_count
        self._store.mark_launch_outcome_unknown(
            submission.submission_id,
            attempt=claim.attempt,
            reason=f"{reason_code}: {detail}",
            dead_lettered=dead_lettered,
        )
        self._metrics.count(Metric.LAUNCH_FAILURES, reason=reason_code)
        self._logger.warning(
            "RunTask outcome unknown; lease kept, the retry reuses the same clientToken",
            extra={
                "reason": reason_code,
                "detail": detail,
                "attempt": claim.attempt,
                "client_token": request.client_token,
                "submission_id": submission.submission_id,
            },
        )
        # `from None`: the original exception (whose text may echo request values) is not chained into tracebacks.
        raise RecordFailed(reason_code, detail) from None

    def _record_launched(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        claim: LaunchClaim,
        result: LaunchResult,
        ids: dict[str, str],
    ) -> RecordOutcome:
        marked = self._store.mark_launched(
            submission.submission_id,
            attempt=claim.attempt,
            task_arn=result.task_arn,
            cluster_arn=result.cluster_arn,
            timeout_seconds=config.timeout,
        )
        if marked:
            self._metrics.count(Metric.TASKS_LAUNCHED)
            self._logger.info(
                "scorer task launched",
                extra={"task_arn": result.task_arn, "attempt": claim.attempt, "adopted": result.adopted, **ids},
            )
            return RecordOutcome.LAUNCHED
        record = self._store.get(submission.submission_id)
        if record is not None and record.task_arn == result.task_arn and record.state in FINAL_STATES:
            # The task already stopped and the completion function recorded it before we got here.
            self._metrics.count(Metric.TASKS_LAUNCHED)
            self._logger.info(
                "scorer task launched and already finished",
                extra={"task_arn": result.task_arn, **ids},
            )
            return RecordOutcome.LAUNCHED
        self._metrics.count(Metric.DUPLICATES_SKIPPED)
        self._logger.warning(
            "task started but another delivery owns the record now (same clientToken, same task)",
            extra={"task_arn": result.task_arn, "state": record.state.value if record else None, **ids},
        )
        return RecordOutcome.DUPLICATE

    def _on_failed(self, message: InboundMessage, reason_code: str, detail: str) -> None:
        last = message.receive_count >= self._max_receive_count
        if last:
            self._metrics.count(Metric.DEAD_LETTERED)
        self._logger.error(
            "message failed back to the queue" + ("; last receive, SQS moves it to the DLQ" if last else ""),
            extra={
                "reason": reason_code,
                "detail": detail,
                "receive_count": message.receive_count,
                "max_receive_count": self._max_receive_count,
                **_ids(message),
            },
        )


def _ids(message: InboundMessage) -> dict[str, str]:
    return {"message_id": message.message_id}


__all__ = ["ChallengeProcessor", "FailureReason", "InboundMessage", "RecordFailed", "RecordOutcome"]
