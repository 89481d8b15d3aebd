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

Capacity (decisions 093-095, 114): a new run whose challenge has nothing waiting and room under every cap goes
straight to LAUNCHING holding its slots (one transaction after one BatchGetItem: the direct launch). Otherwise it
is first written WAITING into its challenge's capacity queue (one transaction, before the message is
acknowledged), then this challenge's queue is dispatched. The run this message
carries, when admitted, is launched right here under this message (no extra hop when nothing contends); any other
run admitted on the way is sent to this challenge's queue, whose message then launches it. A run that meets a full
cap simply stays WAITING and its message is deleted: the completion function and the sweeper admit it when a slot
frees. RunTask is paced env-wide; a run throttled by the pace or by ECS goes back to WAITING in its place.

This module decides what each message and each run needs; the jobs live beside it: `parsing` (what the message may
be), `config_reader` (this challenge's config), `admission` (capacity queue, dispatch, pace), `supersede`,
`run_launch` (claim + RunTask), `launch_failures` (a failed launch and its dead letter), `skips` (v6 skips),
`handoff` (report-due to the completion function), `outcomes` (the message, outcomes and failures).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger

from challenge_lambda.admission import PACE_MAX_WAITS, Admission
from challenge_lambda.config_reader import ChallengeConfigReader
from challenge_lambda.credentials import ScorerCredentialResolver
from challenge_lambda.handoff import ReportDueSender
from challenge_lambda.launch_failures import LaunchFailures
from challenge_lambda.launcher import EcsLauncher
from challenge_lambda.outcomes import (
    DEFAULT_SKIP_PHASE,
    ConfigUnusable,
    FailureReason,
    InboundMessage,
    InFlightElsewhere,
    RecordFailed,
    RecordOutcome,
    SkipReason,
    ThrottleReason,
    run_log_ids,
)
from challenge_lambda.parsing import MessageParser, phases_of
from challenge_lambda.run_launch import RunLaunch
from challenge_lambda.skips import SkipRecorder
from challenge_lambda.supersede import Superseder
from mm_adapters import aws
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.status_store import LaunchClaim, LaunchDecision, StatusStore
from mm_capacity.config import EnvironmentCapacityLoader
from mm_capacity.store import CapacityStore, DirectLaunchOutcome
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import Platform, RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import MetricsSink

# The states whose message is launched through `claim_launch` (it decides between a grant and a duplicate):
# admitted to a slot, a definite failure being retried through SQS, or a launch lease (live or expired).
_CLAIMABLE_STATES = frozenset({SubmissionState.ADMITTED, SubmissionState.LAUNCH_FAILED, SubmissionState.LAUNCHING})


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
        self._lease_seconds = lease_seconds
        self._store = status_store
        self._capacity = capacity_store
        self._metrics = metrics
        self._logger = logger
        self._lambda_client = lambda_client
        self._sqs_client = sqs_client
        self.parser = MessageParser(self.challenge_id, allowed_url_hosts, metrics)
        self.configs = ChallengeConfigReader(self.challenge_id, config_loader, metrics=metrics, logger=logger)
        report_due = ReportDueSender(completion_function_name, lambda: self.lambda_client, logger)
        self.skips = SkipRecorder(status_store, report_due, logger)
        self.admission = Admission(
            self.challenge_id,
            store=status_store,
            capacity=capacity_store,
            environment_capacity=environment_capacity,
            configs=self.configs,
            challenge_queue_url=challenge_queue_url,
            sqs_client=lambda: self.sqs_client,
            metrics=metrics,
            logger=logger,
            clock=clock,
            sleep=sleep,
        )
        self.superseder = Superseder(
            self.challenge_id,
            store=status_store,
            capacity=capacity_store,
            launcher=launcher,
            report_due=report_due,
            metrics=metrics,
            logger=logger,
        )
        self.failures = LaunchFailures(
            max_receive_count=max_receive_count,
            store=status_store,
            admission=self.admission,
            report_due=report_due,
            metrics=metrics,
            logger=logger,
        )
        self.run_launch = RunLaunch(
            environment_name=environment_name,
            lease_seconds=lease_seconds,
            store=status_store,
            configs=self.configs,
            admission=self.admission,
            failures=self.failures,
            launcher=launcher,
            credentials=credentials,
            metrics=metrics,
            logger=logger,
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
                extra={"error_type": type(error).__name__, **message.log_ids},
            )
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.UNEXPECTED.value)
            self._on_failed(message, FailureReason.UNEXPECTED.value, type(error).__name__)
            raise
        finally:
            self._logger.set_correlation_id(None)

    def _process(self, message: InboundMessage) -> RecordOutcome:
        submission = self.parser.parse(message)
        # Every log line of this record carries the submission id as correlation id (as the completion
        # function's do), so one Logs Insights filter follows a submission across functions and phases.
        self._logger.set_correlation_id(submission.submission_id)
        ids = {"submission_id": submission.submission_id, "kafka_record": submission.correlation_id}
        config = self._config(submission, message, ids)
        if config is None:
            return RecordOutcome.SKIPPED
        if submission.platform is not config.platform:
            self._metrics.count(Metric.LAUNCH_FAILURES, reason=FailureReason.PLATFORM_MISMATCH.value)
            raise RecordFailed(
                FailureReason.PLATFORM_MISMATCH.value,
                f"submission {submission.submission_id}: a {submission.platform.value} message for a "
                f"{config.platform.value} challenge",
            )
        phases = phases_of(submission, config)
        if submission.skip_reason is not None:
            # A run that exists already has its own path to a report (a skip message never launches one).
            self.skips.skip(submission, phases or [DEFAULT_SKIP_PHASE], submission.skip_reason, config, ids)
            return RecordOutcome.SKIPPED
        if not phases:
            if submission.platform is Platform.V6:
                self.skips.skip(submission, [DEFAULT_SKIP_PHASE], SkipReason.NO_PHASE_TRIGGERED.value, config, ids)
                return RecordOutcome.SKIPPED
            # The config model holds a v5 challenge to exactly one onSubmission phase: a bug if reached.
            raise RecordFailed(FailureReason.CONFIG_ERROR.value, "the challenge config triggers no phase")
        return self._launch_runs(submission, config, phases, message)

    def _config(
        self, submission: RoutedSubmission, message: InboundMessage, ids: dict[str, str]
    ) -> ChallengeConfig | None:
        """The challenge config; None when it is unusable on a v6 message's last receive and its runs were skipped."""
        try:
            return self.configs.get(ids)
        except ConfigUnusable as failure:
            if submission.platform is Platform.V6 and self.failures.last_receive(message):
                # v6: a submission must never look "in queue forever" (decision 086); the DLQ would hide it.
                reason = submission.skip_reason or f"{SkipReason.CONFIG_UNUSABLE.value} ({failure.config_reason})."
                unfinished = self.skips.skip(submission, [submission.phase or DEFAULT_SKIP_PHASE], reason, None, ids)
                if not unfinished:
                    return None
                # A run an earlier receive of this message claimed (e.g. a relaunch) is not ours to settle here:
                # the message goes to the DLQ as before, with the run's own record.
            raise

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
        return _settle(outcomes, failures, in_flight)

    # ------------------------------------------------------------------ one run under capacity (decisions 093-095)
    def _run(
        self, submission: RoutedSubmission, config: ChallengeConfig, run: RunKey, message: InboundMessage
    ) -> RecordOutcome:
        """The run's item (one BatchGetItem with its member and pools) decides: none -> straight to LAUNCHING with
        its slots when nothing waits and the caps have room (one transaction, decision 114), else enqueue
        (WAITING), supersede, dispatch; WAITING (a duplicate delivery)
        -> dispatch; DEAD_LETTERED (a redrive) -> back to WAITING in its place, dispatch; a slot held (ADMITTED,
        LAUNCH_FAILED, LAUNCHING) -> the launch claim; anything else -> a duplicate."""
        ids = run_log_ids(submission, run)
        view = self.admission.new_run_view(submission, run)
        record = view.record
        if record is None:
            direct = self.admission.launch_directly(
                submission, config, run, view, lease_seconds=self._lease_seconds, ids=ids
            )
            if direct.outcome is DirectLaunchOutcome.CLAIMED:
                granted = LaunchClaim(LaunchDecision.GRANTED, attempt=1)
                return self.run_launch.launch_claimed(submission, config, run, message, granted)
            # Refused (something waits, a cap is full, a race): enqueued as before. Created meanwhile: read it.
            fresh = direct.outcome is DirectLaunchOutcome.NOT_NOW
            created = self.admission.enqueue(submission, config, run, observed=view) if fresh else None
            record = created or self._store.get(run.run_id)
            if record is None:  # not created: another delivery created it, and it is gone again (TTL of a final run)
                raise RecordFailed(FailureReason.UNEXPECTED.value, f"run {run.run_id} vanished right after enqueue")
            if created is not None and self.superseder.supersede(submission, config, record, ids):
                return RecordOutcome.CANCELLED
        if record.state is SubmissionState.DEAD_LETTERED and not self.admission.holds_its_slot(record):
            record = self.admission.requeue_redriven(record, ids)
        if record.state is SubmissionState.WAITING:
            return self._dispatch_run(submission, config, record, message, ids)
        if record.state in _CLAIMABLE_STATES or record.state is SubmissionState.DEAD_LETTERED:  # dead: slot held
            return self.run_launch.launch(submission, config, run, message, observed=record)
        self._metrics.count(Metric.DUPLICATES_SKIPPED, phase=run.phase.value)
        self._logger.info(
            "duplicate delivery acknowledged without RunTask",
            extra={"state": record.state.value, "task_arn": record.task_arn, **ids},
        )
        return RecordOutcome.DUPLICATE

    def _dispatch_run(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        record: LifecycleRecord,
        message: InboundMessage,
        ids: dict[str, str],
    ) -> RecordOutcome:
        """Admit what this challenge's caps allow; launch this run here if it is among them, else it waits."""
        result = self.admission.dispatch(prefer=record, ids=ids)
        if result is not None and result.self_admitted is not None:
            admitted = result.self_admitted.record
            return self.run_launch.launch(submission, config, record.run_key, message, observed=admitted)
        # The wait order, not the position: counting the entries ahead is a Query per waiting run, and
        # `mm-processor status` shows the position when an operator asks (decision 114).
        self._logger.info(
            "run waits for capacity; message acknowledged",
            extra={
                "wait_order": record.wait_order,
                "blocked_by": result.blocked_by if result is not None else None,
                **ids,
            },
        )
        return RecordOutcome.WAITING

    def _on_failed(self, message: InboundMessage, reason_code: str, detail: str) -> None:
        last = self.failures.last_receive(message)
        if last:
            self._metrics.count(Metric.DEAD_LETTERED)
        self._logger.error(
            "message failed back to the queue" + ("; last receive, SQS moves it to the DLQ" if last else ""),
            extra={
                "reason": reason_code,
                "detail": detail,
                "receive_count": message.receive_count,
                "max_receive_count": self.failures.max_receive_count,
                **message.log_ids,
            },
        )


def _settle(
    outcomes: list[RecordOutcome],
    failures: list[tuple[ScoringPhase, RecordFailed]],
    in_flight: list[InFlightElsewhere],
) -> RecordOutcome:
    """The message's outcome from its runs': any failure sends it back (naming every failed phase), then a run in
    flight elsewhere; else the most telling outcome."""
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


__all__ = [
    "DEFAULT_SKIP_PHASE",
    "PACE_MAX_WAITS",
    "ChallengeProcessor",
    "ConfigUnusable",
    "FailureReason",
    "InboundMessage",
    "RecordFailed",
    "RecordOutcome",
    "SkipReason",
    "ThrottleReason",
]
