"""Capacity admission of this challenge's runs (decisions 093, 094): enqueue a new run WAITING, dispatch this
challenge's queue, pace RunTask env-wide, and put a run back in its place (a throttled launch, a redrive) or free
the slot of a definite dead letter.

Only this challenge's queue is dispatched here: other challenges' runs are admitted by the completion function and
the sweeper (env-wide). An admitted run that is not this message's is sent to this challenge's own queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from challenge_lambda.config_reader import ChallengeConfigReader
from challenge_lambda.outcomes import (
    FailureReason,
    InFlightElsewhere,
    RecordFailed,
    RecordOutcome,
    ThrottleReason,
    run_log_ids,
)
from mm_adapters.status_store import LaunchClaim, StatusStore
from mm_capacity.config import CapacityConfigError, EnvironmentCapacityLoader
from mm_capacity.dispatcher import Admitted, Dispatcher, DispatchResult, admitted_message_body
from mm_capacity.store import (
    ENV_POOL,
    AdmissionLimits,
    CapacityStore,
    DirectLaunchOutcome,
    DirectLaunchResult,
    NewRunView,
    PoolSnapshot,
    challenge_pool_key,
    phase_pool_key,
)
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity, SupersedePolicy
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import RunKey
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import Clock, MetricsSink

# Pacing (decision 094): without a RunTask token this second, wait for the next second this many times at most
# (a Lambda invocation must not sleep long), then the run goes back to WAITING in its place.
PACE_MAX_WAITS = 5


class Admission:
    def __init__(
        self,
        challenge_id: str,
        *,
        store: StatusStore,
        capacity: CapacityStore,
        environment_capacity: EnvironmentCapacityLoader,
        configs: ChallengeConfigReader,
        challenge_queue_url: str,
        sqs_client: Callable[[], Any],
        metrics: MetricsSink,
        logger: Logger,
        clock: Clock,
        sleep: Callable[[float], None],
    ) -> None:
        self._challenge_id = challenge_id
        self._store = store
        self._capacity = capacity
        self._environment_capacity = environment_capacity
        self._configs = configs
        self._challenge_queue_url = challenge_queue_url
        self._sqs_client = sqs_client
        self._metrics = metrics
        self._logger = logger
        self._clock = clock
        self.sleep = sleep
        self._dispatcher = Dispatcher(
            capacity,
            environment_capacity=environment_capacity.get,
            challenge_settings=configs.own_settings,
            send=self._send_admitted,
            logger=logger,
            # Its second argument is a challenge id: this function's metrics carry its own already.
            metrics=lambda metric, _challenge_id: metrics.count(metric),
            observe_snapshot=self._observe_snapshot,
        )

    # ------------------------------------------------------------------ a new run
    def new_run_view(self, submission: RoutedSubmission, run: RunKey) -> NewRunView:
        """The run's item, its member and its pools: one BatchGetItem (decision 114). The versions stamped on the
        pools go to the loaders: the caps read next are current; this challenge's config, read before (its phases
        name the run), is checked from the next message on."""
        view = self._capacity.new_run_view(submission, run.phase)
        self._environment_capacity.observe(view.env.caps_version or view.challenge.caps_version)
        self._configs.observe(view.challenge.config_version)
        return view

    def _observe_snapshot(self, snapshot: PoolSnapshot) -> None:
        """The dispatcher's pools: the caps' version and this challenge's config version, to the loaders."""
        self._environment_capacity.observe(snapshot.env.caps_version)
        self._configs.observe(snapshot.challenge(self._challenge_id).config_version)

    def launch_directly(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        run: RunKey,
        view: NewRunView,
        *,
        lease_seconds: int,
        ids: dict[str, str],
    ) -> DirectLaunchResult:
        """A new run straight to LAUNCHING with its slots when nothing waits and every cap has room (one
        transaction, `CapacityStore.launch_directly`); NOT_NOW, without a write, when the view already shows it
        would be refused, when the caps are unreadable or when supersede may act on the member's other runs of
        this phase (the caller enqueues it then, as before)."""
        limits = self._direct_limits(config, run, view)
        if limits is None:
            return DirectLaunchResult(DirectLaunchOutcome.NOT_NOW)
        result = self._capacity.launch_directly(
            submission,
            phase=run.phase,
            scorer_type=config.scorer_type,
            timeout_seconds=config.phase_timeout(run.phase),
            priority_rank=config.capacity.rank(run.phase, rerun=submission.rerun),
            limits=limits,
            lease_seconds=lease_seconds,
            view=view,
            config_version=self._configs.version,
        )
        if result.outcome is DirectLaunchOutcome.CLAIMED:
            # Counted as every new run and every admission is: RunsEnqueued stays "runs entering capacity".
            self._metrics.count(Metric.RUNS_ENQUEUED, phase=run.phase.value)
            self._metrics.count(Metric.RUNS_ADMITTED)
            self._logger.info("run admitted and claimed without waiting", extra=ids)
        elif result.outcome is DirectLaunchOutcome.NOT_NOW:
            self._logger.info("run not admitted at once; enqueued", extra={"refused_by": result.refused_by, **ids})
        return result

    def _direct_limits(self, config: ChallengeConfig, run: RunKey, view: NewRunView) -> AdmissionLimits | None:
        """The caps of a run admitted without waiting; None when the view shows a refusal (no write is tried)."""
        if config.capacity.supersede is not SupersedePolicy.NONE and view.member_has_phase_runs:
            return None  # supersede decides between the member's runs of this phase: through the queue
        try:
            environment = self._environment_capacity.get()
        except CapacityConfigError:
            return None  # never admit without a cap; the dispatch after the enqueue logs and counts it
        challenge = config.capacity.max_running_tasks
        phase_cap = config.capacity.max_running_tasks_per_phase.get(run.phase)
        cpu = config.cpu or environment.default_task_cpu
        cpu_cap = environment.max_running_cpu_units
        full = {
            challenge_pool_key(self._challenge_id): view.challenge.used >= challenge or view.challenge.waiting != 0,
            phase_pool_key(self._challenge_id, run.phase): phase_cap is not None and view.phase.used >= phase_cap,
            ENV_POOL: view.env.used >= environment.max_running_tasks
            or (cpu_cap is not None and view.env.cpu_used + cpu > cpu_cap),
        }
        if view.challenge.paused or any(full.values()):
            return None
        return AdmissionLimits(
            challenge_cap=challenge,
            phase_cap=phase_cap,
            env_cap=environment.max_running_tasks,
            env_cpu_cap_units=cpu_cap,
            cpu_units=cpu,
            dispatched_round=view.challenge.dispatched_round,
        )

    def enqueue(
        self,
        submission: RoutedSubmission,
        config: ChallengeConfig,
        run: RunKey,
        *,
        observed: NewRunView | None = None,
    ) -> LifecycleRecord | None:
        """The run's new item, WAITING in its challenge's capacity queue (one transaction, before the message is
        acknowledged). None when another delivery created it first. `observed`: the member and pool just read."""
        enqueued = self._capacity.enqueue(
            submission,
            phase=run.phase,
            scorer_type=config.scorer_type,
            timeout_seconds=config.phase_timeout(run.phase),
            priority_rank=config.capacity.rank(run.phase, rerun=submission.rerun),
            observed=observed,
        )
        if not enqueued.created:
            return None
        self._metrics.count(Metric.RUNS_ENQUEUED, phase=run.phase.value)
        self._logger.info(
            "run enqueued for capacity",
            extra={"wait_order": enqueued.wait_order, **run_log_ids(submission, run)},
        )
        return enqueued.record

    def holds_its_slot(self, record: LifecycleRecord) -> bool:
        """An ambiguous dead letter keeps its slot while its task may run: its redrive retries the same clientToken
        at once (never WAITING, where the token could outlive ECS's 24 h); once the slot reconciler freed it (no task
        seen after its grace), the redrive queues like any other."""
        return record.launch_ambiguous and record.run_id in self._capacity.pools().env.holders

    def requeue_redriven(self, record: LifecycleRecord, ids: dict[str, str]) -> LifecycleRecord:
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

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, *, prefer: LifecycleRecord | None, ids: dict[str, str]) -> DispatchResult | None:
        """This challenge's queue dispatched; `prefer`: this message's WAITING run, returned as `self_admitted` (not
        sent) when it is admitted. The dispatcher admits nothing while the environment's caps are unusable (it logs
        and counts CapacityConfigErrors: never admit without a cap). None: the capacity table failed. Either way the
        runs stay WAITING, and the sweeper dispatches again."""
        try:
            return self._dispatcher.dispatch(
                challenge_id=self._challenge_id,
                prefer_run_id=prefer.run_id if prefer is not None else None,
                prefer_record=prefer,
            )
        except (BotoCoreError, ClientError) as error:
            # Never a message failure: the runs are durably WAITING and the sweeper's dispatch is the safety net.
            self._logger.exception(
                "dispatch failed; the runs wait for the next dispatch",
                extra={"error_type": type(error).__name__, **ids},
            )
        return None

    def _send_admitted(self, admitted: Admitted) -> None:
        """An admitted run that is not this message's: its routed message (with its phase) to this challenge's queue.
        A failed send propagates to the dispatcher (logged there); the sweeper re-sends past the ADMITTED deadline."""
        self._sqs_client().send_message(QueueUrl=self._challenge_queue_url, MessageBody=admitted_message_body(admitted))

    # ------------------------------------------------------------------ pacing (decision 094)
    def paced(self, ids: dict[str, str]) -> bool:
        """One RunTask token of the env-wide pace, waiting for the next second up to PACE_MAX_WAITS times."""
        per_second = self._run_task_per_second(ids)
        for waited in range(PACE_MAX_WAITS + 1):
            if self._capacity.pace(per_second):
                return True
            if waited < PACE_MAX_WAITS:
                now = self._clock()
                self.sleep(max(int(now) + 1 - now, 0.001))  # to the start of the next second
        return False

    def _run_task_per_second(self, ids: dict[str, str]) -> int:
        try:
            return self._environment_capacity.get().run_task_per_second
        except CapacityConfigError as error:
            # The run was admitted under a cap already; only the pace is unknown: the default one is safe.
            self._metrics.count(Metric.CAPACITY_CONFIG_ERRORS)
            self._logger.error(
                "environment capacity unusable; runs stay WAITING until it is fixed",
                extra={"capacity_error": str(error), **ids},
            )
            return EnvironmentCapacity().run_task_per_second

    def requeue_unstarted(
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

    # ------------------------------------------------------------------ dead letters
    def release_dead_lettered(self, run: RunKey, ids: dict[str, str]) -> None:
        """A definite dead letter holds no slot (no task can exist): free it and admit this challenge's next run.
        Best effort: the message fails anyway, and the sweeper's slot reconciler frees what a failure here leaves."""
        try:
            record = self._store.get(run.run_id)
            if record is None or record.state is not SubmissionState.DEAD_LETTERED or record.launch_ambiguous:
                return  # an ambiguous dead letter keeps its slot: a task may run (the reconciler decides)
            if self._capacity.release(record):
                self._logger.info("slot of a dead-lettered run released", extra=ids)
                self.dispatch(prefer=None, ids=ids)
        except (BotoCoreError, ClientError) as error:
            self._logger.warning(
                "slot release of a dead-lettered run failed; the reconciler frees it",
                extra={"error_type": type(error).__name__, **ids},
            )
