"""Launching one run that holds a capacity slot: the launch claim (conditional write + lease), the RunTask request
(with the scorer's credentials), the env-wide pace, the call itself, and recording the task on the run's item.

Exactly once (decisions 002, 070): only a granted claim calls RunTask, with the attempt's clientToken; a duplicate
delivery is acknowledged without RunTask, a live lease elsewhere hands the message back, and a launch that was
paced or throttled goes back to WAITING in its place instead of failing.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from challenge_lambda.admission import Admission
from challenge_lambda.config_reader import ChallengeConfigReader
from challenge_lambda.credentials import ScorerCredentialResolver, TokenUnavailableError
from challenge_lambda.launch_failures import LaunchFailures
from challenge_lambda.launcher import (
    EcsLauncher,
    LaunchErrorKind,
    LaunchOutcomeUnknown,
    LaunchRejected,
    LaunchResult,
    RunTaskRequest,
    build_run_task_request,
)
from challenge_lambda.outcomes import (
    FailureReason,
    InboundMessage,
    InFlightElsewhere,
    RecordOutcome,
    ThrottleReason,
    run_log_ids,
)
from mm_adapters.status_store import LaunchClaim, LaunchDecision, StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, SubmissionState
from mm_contracts.models.phase import PhaseConfig, RunKey
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import MetricsSink


class RunLaunch:
    def __init__(
        self,
        *,
        environment_name: str,
        lease_seconds: int,
        store: StatusStore,
        configs: ChallengeConfigReader,
        admission: Admission,
        failures: LaunchFailures,
        launcher: EcsLauncher,
        credentials: ScorerCredentialResolver,
        metrics: MetricsSink,
        logger: Logger,
    ) -> None:
        self._environment = environment_name
        self._lease_seconds = lease_seconds
        self._store = store
        self._configs = configs
        self._admission = admission
        self._failures = failures
        self._launcher = launcher
        self._credentials = credentials
        self._metrics = metrics
        self._logger = logger

    def launch(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        run: RunKey,
        message: InboundMessage,
        *,
        observed: LifecycleRecord | None = None,
    ) -> RecordOutcome:
        """The launch claim of a run that holds a slot, then RunTask (paced) exactly as before capacity existed.
        `observed`: the run's item as this message just read or admitted it (the claim starts from it)."""
        ids = run_log_ids(submission, run)
        timeout = config.phase_timeout(run.phase)
        claim = self._store.claim_launch(
            submission,
            phase=run.phase,
            scorer_type=config.scorer_type,
            lease_seconds=self._lease_seconds,
            timeout_seconds=timeout,
            observed=observed,
            config_version=self._configs.version,
        )
        if not claim.granted:
            return self._not_granted(claim, run, ids)
        return self.launch_claimed(submission, config, run, message, claim)

    def launch_claimed(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        run: RunKey,
        message: InboundMessage,
        claim: LaunchClaim,
    ) -> RecordOutcome:
        """RunTask (paced) for a granted claim: `launch`'s own, or the one a run admitted without waiting took in
        its creating transaction (decision 114)."""
        ids = run_log_ids(submission, run)
        timeout = config.phase_timeout(run.phase)
        phase_config = config.phase_config(run.phase)
        if phase_config is None:
            # A relaunch (or a later dispatch) of a phase the config no longer lists: perhaps mid-edit, so it is
            # retried after a config refresh, then the run is DEAD_LETTERED with this reason.
            self._configs.refresh_next()
            self._failures.failed(
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
        if not ambiguous and not self._admission.paced(ids):
            return self._admission.requeue_unstarted(run, claim, ThrottleReason.PACED, ids)
        result = self._run_task(run, claim, request, message, requeue_on_throttle=not ambiguous)
        if result is None:
            return self._admission.requeue_unstarted(run, claim, ThrottleReason.THROTTLED, ids)
        return self._record_launched(run, timeout, claim, result, ids)

    def _not_granted(self, claim: LaunchClaim, run: RunKey, ids: dict[str, str]) -> RecordOutcome:
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
            self._failures.failed(run, claim, message, FailureReason.TOKEN_UNAVAILABLE.value, str(error))
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

    def _run_task(
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
                self._configs.refresh_next()  # e.g. the task definition named in the cached config is gone
            self._failures.failed(
                run,
                claim,
                message,
                error.reason_code,
                request.redact(error.detail),
                token_settled=error.token_settled,
            )
        except LaunchOutcomeUnknown as error:
            self._failures.outcome_unknown(
                run, claim, request, message, error.reason_code, request.redact(error.detail)
            )
        except Exception as error:
            # A bug or an unforeseen error type: we cannot prove ECS saw nothing, so treat it as ambiguous.
            self._failures.outcome_unknown(
                run, claim, request, message, type(error).__name__, request.redact(str(error))
            )

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


def _attempt_is_ambiguous(claim: LaunchClaim) -> bool:
    """The claimed attempt may already have a task: it was marked ambiguous, or re-claimed from an expired lease."""
    record = claim.record
    return record is not None and (record.launch_ambiguous or record.state is SubmissionState.LAUNCHING)
