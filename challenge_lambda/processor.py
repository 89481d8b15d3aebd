"""One SQS message in, at most one scorer task per run (submission, phase) out: the challenge processor's logic.

A message names a submission; it launches one run per phase (`submission.phase` when the message names one, else the
config's onSubmission phases), each with its own status item, lease, attempt and clientToken, so each is launched
exactly once whatever is retried or duplicated. `process()` returns when the message can be deleted (every run was
launched, is waiting for capacity, is a duplicate, or was recorded as skipped or superseded) and raises
`RecordFailed` when it must go back to the queue (SQS retries it, then moves it to the challenge DLQ after
`MAX_RECEIVE_COUNT` receives); a redelivery launches only the runs still unfinished. A v6 submission the pipeline
will not score is recorded as skipped runs and handed to the completion function for its terminal report, as is a v6
run that definitely could not be started on its last receive (its message still goes to the DLQ for a redrive).
See docs/decisions/020-029, 085, 086, 087.

Capacity (decisions 093-095): a new run is first written WAITING into its challenge's capacity queue (one
transaction, before the message is acknowledged), then this challenge's queue is dispatched. The run this message
carries, when admitted, is launched right here under this message (no extra hop when nothing contends); any other
run admitted on the way is sent to this challenge's queue, whose message then launches it. A run that meets a full
cap simply stays WAITING and its message is deleted: the completion function and the sweeper admit it when a slot
frees. RunTask is paced env-wide; a run throttled by the pace or by ECS goes back to WAITING in its place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn
from uuid import UUID

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
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
from mm_adapters import aws
from mm_adapters.challenge_config import ChallengeConfigError, ChallengeConfigLoader, ConfigErrorReason
from mm_adapters.status_store import LaunchClaim, LaunchDecision, StatusStore
from mm_capacity.config import CapacityConfigError, EnvironmentCapacityLoader
from mm_capacity.dispatcher import Admitted, Dispatcher, DispatchResult, admitted_message_body
from mm_capacity.store import CapacityStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity, SupersedePolicy
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import PhaseConfig, Platform, RunKey, ScoringPhase
from mm_contracts.models.report_due import report_due_event
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.settings import ChallengeProcessorSettings
from mm_contracts.url_policy import url_refusal

_MAX_DETAIL = 300
# The phase a v6 skip is reported on when the config cannot say which phases would have run: the one Topcoder's
# own processor marks (marathon-match-api-v6 `marathon-match-submission.handler.ts`, `markSubmissionScoringSkipped`
# defaults `testPhase` to provisional).
DEFAULT_SKIP_PHASE = ScoringPhase.PROVISIONAL
# The status item's scorer type for a run skipped before any config could be read.
_UNCONFIGURED_SCORER = "unconfigured"
# Pacing (decision 094): without a RunTask token this second, wait for the next second this many times at most
# (a Lambda invocation must not sleep long), then the run goes back to WAITING in its place.
PACE_MAX_WAITS = 5
# The states whose message is launched through `claim_launch` (it decides between a grant and a duplicate):
# admitted to a slot, a definite failure being retried through SQS, or a launch lease (live or expired).
_CLAIMABLE_STATES = frozenset({SubmissionState.ADMITTED, SubmissionState.LAUNCH_FAILED, SubmissionState.LAUNCHING})


class RecordOutcome(StrEnum):
    LAUNCHED = "launched"  # at least one run launched, every other one waiting or a duplicate
    WAITING = "waiting"  # a run waits for capacity (durably, in the capacity queue); the message is deleted
    CANCELLED = "cancelled"  # the run arrived superseded by a newer submission of its member (decision 095)
    DUPLICATE = "duplicate"  # acknowledged without RunTask
    SKIPPED = "skipped"  # v6: recorded as failed runs without a task, their terminal report handed on


class ThrottleReason(StrEnum):
    """`LaunchesThrottled` reasons: the run went back to WAITING in its place instead of failing."""

    PACED = "Paced"  # the pipeline's own RunTask pace had no token left within PACE_MAX_WAITS seconds
    THROTTLED = "Throttled"  # ECS answered ThrottlingException


# `RunsCancelled` reason of a run cancelled because its member submitted again.
SUPERSEDED_REASON = "superseded"


class SkipReason(StrEnum):
    """Member-visible reasons of a v6 skip decided here (the router's own arrive as `skip_reason`)."""

    NO_PHASE_TRIGGERED = "Marathon Match scoring skipped because no configured phase is triggered by a new submission."
    CONFIG_UNUSABLE = "Marathon Match scoring skipped because the challenge configuration could not be used"


class FailureReason(StrEnum):
    """Reason codes of failures decided here (RunTask reasons come from the launcher)."""

    INVALID_MESSAGE = "InvalidMessage"
    WRONG_CHALLENGE = "WrongChallenge"
    CONFIG_ERROR = "ConfigError"
    TOKEN_UNAVAILABLE = "TokenUnavailable"
    UNEXPECTED = "Unexpected"
    LAUNCH_IN_FLIGHT = "LaunchInFlight"  # another delivery holds a live launch lease: retried, not a failure
    URL_NOT_ALLOWED = "UrlNotAllowed"  # the submission URL fails the shared URL policy (decision 076)
    PHASE_NOT_CONFIGURED = "PhaseNotConfigured"  # the message names a phase the challenge config lacks (085)
    # The message's platform is not the challenge's (a replay or a hand-sent message past the router's
    # platform_mismatch skip): never launched, never reported on the wrong platform (decision 088).
    PLATFORM_MISMATCH = "PlatformMismatch"
    # A throttled run could not be put back in its capacity queue (its item changed meanwhile): SQS retries it.
    REQUEUE_FAILED = "RequeueFailed"


class RecordFailed(Exception):
    """The message goes back to SQS (batch item failure). The message is safe to log: no secrets."""

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = reason_code
        self.detail = detail[:_MAX_DETAIL]
        super().__init__(f"{reason_code}: {self.detail}")


class InFlightElsewhere(RecordFailed):
    """Back to SQS without counting a failure: a concurrent delivery is launching this run."""


class ConfigUnusable(RecordFailed):
    """The challenge config cannot be read or validated (`config_reason`: a `ConfigErrorReason` value)."""

    def __init__(self, config_reason: str, detail: str) -> None:
        super().__init__(FailureReason.CONFIG_ERROR.value, detail)
        self.config_reason = config_reason


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
        capacity_store: CapacityStore,
        environment_capacity: EnvironmentCapacityLoader,
        challenge_queue_url: str,
        completion_function_name: str | None = None,
        lambda_client: Any | None = None,
        sqs_client: Any | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
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
        self._completion_function_name = completion_function_name
        self._lambda_client = lambda_client
        self._capacity = capacity_store
        self._environment_capacity = environment_capacity
        self._challenge_queue_url = challenge_queue_url
        self._sqs_client = sqs_client
        self._clock = clock
        self._sleep = sleep
        # Only this challenge's queue: its runs are admitted here, other challenges' by the completion function and
        # the sweeper (env-wide). An admitted run is sent to this challenge's own queue.
        self._dispatcher = Dispatcher(
            capacity_store,
            environment_capacity=environment_capacity.get,
            challenge_settings=self._own_challenge_settings,
            send=self._send_admitted,
            logger=logger,
            # Its second argument is a challenge id: this function's metrics carry its own already.
            metrics=lambda metric, _challenge_id: metrics.count(metric),
        )
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
        lambda_client: Any | None = None,
        sqs_client: Any | None = None,
        launcher: EcsLauncher | None = None,
        token_provider_factory: TokenProviderFactory | None = None,
        clock: Callable[[], float] = time.time,
        config_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
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
            capacity_store=CapacityStore(
                settings.capacity_table_name,
                settings.status_table_name,
                ttl_days=settings.status_ttl_days,
                clock=clock,
                dynamodb_client=dynamodb_client,
            ),
            environment_capacity=EnvironmentCapacityLoader(
                settings.capacity_parameter_name,
                settings.capacity_cache_seconds,
                ssm_client,
                clock=config_clock,
            ),
            challenge_queue_url=settings.challenge_queue_url,
            completion_function_name=settings.completion_function_name,
            lambda_client=lambda_client,
            sqs_client=sqs_client,
            clock=clock,
            sleep=sleep,
        )

    @property
    def lambda_client(self) -> Any:
        return self._lambda_client if self._lambda_client is not None else aws.client("lambda")

    @property
    def sqs_client(self) -> Any:
        return self._sqs_client if self._sqs_client is not None else aws.client("sqs")

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
        # function's do), so one Logs Insights filter follows a submission across functions and phases.
        self._logger.set_correlation_id(submission.submission_id)
        ids = {"submission_id": submission.submission_id, "kafka_record": submission.correlation_id}
        try:
            config = self._config(ids)
        except ConfigUnusable as failure:
            if submission.platform is Platform.V6 and self._last_receive(message):
                # v6: a submission must never look "in queue forever" (decision 086); the DLQ would hide it.
                reason = submission.skip_reason or f"{SkipReason.CONFIG_UNUSABLE.value} ({failure.config_reason})."
                unfinished = self._skip(submission, [submission.phase or DEFAULT_SKIP_PHASE], reason, None, ids)
                if not unfinished:
                    return RecordOutcome.SKIPPED
                # A run an earlier receive of this message claimed (e.g. a relaunch) is not ours to settle here:
                # the message goes to the DLQ as before, with the run's own record.
            raise
        if submission.platform is not config.platform:
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.PLATFORM_MISMATCH.value)
            raise RecordFailed(
                FailureReason.PLATFORM_MISMATCH.value,
                f"submission {submission.submission_id}: a {submission.platform.value} message for a "
                f"{config.platform.value} challenge",
            )
        phases = self._phases_of(submission, config)
        if submission.skip_reason is not None:
            # A run that exists already has its own path to a report (a skip message never launches one).
            self._skip(submission, phases or [DEFAULT_SKIP_PHASE], submission.skip_reason, config, ids)
            return RecordOutcome.SKIPPED
        if not phases:
            if submission.platform is Platform.V6:
                self._skip(submission, [DEFAULT_SKIP_PHASE], SkipReason.NO_PHASE_TRIGGERED.value, config, ids)
                return RecordOutcome.SKIPPED
            # The config model holds a v5 challenge to exactly one onSubmission phase: a bug if reached.
            raise RecordFailed(FailureReason.CONFIG_ERROR.value, "the challenge config triggers no phase")
        return self._launch_runs(submission, config, phases, message)

    def _launch_runs(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        phases: list[ScoringPhase],
        message: InboundMessage,
    ) -> RecordOutcome:
        """Every phase is tried, whatever another one answers; the message goes back if any run must be retried."""
        outcomes: list[RecordOutcome] = []
        failures: list[tuple[ScoringPhase, RecordFailed]] = []
        in_flight: list[InFlightElsewhere] = []
        for phase in phases:
            try:
                outcomes.append(self._run(submission, config, RunKey(submission.submission_id, phase), message))
            except InFlightElsewhere as error:
                in_flight.append(error)
            except RecordFailed as error:
                failures.append((phase, error))
            except Exception as error:
                # Status table or other infrastructure errors: this run's lease (if any) stays, SQS retries.
                run = RunKey(submission.submission_id, phase)
                self._logger.exception(
                    "run failed unexpectedly",
                    extra={"error_type": type(error).__name__, "run_id": run.run_id, "phase": phase.value},
                )
                self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.UNEXPECTED.value, phase=phase.value)
                failures.append((phase, RecordFailed(FailureReason.UNEXPECTED.value, type(error).__name__)))
        if failures:
            if len(failures) == 1:
                raise failures[0][1]
            detail = "; ".join(f"{phase.value}: {error.reason_code}: {error.detail}" for phase, error in failures)
            raise RecordFailed(failures[0][1].reason_code, detail)
        if in_flight:
            raise in_flight[0]
        for outcome in (RecordOutcome.LAUNCHED, RecordOutcome.WAITING, RecordOutcome.CANCELLED):
            if outcome in outcomes:
                return outcome
        return RecordOutcome.DUPLICATE

    # ------------------------------------------------------------------ one run under capacity (decisions 093-095)
    def _run(
        self, submission: RoutedSubmission, config: ChallengeConfig, run: RunKey, message: InboundMessage
    ) -> RecordOutcome:
        """The run's item decides: none -> enqueue (WAITING), supersede, dispatch; WAITING (a duplicate delivery)
        -> dispatch; DEAD_LETTERED (a redrive) -> back to WAITING in its place, dispatch; a slot held (ADMITTED,
        LAUNCH_FAILED, LAUNCHING) -> the launch claim; anything else -> a duplicate."""
        ids = self._run_ids(submission, run)
        record = self._store.get(run.run_id)
        if record is None:
            enqueued = self._capacity.enqueue(
                submission,
                phase=run.phase,
                scorer_type=config.scorer_type,
                timeout_seconds=config.phase_timeout(run.phase),
                priority_rank=config.capacity.rank(run.phase, rerun=submission.rerun),
            )
            record = enqueued.record if enqueued.created else self._store.get(run.run_id)
            if record is None:  # not created: another delivery created it, and it is gone again (TTL of a final run)
                raise RecordFailed(FailureReason.UNEXPECTED.value, f"run {run.run_id} vanished right after enqueue")
            if enqueued.created:
                self._metrics.count(Metric.RUNS_ENQUEUED, phase=run.phase.value)
                self._logger.info("run enqueued for capacity", extra={"wait_order": enqueued.wait_order, **ids})
                if self._supersede(submission, config, record, ids):
                    return RecordOutcome.CANCELLED
        if record.state is SubmissionState.DEAD_LETTERED and not self._holds_its_slot(record):
            record = self._requeue_redriven(record, ids)
        if record.state is SubmissionState.WAITING:
            return self._dispatch_run(submission, config, record, message, ids)
        if record.state in _CLAIMABLE_STATES or record.state is SubmissionState.DEAD_LETTERED:  # dead: slot held
            return self._launch_run(submission, config, run, message)
        self._metrics.count(Metric.DUPLICATES_SKIPPED, phase=run.phase.value)
        self._logger.info(
            "duplicate delivery acknowledged without RunTask",
            extra={"state": record.state.value, "task_arn": record.task_arn, **ids},
        )
        return RecordOutcome.DUPLICATE

    @staticmethod
    def _run_ids(submission: RoutedSubmission, run: RunKey) -> dict[str, str]:
        return {
            "submission_id": submission.submission_id,
            "run_id": run.run_id,
            "phase": run.phase.value,
            "kafka_record": submission.correlation_id,
        }

    def _holds_its_slot(self, record: LifecycleRecord) -> bool:
        """An ambiguous dead letter keeps its slot while its task may run: its redrive retries the same clientToken
        at once (never WAITING, where the token could outlive ECS's 24 h); once the slot reconciler freed it (no task
        seen after its grace), the redrive queues like any other."""
        return record.launch_ambiguous and record.run_id in self._capacity.pools().env.holders

    def _requeue_redriven(self, record: LifecycleRecord, ids: dict[str, str]) -> LifecycleRecord:
        """A redriven DEAD_LETTERED run takes its place in the capacity queue again (its original waitOrder; an
        ambiguous attempt keeps its clientToken). Never while its dead-letter report is being sent (decision 086)."""
        if record.report_lease_until is not None and record.report_lease_until >= self._clock():
            self._logger.info("dead-letter report in flight; redrive handed back", extra=ids)
            raise InFlightElsewhere(FailureReason.LAUNCH_IN_FLIGHT.value, "the run's dead-letter report is being sent")
        requeued = self._capacity.requeue(record, reason="redriven from the DLQ")
        self._logger.info("redriven run back in its capacity queue", extra={"requeued": requeued, **ids})
        current = self._store.get(record.run_id)
        if current is None:
            raise RecordFailed(FailureReason.UNEXPECTED.value, f"run {record.run_id} vanished while requeued")
        if current.state is SubmissionState.DEAD_LETTERED:
            # Never acknowledge a redrive that left the run dead-lettered: its message is the operator's evidence.
            raise RecordFailed(FailureReason.REQUEUE_FAILED.value, f"run {record.run_id} could not be requeued")
        return current

    # ------------------------------------------------------------------ superseded runs (decision 095)
    def _supersede(
        self, submission: RoutedSubmission, config: ChallengeConfig, record: LifecycleRecord, ids: dict[str, str]
    ) -> bool:
        """Right after a new run was enqueued, by the challenge's policy: cancel the member's waiting runs of the
        same phase from an older submission (and stop their running tasks, with `cancel_waiting_and_stop_running`).
        A late redelivery, older than a run of the member already queued or holding a slot, is cancelled itself.
        True when this run was cancelled."""
        policy = config.capacity.supersede
        if policy is SupersedePolicy.NONE:
            return False
        waiting, holding = self._capacity.member_runs(self.challenge_id, submission.member_id)
        waiting_ids = [run_id for run_id, phase in waiting if phase is record.phase and run_id != record.run_id]
        holding_ids = [run_id for run_id, phase in holding if phase is record.phase and run_id != record.run_id]
        if not waiting_ids and not holding_ids:
            return False
        others = self._store.get_many([*waiting_ids, *holding_ids])
        mine = _submitted(record, submission)
        newer = [other for other in others.values() if _older(mine, _submitted(other))]
        if newer:
            # Admitted meanwhile (not cancelled): it runs as any admitted run does.
            return self._cancel_waiting(record, by=newer[0].submission_id, ids=ids)
        for run_id in waiting_ids:
            other = others.get(run_id)
            if other is not None and _older(_submitted(other), mine):
                self._cancel_waiting(other, by=submission.submission_id, ids=ids)
        if policy is SupersedePolicy.CANCEL_WAITING_AND_STOP_RUNNING:
            for run_id in holding_ids:
                other = others.get(run_id)
                if other is not None and other.state is SubmissionState.LAUNCHED and _older(_submitted(other), mine):
                    self._stop_superseded(other, by=submission.submission_id, ids=ids)
        return False

    def _cancel_waiting(self, run: LifecycleRecord, *, by: str, ids: dict[str, str]) -> bool:
        """WAITING -> CANCELLED (v6: its CANCELLED summation handed on). False: it was no longer waiting."""
        reason = f"Superseded by a newer submission {by}"
        run_ids = {**ids, "run_id": run.run_id, "superseded_submission_id": run.submission_id}
        cancelled = self._capacity.cancel_waiting(run.run_id, reason=reason)
        if cancelled is None:
            self._logger.info("superseded run no longer waiting; left as is", extra=run_ids)
            return False
        self._metrics.count(Metric.RUNS_CANCELLED, reason=SUPERSEDED_REASON, phase=run.phase.value)
        self._logger.info("waiting run cancelled: superseded", extra={"reason": reason, **run_ids})
        if cancelled.platform is Platform.V6:
            # v6: a CANCELLED summation (its report is due on the item); v5 has no cancelled review (decision 095).
            self._send_report_due(cancelled.run_key, run_ids)
        return True

    def _stop_superseded(self, run: LifecycleRecord, *, by: str, ids: dict[str, str]) -> None:
        """Mark the running run cancel-requested, then StopTask: its STOPPED event is recorded CANCELLED."""
        reason = f"Superseded by a newer submission {by}"
        run_ids = {**ids, "run_id": run.run_id, "superseded_submission_id": run.submission_id}
        marked = self._capacity.request_cancel_running(run.run_id)
        if marked is None or marked.task_arn is None or marked.cluster_arn is None:
            self._logger.info("superseded run no longer running; left as is", extra=run_ids)
            return
        self._metrics.count(Metric.RUNS_CANCELLED, reason=SUPERSEDED_REASON, phase=run.phase.value)
        try:
            self._launcher.stop_task(cluster=marked.cluster_arn, task_arn=marked.task_arn, reason=reason)
        except (BotoCoreError, ClientError) as error:
            # The item says cancelRequested: the sweeper stops it (decision 095); the new run is not held back.
            self._logger.warning(
                "StopTask of a superseded run failed; left to the sweeper",
                extra={"error_type": type(error).__name__, "task_arn": marked.task_arn, **run_ids},
            )
            return
        self._logger.info(
            "running task of a superseded run stopped", extra={"task_arn": marked.task_arn, "reason": reason, **run_ids}
        )

    def _dispatch_run(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        record: LifecycleRecord,
        message: InboundMessage,
        ids: dict[str, str],
    ) -> RecordOutcome:
        """Admit what this challenge's caps allow; launch this run here if it is among them, else it waits."""
        result = self._dispatch(prefer_run_id=record.run_id, ids=ids)
        if result is not None and result.self_admitted is not None:
            return self._launch_run(submission, config, record.run_key, message)
        position = self._capacity.queue_position(self.challenge_id, record.wait_order) if record.wait_order else None
        self._logger.info(
            "run waits for capacity; message acknowledged",
            extra={
                "wait_position": position,
                "blocked_by": result.blocked_by if result is not None else None,
                **ids,
            },
        )
        return RecordOutcome.WAITING

    def _dispatch(self, *, prefer_run_id: str | None, ids: dict[str, str]) -> DispatchResult | None:
        """This challenge's queue dispatched. The dispatcher admits nothing while the environment's caps are unusable
        (it logs and counts CapacityConfigErrors: never admit without a cap). None: the capacity table failed. Either
        way the runs stay WAITING, and the sweeper dispatches again."""
        try:
            return self._dispatcher.dispatch(challenge_id=self.challenge_id, prefer_run_id=prefer_run_id)
        except (BotoCoreError, ClientError) as error:
            # Never a message failure: the runs are durably WAITING and the sweeper's dispatch is the safety net.
            self._logger.exception(
                "dispatch failed; the runs wait for the next dispatch",
                extra={"error_type": type(error).__name__, **ids},
            )
        return None

    def _capacity_config_error(self, error: CapacityConfigError, ids: dict[str, str]) -> None:
        self._metrics.count(Metric.CAPACITY_CONFIG_ERRORS)
        self._logger.error(
            "environment capacity unusable; runs stay WAITING until it is fixed",
            extra={"capacity_error": str(error), **ids},
        )

    def _own_challenge_settings(self, challenge_id: str) -> ChallengeConfig | None:
        """The dispatcher's view of challenge configs: only this challenge's (cached), None when unusable."""
        if challenge_id != self.challenge_id:
            return None
        try:
            return self._configs.get(challenge_id)
        except ChallengeConfigError:
            return None

    def _send_admitted(self, admitted: Admitted) -> None:
        """An admitted run that is not this message's: its routed message (with its phase) to this challenge's queue.
        A failed send propagates to the dispatcher (logged there); the sweeper re-sends past the ADMITTED deadline."""
        self.sqs_client.send_message(QueueUrl=self._challenge_queue_url, MessageBody=admitted_message_body(admitted))

    def _launch_run(
        self, submission: RoutedSubmission, config: ChallengeConfig, run: RunKey, message: InboundMessage
    ) -> RecordOutcome:
        """The launch claim of a run that holds a slot, then RunTask (paced) exactly as before capacity existed."""
        ids = self._run_ids(submission, run)
        timeout = config.phase_timeout(run.phase)
        claim = self._store.claim_launch(
            submission,
            phase=run.phase,
            scorer_type=config.scorer_type,
            lease_seconds=self._lease_seconds,
            timeout_seconds=timeout,
        )
        if claim.decision is LaunchDecision.DUPLICATE_IN_FLIGHT:
            # Another delivery holds a live launch lease. This may be a second copy of the very same SQS
            # message: acknowledging it would delete the message, and if the holder then died nothing would
            # retry the launch. Hand it back instead; after the visibility timeout the claim is settled
            # (LAUNCHED: acknowledged then) or its lease has expired (re-claimed with the same clientToken).
            self._logger.info("launch in flight in another delivery; message handed back", extra=ids)
            raise InFlightElsewhere(FailureReason.LAUNCH_IN_FLIGHT.value, "another delivery holds the launch lease")
        if claim.decision is LaunchDecision.WAITING:
            # Put back in its queue since we read it (a concurrent throttle or redrive): it waits, durably.
            self._logger.info("run is waiting for capacity again; message acknowledged", extra=ids)
            return RecordOutcome.WAITING
        if not claim.granted:
            self._metrics.count(Metric.DUPLICATES_SKIPPED, phase=run.phase.value)
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
        phase_config = config.phase_config(run.phase)
        if phase_config is None:
            # A relaunch (or a later dispatch) of a phase the config no longer lists: perhaps mid-edit, so it is
            # retried after a config refresh, then the run is DEAD_LETTERED with this reason.
            self._refresh_config = True
            self._launch_failed(
                run,
                claim,
                message,
                FailureReason.PHASE_NOT_CONFIGURED.value,
                f"phase {run.phase.value} is not among the challenge config's phases",
            )
        request = self._request(submission, config, phase_config, run, claim, message)
        # An ambiguous attempt (an earlier RunTask of this clientToken may have started a task) is never put back
        # to WAITING: its slot stays held for the task that may be running, and only a retry of this very token
        # finds it (a token outlives no 24 h wait). It skips the pace (ECS answers a known token with its task), and
        # a throttle goes back to SQS as before capacity, the ambiguity kept.
        ambiguous = _attempt_is_ambiguous(claim)
        if not ambiguous and not self._paced(ids):
            return self._requeue_unstarted(run, claim, ThrottleReason.PACED, ids)
        result = self._launch(run, claim, request, message, requeue_on_throttle=not ambiguous)
        if result is None:
            return self._requeue_unstarted(run, claim, ThrottleReason.THROTTLED, ids)
        return self._record_launched(run, timeout, claim, result, ids)

    # ------------------------------------------------------------------ pacing (decision 094)
    def _paced(self, ids: dict[str, str]) -> bool:
        """One RunTask token of the env-wide pace, waiting for the next second up to PACE_MAX_WAITS times."""
        per_second = self._run_task_per_second(ids)
        for waited in range(PACE_MAX_WAITS + 1):
            if self._capacity.pace(per_second):
                return True
            if waited < PACE_MAX_WAITS:
                now = self._clock()
                self._sleep(max(int(now) + 1 - now, 0.001))  # to the start of the next second
        return False

    def _run_task_per_second(self, ids: dict[str, str]) -> int:
        try:
            return self._environment_capacity.get().run_task_per_second
        except CapacityConfigError as error:
            # The run was admitted under a cap already; only the pace is unknown: the default one is safe.
            self._capacity_config_error(error, ids)
            return EnvironmentCapacity().run_task_per_second

    def _requeue_unstarted(
        self, run: RunKey, claim: LaunchClaim, reason: ThrottleReason, ids: dict[str, str]
    ) -> RecordOutcome:
        """A claimed run whose RunTask did not happen (pace) or was throttled: back to WAITING in its place, its slot
        freed, its attempt and ambiguity kept (so its clientToken rules hold); the message is acknowledged."""
        record = self._store.get(run.run_id)
        requeued = record is not None and self._capacity.requeue(record, reason=f"launch {reason.value.lower()}")
        if not requeued:
            # The item changed under our claim: SQS retries the message, the claim decides afresh.
            raise RecordFailed(FailureReason.REQUEUE_FAILED.value, f"run {run.run_id} ({reason.value}) not requeued")
        self._metrics.count(Metric.LAUNCHES_THROTTLED, reason=reason.value, phase=run.phase.value)
        self._logger.warning(
            "launch throttled; run back to WAITING in its place",
            extra={"throttle": reason.value, "attempt": claim.attempt, **ids},
        )
        return RecordOutcome.WAITING

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
        if submission.skip_reason is not None and submission.platform is not Platform.V6:
            # v5 skips are the router's business (it never publishes them); never launch what was marked skipped.
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.INVALID_MESSAGE.value)
            raise RecordFailed(
                FailureReason.INVALID_MESSAGE.value,
                f"submission {submission.submission_id}: skipReason on a {submission.platform.value} message",
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

    @staticmethod
    def _phases_of(submission: RoutedSubmission, config: ChallengeConfig) -> list[ScoringPhase]:
        """The runs this message asks for: exactly its phase when it names one, else the onSubmission phases."""
        if submission.phase is not None:
            return [submission.phase]
        return [entry.phase for entry in config.submission_phases]

    def _last_receive(self, message: InboundMessage) -> bool:
        return message.receive_count >= self._max_receive_count

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
                "challenge config unusable",
                extra={
                    "config_error": error.reason.value,
                    "config_detail": error.detail,
                    "parameter": error.parameter_name,
                    **ids,
                },
            )
            raise ConfigUnusable(error.reason.value, str(error)) from None
        self._refresh_config = False
        return config

    # ------------------------------------------------------------------ v6 skips (decision 086)
    def _skip(
        self,
        submission: RoutedSubmission,
        phases: list[ScoringPhase],
        reason: str,
        config: ChallengeConfig | None,
        ids: dict[str, str],
    ) -> list[ScoringPhase]:
        """Record each run as FAILED without a task and hand it to the completion function for its terminal
        summation (the record, not the message, carries the rest). Returns the phases whose run existed already
        and is not finished: those were not skipped."""
        scorer_type = config.scorer_type if config is not None else _UNCONFIGURED_SCORER
        unfinished: list[ScoringPhase] = []
        for phase in phases:
            run = RunKey(submission.submission_id, phase)
            run_ids = {**ids, "run_id": run.run_id, "phase": phase.value}
            created = self._store.record_skipped(submission, phase=phase, scorer_type=scorer_type, reason=reason)
            if not created:
                record = self._store.get(run.run_id)
                if record is not None and record.state not in FINAL_STATES:
                    unfinished.append(phase)
                    self._logger.info("run exists and is not finished; not skipped", extra=run_ids)
                    continue
                if not _report_still_due(record):
                    self._logger.info("skipped run already recorded; nothing to hand on", extra=run_ids)
                    continue
            self._logger.warning(
                "submission not scored: run recorded as skipped",
                extra={"reason": reason, "recorded": created, **run_ids},
            )
            self._send_report_due(run, run_ids)
        return unfinished

    def _send_report_due(self, run: RunKey, ids: dict[str, str]) -> None:
        if self._completion_function_name is None:
            self._logger.info("no completion function configured; the sweeper re-drives the report", extra=ids)
            return
        try:
            self.lambda_client.invoke(
                FunctionName=self._completion_function_name,
                InvocationType="Event",
                Payload=json.dumps(report_due_event(run.run_id)).encode(),
            )
        except (BotoCoreError, ClientError) as error:
            # Not a reason to retry the message: the item is recorded with its report due, the sweeper re-drives it.
            self._logger.warning(
                "report-due invoke failed; the sweeper re-drives the report",
                extra={"error_type": type(error).__name__, **ids},
            )

    # ------------------------------------------------------------------ one run
    def _request(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        phase_config: PhaseConfig,
        run: RunKey,
        claim: LaunchClaim,
        message: InboundMessage,
    ) -> RunTaskRequest:
        try:
            credentials = self._credentials.resolve(config.scorer_credentials_mode)
        except TokenUnavailableError as error:
            self._launch_failed(run, claim, message, FailureReason.TOKEN_UNAVAILABLE.value, str(error))
        if credentials.insecure:
            # The value itself is never logged; the overrides of this mode are never logged either.
            self._logger.warning(
                "scorer credentials mode environment_token_insecure: the M2M token is placed in the task "
                "environment and is visible in DescribeTasks, ECS events and CloudTrail",
                extra={"submission_id": submission.submission_id, "run_id": run.run_id},
            )
        return build_run_task_request(
            submission,
            config,
            phase_config,
            environment_name=self._environment,
            attempt=claim.attempt,
            credential_environment=credentials.environment,
            secret_values=credentials.secret_values,
        )

    def _launch(
        self,
        run: RunKey,
        claim: LaunchClaim,
        request: RunTaskRequest,
        message: InboundMessage,
        *,
        requeue_on_throttle: bool = True,
    ) -> LaunchResult | None:
        """The task, or None when ECS throttled the call (it started nothing: the caller requeues the run)."""
        try:
            return self._launcher.run_task(request)
        except LaunchRejected as error:
            if error.kind is LaunchErrorKind.THROTTLED and requeue_on_throttle:
                return None
            if error.kind is LaunchErrorKind.PERMANENT:
                self._refresh_config = True  # e.g. the task definition named in the cached config is gone
            self._launch_failed(
                run,
                claim,
                message,
                error.reason_code,
                request.redact(error.detail),
                token_settled=error.token_settled,
            )
        except LaunchOutcomeUnknown as error:
            self._outcome_unknown(run, claim, request, message, error.reason_code, request.redact(error.detail))
        except Exception as error:
            # A bug or an unforeseen error type: we cannot prove ECS saw nothing, so treat it as ambiguous.
            self._outcome_unknown(run, claim, request, message, type(error).__name__, request.redact(str(error)))

    def _launch_failed(
        self,
        run: RunKey,
        claim: LaunchClaim,
        message: InboundMessage,
        reason_code: str,
        detail: str,
        *,
        token_settled: bool = True,
    ) -> NoReturn:
        """A definite failure of this call: record it and fail (the next claim gets a new clientToken unless an
        earlier call of this attempt was ambiguous and this answer does not settle it)."""
        dead_lettered = self._last_receive(message)
        recorded = self._store.mark_launch_failed(
            run.run_id,
            attempt=claim.attempt,
            reason=f"{reason_code}: {detail}",
            dead_lettered=dead_lettered,
            token_settled=token_settled,
        )
        self._metrics.count(Metric.LAUNCH_FAILURES, reason=reason_code, phase=run.phase.value)
        ids = {"submission_id": run.submission_id, "run_id": run.run_id, "phase": run.phase.value}
        self._logger.warning(
            "launch failed; message back to the queue",
            extra={
                "reason": reason_code,
                "detail": detail,
                "attempt": claim.attempt,
                "dead_lettered": dead_lettered,
                "recorded": bool(recorded),
                "report_due": recorded.report_due,
                **ids,
            },
        )
        if recorded.report_due:
            # A v6 run that cannot start gets its terminal FAILED summation now (decision 086); the message still
            # goes to the DLQ, and a redrive retries the run (its outcome then updates that summation).
            self._send_report_due(run, ids)
        if dead_lettered and recorded:
            self._release_dead_lettered(run, ids)
        # `from None`: the original exception (whose text may echo request values) is not chained into tracebacks.
        raise RecordFailed(reason_code, detail) from None

    def _release_dead_lettered(self, run: RunKey, ids: dict[str, str]) -> None:
        """A definite dead letter holds no slot (no task can exist): free it and admit this challenge's next run.
        Best effort: the message fails anyway, and the sweeper's slot reconciler frees what a failure here leaves."""
        try:
            record = self._store.get(run.run_id)
            if record is None or record.state is not SubmissionState.DEAD_LETTERED or record.launch_ambiguous:
                return  # an ambiguous dead letter keeps its slot: a task may run (the reconciler decides)
            if self._capacity.release(record):
                self._logger.info("slot of a dead-lettered run released", extra=ids)
                self._dispatch(prefer_run_id=None, ids=ids)
        except (BotoCoreError, ClientError) as error:
            self._logger.warning(
                "slot release of a dead-lettered run failed; the reconciler frees it",
                extra={"error_type": type(error).__name__, **ids},
            )

    def _outcome_unknown(
        self,
        run: RunKey,
        claim: LaunchClaim,
        request: RunTaskRequest,
        message: InboundMessage,
        reason_code: str,
        detail: str,
    ) -> NoReturn:
        """RunTask may have started a task: the attempt is marked ambiguous, so every retry reuses this
        clientToken; on the last receive the item says DEAD_LETTERED (the sweeper adopts or stops a task
        that did start)."""
        dead_lettered = self._last_receive(message)
        self._store.mark_launch_outcome_unknown(
            run.run_id,
            attempt=claim.attempt,
            reason=f"{reason_code}: {detail}",
            dead_lettered=dead_lettered,
        )
        self._metrics.count(Metric.LAUNCH_FAILURES, reason=reason_code, phase=run.phase.value)
        self._logger.warning(
            "RunTask outcome unknown; lease kept, the retry reuses the same clientToken",
            extra={
                "reason": reason_code,
                "detail": detail,
                "attempt": claim.attempt,
                "client_token": request.client_token,
                "submission_id": run.submission_id,
                "run_id": run.run_id,
                "phase": run.phase.value,
            },
        )
        # `from None`: the original exception (whose text may echo request values) is not chained into tracebacks.
        raise RecordFailed(reason_code, detail) from None

    def _record_launched(
        self,
        run: RunKey,
        timeout_seconds: int,
        claim: LaunchClaim,
        result: LaunchResult,
        ids: dict[str, str],
    ) -> RecordOutcome:
        marked = self._store.mark_launched(
            run.run_id,
            attempt=claim.attempt,
            task_arn=result.task_arn,
            cluster_arn=result.cluster_arn,
            timeout_seconds=timeout_seconds,
        )
        if marked:
            self._metrics.count(Metric.TASKS_LAUNCHED, phase=run.phase.value)
            self._logger.info(
                "scorer task launched",
                extra={"task_arn": result.task_arn, "attempt": claim.attempt, "adopted": result.adopted, **ids},
            )
            return RecordOutcome.LAUNCHED
        record = self._store.get(run.run_id)
        if record is not None and record.task_arn == result.task_arn and record.state in FINAL_STATES:
            # The task already stopped and the completion function recorded it before we got here.
            self._metrics.count(Metric.TASKS_LAUNCHED, phase=run.phase.value)
            self._logger.info(
                "scorer task launched and already finished",
                extra={"task_arn": result.task_arn, **ids},
            )
            return RecordOutcome.LAUNCHED
        self._metrics.count(Metric.DUPLICATES_SKIPPED, phase=run.phase.value)
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


def _attempt_is_ambiguous(claim: LaunchClaim) -> bool:
    """The claimed attempt may already have a task: it was marked ambiguous, or re-claimed from an expired lease."""
    record = claim.record
    return record is not None and (record.launch_ambiguous or record.state is SubmissionState.LAUNCHING)


def _report_still_due(record: LifecycleRecord | None) -> bool:
    """A skip recorded by an earlier delivery that may have died before handing it on: hand it on again (the
    completion function reports a run once however often it is told)."""
    return (
        record is not None
        and record.task_arn is None
        and record.state in FINAL_STATES
        and record.report_status is ReportStatus.PENDING
    )


def _ids(message: InboundMessage) -> dict[str, str]:
    return {"message_id": message.message_id}


@dataclass(frozen=True)
class _Submitted:
    """When a run's submission was made, for supersede: the submission's own time, else when the run was enqueued."""

    at: datetime | None
    enqueued_at: int | None


def _submitted(record: LifecycleRecord, submission: RoutedSubmission | None = None) -> _Submitted:
    if submission is None and record.routed_message:
        try:
            submission = RoutedSubmission.model_validate_json(record.routed_message)
        except ValidationError:
            submission = None
    at = (submission.created or submission.submitted_date) if submission is not None else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # the platforms write UTC; never compare naive with aware
    return _Submitted(at, record.enqueued_at)


def _older(first: _Submitted, second: _Submitted) -> bool:
    """`first` is from an older submission than `second` (unknown or equal: not older, nothing is cancelled)."""
    if first.at is not None and second.at is not None:
        return first.at < second.at
    if first.enqueued_at is not None and second.enqueued_at is not None:
        return first.enqueued_at < second.enqueued_at
    return False


__all__ = [
    "DEFAULT_SKIP_PHASE",
    "ChallengeProcessor",
    "ConfigUnusable",
    "FailureReason",
    "InboundMessage",
    "RecordFailed",
    "RecordOutcome",
    "SkipReason",
    "ThrottleReason",
]
