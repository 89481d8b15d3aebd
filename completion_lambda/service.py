"""Completion logic: a STOPPED event (or a "Run Report Due" event) in, one lifecycle record and one report out.

Plain class with injected ports (status store, config source, the Topcoder reporting clients, ECS and SQS
clients, metrics), so the handler, the tests and the local pipeline all drive the same code. A run is
(submission, phase) and every store call is by its run id (decision 084). Exactly-once reporting rests on the
status store's conditional writes (see `mm_adapters.status_store`); this module only follows the protocol:
validate the task's identity, record the outcome on the item that tracks the task (never create one), claim
the report, look before sending on a retried attempt (only once a slow commit can no longer land), then mark
the result. The report protocol is `completion_lambda.report_sender`, the task's identity
`completion_lambda.identity`; the report itself goes through a `Reporter` chosen by the challenge's platform: a v5
review or a v6 review summation upsert (decision 086). A transient start failure is relaunched a bounded number of times
instead (decision 072), keeping its slot. Once a final outcome is recorded, the run's capacity slot is released
and waiting runs are admitted env-wide (decision 096); a run whose cancel was requested (superseded by a newer
submission) and whose task was stopped ends CANCELLED (decision 095).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from completion_lambda.capacity import FreedSlots
from completion_lambda.identity import TASK_ARN, TaskIdentity, identify_task
from completion_lambda.outcome import (
    CANCELLABLE_STOP_CODES,
    decide_outcome,
    failure_reason,
)
from completion_lambda.policy import CompletionPolicy
from completion_lambda.recorded_outcomes import dead_lettered_outcome, recorded_outcome, unknown_outcome
from completion_lambda.relaunch import StartFailureRelauncher
from completion_lambda.report_sender import ReportSender
from completion_lambda.reporting import ReviewApi, SummationsApi
from completion_lambda.results import (
    CompletionResult,
    Disposition,
    IgnoreReason,
    ReportDeferredError,
    not_required_result,
)
from mm_adapters.challenge_config import ChallengeConfigError, ConfigErrorReason
from mm_adapters.status_store import OutcomeDecision, OutcomeRecordResult, StatusStore
from mm_capacity.queues import ChallengeQueues
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.ecs_event import (
    EcsTaskStateChangeDetail,
    EcsTaskStateChangeEvent,
    EventBridgeEnvelope,
)
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode
from mm_contracts.models.phase import Platform, RunKey, ScoringPhase
from mm_contracts.names import started_by_prefix
from mm_contracts.ports import MetricsSink

if TYPE_CHECKING:
    from mm_contracts.models.report_due import RunReportDueEvent

__all__ = ["CompletionService", "ConfigSource"]

STOPPED = "STOPPED"


class ConfigSource(Protocol):
    def get(self, challenge_id: str, *, force_refresh: bool = False) -> ChallengeConfig: ...


_OUTCOME_METRICS = {
    OutcomeCode.SUCCEEDED: Metric.TASKS_SUCCEEDED,
    OutcomeCode.FAILED: Metric.TASKS_FAILED,
    OutcomeCode.TIMED_OUT: Metric.TASKS_TIMED_OUT,
    OutcomeCode.CANCELLED: Metric.RUNS_CANCELLED,
}

# The RunsCancelled reason of a running task stopped because its run was superseded (the challenge processor
# counts the cancel requests; this counts the stops that ended a run).
CANCELLED_TASK_REASON = "superseded_task_stopped"


class CompletionService:
    def __init__(
        self,
        *,
        environment_name: str,
        store: StatusStore,
        config_source: ConfigSource,
        review_api: Callable[[], ReviewApi],
        ecs: Callable[[], Any],
        metrics: MetricsSink,
        logger: Logger,
        policy: CompletionPolicy | None = None,
        sqs: Callable[[], Any] | None = None,
        summations_api: Callable[[], SummationsApi] | None = None,
        report_lease_seconds: int | None = None,
        capacity: FreedSlots | None = None,
        queues: ChallengeQueues | None = None,
    ) -> None:
        self._prefix = started_by_prefix(environment_name)
        self._store = store
        self._config = config_source
        # Built on first use: most events never need an API, ECS or SQS. An API factory raises
        # `ReporterUnavailableError` when the environment is not configured for its platform.
        self._ecs = ecs
        self._metrics = metrics
        policy = policy or CompletionPolicy()
        if report_lease_seconds is not None:
            policy = CompletionPolicy(**{**policy.__dict__, "report_lease_seconds": report_lease_seconds})
        self._policy = policy
        self._logger = logger
        # Where a relaunch goes (the challenge queues); None: start failures are never relaunched.
        if queues is None and policy.challenge_queue_name_template is not None and sqs is not None:
            queues = ChallengeQueues(policy.challenge_queue_name_template, sqs)
        self._relaunches = StartFailureRelauncher(
            store=store, queues=queues, policy=policy, metrics=metrics, logger=logger
        )
        # None: no capacity accounting (tests and tools that predate it); the deployed function always has it.
        self._capacity = capacity
        self._reports = ReportSender(
            store=store,
            review_api=review_api,
            summations_api=summations_api,
            policy=policy,
            metrics=metrics,
            logger=logger,
        )

    # ------------------------------------------------------------------ entry points
    def process(self, event: EventBridgeEnvelope | RunReportDueEvent) -> CompletionResult:
        """`event` is an `EcsTaskStateChangeEvent` for ECS task state changes, or a `RunReportDueEvent` (see
        `completion_lambda.events.parse_event`); anything else is ignored."""
        if not isinstance(event, EventBridgeEnvelope):  # a `RunReportDueEvent`, not imported unless one comes
            return self.process_report_due(event)
        if not isinstance(event, EcsTaskStateChangeEvent):
            return self._ignore(IgnoreReason.NOT_TASK_STATE_CHANGE, "not an ECS Task State Change")
        detail = event.detail
        if detail.last_status != STOPPED:
            return self._ignore(IgnoreReason.NOT_STOPPED, f"lastStatus {detail.last_status!r}"[:200])
        if not (detail.started_by or "").startswith(self._prefix):
            return self._ignore(IgnoreReason.FOREIGN_TASK, f"startedBy {detail.started_by!r}"[:200])
        if not TASK_ARN.match(detail.task_arn):
            return self._ignore(IgnoreReason.TASK_ARN_INVALID, "taskArn is not an ECS task ARN")
        self._logger.append_keys(task_arn=detail.task_arn)

        identity = identify_task(event, prefix=self._prefix, task_tags=self._task_tags)
        if isinstance(identity, IgnoreReason):
            if identity is IgnoreReason.SUBMISSION_UNIDENTIFIED:
                self._logger.error("STOPPED event of our task names no submission (overrides and tags)")
            return self._ignore(identity, "task identity rejected")
        self._logger.set_correlation_id(identity.submission_id)
        self._logger.append_keys(challenge_id=identity.challenge_id, kafka_correlation_id=identity.correlation_id)

        config = self._load_config(identity.challenge_id)
        run = self._run_of(identity, config)
        if run is None:
            return self._ignore(
                IgnoreReason.PHASE_UNIDENTIFIED,
                "the task names no phase and the challenge config has not exactly one",
                submission_id=identity.submission_id,
            )
        self._logger.append_keys(run_id=run.run_id, phase=run.phase.value)
        return self._process_stopped(run, identity, config, detail)

    def _process_stopped(
        self, run: RunKey, identity: TaskIdentity, config: ChallengeConfig | None, detail: EcsTaskStateChangeDetail
    ) -> CompletionResult:
        """The run's outcome from its task's STOPPED event: relaunched (a transient start failure), or recorded on
        the item that tracks the task, its slot freed, then reported."""
        # Only a stop the pipeline (or ECS, before the start) caused can be a cancel: only then is the item read.
        tracked = self._store.get(run.run_id) if detail.stop_code in CANCELLABLE_STOP_CODES else None
        outcome = decide_outcome(
            detail,
            scorer_container_name=config.scorer_container_name if config else None,
            cancel_requested=tracked is not None and tracked.cancel_requested,
        )
        relaunched = self._relaunches.relaunch_if_transient(run, identity, outcome, detail)
        if isinstance(relaunched, CompletionResult):
            return relaunched
        outcome = relaunched
        report_required = _report_required(outcome, config, tracked)
        recorded = self._store.record_outcome(
            run.run_id,
            identity.challenge_id,
            outcome,
            report_required=report_required,
            launch_attempt=identity.launch_attempt,
            report_check_seconds=self._policy.report_check_delay_seconds,
            stopped_at=detail.stopped_at,
            # A report this invocation sends at once is claimed in the outcome write (one status write fewer,
            # decision 114); without a usable config it stays PENDING for a retry, as before.
            report_lease_seconds=self._policy.report_lease_seconds if report_required and config else None,
        )
        not_ours = self._not_recorded(recorded, run, identity)
        if not_ours is not None:
            return not_ours
        record = recorded.record
        assert record is not None
        # The run is final: its slot is free (a duplicate event releases nothing again, and dispatches harmlessly).
        self._free_slot(record)
        if recorded.decision is OutcomeDecision.RECORDED:
            self._count_outcome(outcome)
            self._logger.info(
                "outcome recorded",
                extra={"outcome": outcome.code.value, "exit_code": outcome.exit_code, "stop_code": outcome.stop_code},
            )
            if record.report_status is ReportStatus.NOT_REQUIRED:
                return not_required_result(run, outcome)
        else:
            # A duplicate, a retry or the sweeper's re-drive: report what was recorded, not this event's reading.
            outcome = recorded_outcome(record, fallback=outcome)

        if config is None:
            raise ReportDeferredError(f"no usable config for challenge {identity.challenge_id}; report left PENDING")
        correlation_id = identity.correlation_id or record.correlation_id or run.submission_id
        claim = self._store.claim_taken_with_outcome(recorded)
        if claim is not None:
            return self._reports.report_claimed(run, outcome, config, correlation_id, claim)
        return self._reports.report_recorded(run, record, outcome, config, correlation_id)

    def _not_recorded(
        self, recorded: OutcomeRecordResult, run: RunKey, identity: TaskIdentity
    ) -> CompletionResult | None:
        """The event ignored when no item of ours tracks its task (never launched, a stale or another task)."""
        record = recorded.record
        if recorded.decision is OutcomeDecision.UNKNOWN_SUBMISSION or record is None:
            return self._ignore(
                IgnoreReason.UNKNOWN_SUBMISSION, "no status item: never launched", submission_id=run.submission_id
            )
        if recorded.decision is OutcomeDecision.STALE_TASK:
            return self._ignore(
                IgnoreReason.STALE_TASK,
                f"task of attempt {identity.launch_attempt}; item LAUNCHING on attempt {record.launch_attempt}",
                submission_id=run.submission_id,
            )
        if recorded.decision is OutcomeDecision.OTHER_TASK:
            return self._ignore(
                IgnoreReason.OTHER_TASK,
                f"status item tracks task {record.task_arn} in state {record.state.value}",
                submission_id=run.submission_id,
            )
        return None

    def process_report_due(self, event: RunReportDueEvent) -> CompletionResult:
        """Report a run's RECORDED outcome (a run without a task of its own: a v6 skip, or a v6 run dead-lettered
        because it could not be started), exactly once, same protocol."""
        run = event.detail.run_key
        self._logger.set_correlation_id(run.submission_id)
        self._logger.append_keys(run_id=run.run_id, phase=run.phase.value)
        record = self._store.get(run.run_id)
        if record is None:
            return self._ignore(IgnoreReason.UNKNOWN_SUBMISSION, "report due for a run with no status item")
        # A DEAD_LETTERED item carries a report only when the store made it due (definite v6 dead-letter).
        dead_lettered_report = record.state is SubmissionState.DEAD_LETTERED and record.report_status is not None
        if record.state not in FINAL_STATES and not dead_lettered_report:
            return self._ignore(
                IgnoreReason.RUN_NOT_FINAL,
                f"report due but the run is {record.state.value}",
                submission_id=run.submission_id,
                phase=run.phase,
            )
        self._logger.append_keys(challenge_id=record.challenge_id, task_arn=record.task_arn)
        if record.state in FINAL_STATES:
            self._free_slot(record)  # normally free already; a final run never holds a slot again
        if dead_lettered_report:
            outcome = dead_lettered_outcome(record)
        else:
            outcome = recorded_outcome(record, fallback=unknown_outcome(record))
        if record.report_status in (None, ReportStatus.NOT_REQUIRED):
            return not_required_result(run, outcome)
        config = self._load_config(record.challenge_id)
        if config is None:
            raise ReportDeferredError(f"no usable config for challenge {record.challenge_id}; report left PENDING")
        correlation_id = record.correlation_id or run.submission_id
        return self._reports.report_recorded(run, record, outcome, config, correlation_id)

    # ------------------------------------------------------------------ steps
    def _run_of(self, identity: TaskIdentity, config: ChallengeConfig | None) -> RunKey | None:
        """The run the task belongs to. A task naming no phase (launched before tasks carried one) is the run of
        the challenge's single phase; with several phases it is unknowable. Without a usable config it is the
        submission's only run, if it has exactly one: the outcome is still recorded (decision 038)."""
        if identity.phase is not None:
            return RunKey(identity.submission_id, identity.phase)
        if config is not None:
            phases = config.effective_phases
            return RunKey(identity.submission_id, phases[0].phase) if len(phases) == 1 else None
        runs = self._store.get_runs(identity.submission_id)
        return runs[0].run_key if len(runs) == 1 else None

    def _task_tags(self, cluster_arn: str, task_arn: str) -> dict[str, str]:
        response = self._ecs().describe_tasks(cluster=cluster_arn, tasks=[task_arn], include=["TAGS"])
        tasks = response.get("tasks") or []
        if not tasks:
            self._logger.warning("describe_tasks found no task", extra={"failures": response.get("failures")})
            return {}
        return {tag["key"]: tag["value"] for tag in tasks[0].get("tags", []) if "key" in tag and "value" in tag}

    def _load_config(self, challenge_id: str) -> ChallengeConfig | None:
        """The challenge config, or None when it is missing or invalid.

        An unreadable parameter (throttling, access, network) propagates before anything is recorded:
        the retried invocation reads it again. A missing or invalid one will not fix itself; the outcome
        is still recorded so the lifecycle is not stuck (decision 038).
        """
        try:
            return self._config.get(challenge_id)
        except ChallengeConfigError as error:
            if error.reason is ConfigErrorReason.PARAMETER_UNREADABLE:
                raise
            self._logger.error("challenge config unusable", extra={"config_error": error.reason.value})
            self._metrics.count(Metric.REPORT_FAILURES, reason=f"config_{error.reason.value}")
            return None

    def _free_slot(self, record: LifecycleRecord) -> None:
        """Release the final run's slot and admit waiting runs env-wide; never raises (decision 096)."""
        if self._capacity is not None:
            self._capacity.free(record)

    def _count_outcome(self, outcome: Outcome) -> None:
        metric = _OUTCOME_METRICS[outcome.code]
        if outcome.code is OutcomeCode.CANCELLED:
            self._metrics.count(metric, reason=CANCELLED_TASK_REASON)
            return
        self._metrics.count(metric, reason=failure_reason(outcome) if outcome.code is OutcomeCode.FAILED else None)

    def _ignore(
        self,
        reason: IgnoreReason,
        detail: str,
        *,
        submission_id: str | None = None,
        phase: ScoringPhase | None = None,
    ) -> CompletionResult:
        self._metrics.count(Metric.EVENTS_IGNORED, reason=reason.value)
        self._logger.info("event ignored", extra={"ignore_reason": reason.value, "detail": detail})
        return CompletionResult(Disposition.IGNORED, reason.value, submission_id, phase=phase)


def _report_required(outcome: Outcome, config: ChallengeConfig | None, tracked: LifecycleRecord | None) -> bool:
    """ "No report needed" only when the challenge's policy is known (defect 6): without a usable config the report
    stays PENDING until a retry, a redrive or the sweeper finds the config readable. A cancel is reported on v6
    only: v6 shows it as a summation; the v5 review API has no cancelled status (decision 095)."""
    if outcome.code is OutcomeCode.CANCELLED:
        platform = config.platform if config is not None else tracked.platform if tracked else Platform.V5
        return platform is Platform.V6
    return not (outcome.code is OutcomeCode.SUCCEEDED and config is not None and not config.report_on_success)
