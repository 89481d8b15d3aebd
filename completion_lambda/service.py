"""Completion logic: a STOPPED event (or a "Run Report Due" event) in, one lifecycle record and one report out.

Plain class with injected ports (status store, config source, the Topcoder reporting clients, ECS and SQS
clients, metrics), so the handler, the tests and the local pipeline all drive the same code. A run is
(submission, phase) and every store call is by its run id (decision 084). Exactly-once reporting rests on the
status store's conditional writes (see `mm_adapters.status_store`); this module only follows the protocol:
validate the task's identity, record the outcome on the item that tracks the task (never create one), claim
the report, look before sending on a retried attempt (only once a slow commit can no longer land), then mark
the result. The report itself goes through a `Reporter` chosen by the challenge's platform: a v5 review or a
v6 review summation upsert (decision 086). A transient start failure is relaunched a bounded number of times
instead (decision 072), keeping its slot. Once a final outcome is recorded, the run's capacity slot is released
and waiting runs are admitted env-wide (decision 096); a run whose cancel was requested (superseded by a newer
submission) and whose task was stopped ends CANCELLED (decision 095).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from completion_lambda.capacity import ChallengeQueues, FreedSlots
from completion_lambda.observability import MetricsSink
from completion_lambda.outcome import (
    CANCELLABLE_STOP_CODES,
    SUPERSEDED_REASON,
    decide_outcome,
    failure_reason,
    start_failure_is_transient,
)
from completion_lambda.reporting import (
    Reporter,
    ReporterUnavailableError,
    ReviewApi,
    ReviewReporter,
    RunReport,
    SummationReporter,
    SummationsApi,
)
from mm_adapters.challenge_config import ChallengeConfigError, ConfigErrorReason
from mm_adapters.status_store import OutcomeDecision, RelaunchDecision, ReportClaim, StatusStore
from mm_adapters.topcoder.submission_api import (
    ApiAuthError,
    ApiOutcomeUnknownError,
    ApiRejectedError,
    ApiTransientError,
)
from mm_contracts.metric_names import Metric
from mm_contracts.models.bus import canonical_uuid
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.ecs_event import EcsTaskStateChangeEvent, StopCode
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import V6_SUBMISSION_ID, Platform, RunKey, ScoringPhase
from mm_contracts.models.report_due import RunReportDueEvent
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.models.task import TaskEnv, TaskTag
from mm_contracts.names import started_by_prefix
from mm_contracts.settings import CompletionSettings

__all__ = [
    "CompletionPolicy",
    "CompletionResult",
    "CompletionService",
    "ConfigSource",
    "Disposition",
    "IgnoreReason",
    "ReportDeferredError",
    "ReportInProgressError",
    "ReportOutcomeUnsettledError",
    "ReviewApi",
    "SummationsApi",
    "TaskIdentity",
    "dead_lettered_outcome",
    "recorded_outcome",
]

STOPPED = "STOPPED"
_MAX_RESPONSE_SUMMARY = 500
SQS_MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
# What the pipeline itself writes: a RunTask launch attempt, a task ARN, a correlation id (printable ASCII).
_LAUNCH_ATTEMPT = re.compile(r"^[1-9][0-9]{0,8}$")
_TASK_ARN = re.compile(r"^arn:[a-z-]{1,16}:ecs:[a-z0-9-]{1,32}:[0-9]{12}:task/[A-Za-z0-9_/-]{1,300}$")
_CORRELATION_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


class ConfigSource(Protocol):
    def get(self, challenge_id: str, *, force_refresh: bool = False) -> ChallengeConfig: ...


class IgnoreReason(StrEnum):
    """Why an event was not acted on (the `Reason` dimension of EventsIgnored)."""

    NOT_TASK_STATE_CHANGE = "not_task_state_change"
    NOT_STOPPED = "not_stopped"
    FOREIGN_TASK = "foreign_task"  # startedBy is not ours
    TASK_ARN_INVALID = "task_arn_invalid"
    SUBMISSION_UNIDENTIFIED = "submission_unidentified"  # neither overrides nor tags name the submission
    SUBMISSION_ID_INVALID = "submission_id_invalid"  # neither a canonical v5 UUID nor a v6 nanoid (decision 076)
    CHALLENGE_ID_INVALID = "challenge_id_invalid"
    PHASE_INVALID = "phase_invalid"  # MM_PHASE (or the Phase tag) is not EXAMPLE, PROVISIONAL or SYSTEM
    # No phase on the task, and the challenge's config does not have exactly one phase to assume (or is unusable)
    PHASE_UNIDENTIFIED = "phase_unidentified"
    LAUNCH_ATTEMPT_INVALID = "launch_attempt_invalid"  # MM_LAUNCH_ATTEMPT present but not a positive integer
    UNKNOWN_SUBMISSION = "unknown_submission"  # no status item: the pipeline never launched (or skipped) the run
    OTHER_TASK = "other_task"  # the status item tracks a different task (stale event)
    STALE_TASK = "stale_task"  # the item is LAUNCHING on a newer attempt than the stopped task's
    RUN_NOT_FINAL = "run_not_final"  # a report-due event for a run without a recorded outcome


class Disposition(StrEnum):
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    NOT_REQUIRED = "not_required"  # success without a configured success report
    REPORTED = "reported"
    ALREADY_REPORTED = "already_reported"  # a retried attempt found its earlier report
    REJECTED = "rejected"
    RELAUNCHED = "relaunched"  # a transient start failure sent back to the challenge queue (decision 072)


@dataclass(frozen=True)
class CompletionResult:
    disposition: Disposition
    reason: str = ""
    submission_id: str | None = None
    outcome: OutcomeCode | None = None
    review_id: str | None = None  # the review (v5) or review summation (v6) id
    phase: ScoringPhase | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "disposition": self.disposition.value,
            "reason": self.reason,
            "submissionId": self.submission_id,
            "phase": self.phase.value if self.phase else None,
            "runId": RunKey(self.submission_id, self.phase).run_id if self.submission_id and self.phase else None,
            "outcome": self.outcome.value if self.outcome else None,
            "reviewId": self.review_id,
        }


@dataclass(frozen=True)
class TaskIdentity:
    submission_id: str
    challenge_id: str
    correlation_id: str | None  # MM_CORRELATION_ID when well-formed
    source: str  # "overrides" or "tags"
    launch_attempt: int | None = None  # MM_LAUNCH_ATTEMPT; None for tasks launched before it existed
    phase: ScoringPhase | None = None  # MM_PHASE (Phase tag); None: the task names none (see `_run_of`)


@dataclass(frozen=True)
class CompletionPolicy:
    """The timings and bounds the service follows (from `CompletionSettings`)."""

    report_lease_seconds: int = 120
    report_slow_commit_seconds: int = 60
    report_check_delay_seconds: int = 600
    max_start_relaunches: int = 2
    start_relaunch_delay_seconds: int = 60
    challenge_queue_name_template: str | None = None  # None: start failures are never relaunched
    relaunch_check_seconds: int = 900

    @classmethod
    def from_settings(cls, settings: CompletionSettings) -> CompletionPolicy:
        return cls(
            report_lease_seconds=settings.report_lease_seconds,
            report_slow_commit_seconds=settings.report_slow_commit_seconds,
            report_check_delay_seconds=settings.report_check_delay_seconds,
            max_start_relaunches=settings.max_start_relaunches,
            start_relaunch_delay_seconds=settings.start_relaunch_delay_seconds,
            challenge_queue_name_template=settings.challenge_queue_name_template,
            relaunch_check_seconds=settings.relaunch_check_seconds,
        )

    def relaunch_delay(self, relaunch_number: int) -> int:
        """60 s, 120 s, 240 s, ... capped at SQS's 900 s (relaunch_number >= 1)."""
        return min(SQS_MAX_DELAY_SECONDS, self.start_relaunch_delay_seconds * 2 ** max(0, relaunch_number - 1))


class ReportDeferredError(RuntimeError):
    """The outcome is recorded but cannot be reported yet (e.g. no usable challenge config).

    Raised so the event is retried and finally kept in the rule target's DLQ; the report stays PENDING,
    so a redrive (or the sweeper's re-drive) after the cause is fixed reports it.
    """


class ReportInProgressError(RuntimeError):
    """Another invocation holds the report lease: retry later (its holder may have died mid-report)."""


class ReportOutcomeUnsettledError(ReportInProgressError):
    """An earlier send's outcome is unknown and a slow commit may still land: look later, never send now."""


_OUTCOME_METRICS = {
    OutcomeCode.SUCCEEDED: Metric.TASKS_SUCCEEDED,
    OutcomeCode.FAILED: Metric.TASKS_FAILED,
    OutcomeCode.TIMED_OUT: Metric.TASKS_TIMED_OUT,
    OutcomeCode.CANCELLED: Metric.RUNS_CANCELLED,
}
# The RunsCancelled reason of a running task stopped because its run was superseded (the challenge processor
# counts the cancel requests; this counts the stops that ended a run).
CANCELLED_TASK_REASON = "superseded_task_stopped"


def valid_submission_id(raw: str) -> str | None:
    """The submission id in its canonical form: a v5 UUID (lower-cased) or a v6 nanoid (exact); else None."""
    return canonical_uuid(raw) or (raw if V6_SUBMISSION_ID.match(raw) else None)


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
        # Built on first use: most events never need an API, ECS or SQS. A factory raises
        # `ReporterUnavailableError` when the environment is not configured for its platform.
        self._review_api = review_api
        self._summations_api = summations_api
        self._ecs = ecs
        self._sqs = sqs
        self._metrics = metrics
        policy = policy or CompletionPolicy()
        if report_lease_seconds is not None:
            policy = CompletionPolicy(**{**policy.__dict__, "report_lease_seconds": report_lease_seconds})
        self._policy = policy
        self._logger = logger
        # Where a relaunch goes (the challenge queues); None: start failures are never relaunched.
        if queues is None and policy.challenge_queue_name_template is not None and sqs is not None:
            queues = ChallengeQueues(policy.challenge_queue_name_template, sqs)
        self._queues = queues
        # None: no capacity accounting (tests and tools that predate it); the deployed function always has it.
        self._capacity = capacity

    # ------------------------------------------------------------------ entry points
    def process(self, event: EventBridgeModel | RunReportDueEvent) -> CompletionResult:
        """`event` is an `EcsTaskStateChangeEvent` for ECS task state changes, or a `RunReportDueEvent` (see
        `handler.parse_event`); anything else is ignored."""
        if isinstance(event, RunReportDueEvent):
            return self.process_report_due(event)
        if not isinstance(event, EcsTaskStateChangeEvent):
            return self._ignore(IgnoreReason.NOT_TASK_STATE_CHANGE, "not an ECS Task State Change")
        detail = event.detail
        if detail.last_status != STOPPED:
            return self._ignore(IgnoreReason.NOT_STOPPED, f"lastStatus {detail.last_status!r}"[:200])
        if not (detail.started_by or "").startswith(self._prefix):
            return self._ignore(IgnoreReason.FOREIGN_TASK, f"startedBy {detail.started_by!r}"[:200])
        if not _TASK_ARN.match(detail.task_arn):
            return self._ignore(IgnoreReason.TASK_ARN_INVALID, "taskArn is not an ECS task ARN")
        self._logger.append_keys(task_arn=detail.task_arn)

        identity = self._identify(event)
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

        # Only a stop the pipeline (or ECS, before the start) caused can be a cancel: only then is the item read.
        tracked = self._store.get(run.run_id) if detail.stop_code in CANCELLABLE_STOP_CODES else None
        cancel_requested = tracked is not None and tracked.cancel_requested
        outcome = decide_outcome(
            detail,
            scorer_container_name=config.scorer_container_name if config else None,
            cancel_requested=cancel_requested,
        )
        relaunches_done = 0
        if (
            outcome.code is not OutcomeCode.CANCELLED
            and outcome.stop_code == StopCode.TASK_FAILED_TO_START
            and start_failure_is_transient(detail.stopped_reason)
        ):
            relaunched, relaunches_done = self._relaunch(run, identity, outcome, task_arn=detail.task_arn)
            if relaunched is not None:
                return relaunched
            if relaunches_done:
                outcome = outcome.model_copy(
                    update={"reason": f"{outcome.reason} (after {relaunches_done} relaunches)"}
                )

        # "No report needed" only when the challenge's policy is known (defect 6): without a usable config the
        # report stays PENDING until a retry, a redrive or the sweeper finds the config readable.
        report_required = not (
            outcome.code is OutcomeCode.SUCCEEDED and config is not None and not config.report_on_success
        )
        if outcome.code is OutcomeCode.CANCELLED:
            # v6 shows the cancel as a summation; the v5 review API has no cancelled status (decision 095).
            platform = config.platform if config is not None else tracked.platform if tracked else Platform.V5
            report_required = platform is Platform.V6
        recorded = self._store.record_outcome(
            run.run_id,
            identity.challenge_id,
            outcome,
            report_required=report_required,
            launch_attempt=identity.launch_attempt,
            report_check_seconds=self._policy.report_check_delay_seconds,
            stopped_at=detail.stopped_at,
        )
        if recorded.decision is OutcomeDecision.UNKNOWN_SUBMISSION or recorded.record is None:
            return self._ignore(
                IgnoreReason.UNKNOWN_SUBMISSION, "no status item: never launched", submission_id=run.submission_id
            )
        record = recorded.record
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
        # The run is final: its slot is free (a duplicate event releases nothing again, and dispatches harmlessly).
        self._free_slot(record)
        if recorded.decision is OutcomeDecision.RECORDED:
            self._count_outcome(outcome)
            self._logger.info(
                "outcome recorded",
                extra={"outcome": outcome.code.value, "exit_code": outcome.exit_code, "stop_code": outcome.stop_code},
            )
            if record.report_status is ReportStatus.NOT_REQUIRED:
                return self._not_required(run, outcome)
        else:
            # A duplicate, a retry or the sweeper's re-drive: report what was recorded, not this event's reading.
            outcome = recorded_outcome(record, fallback=outcome)

        if config is None:
            raise ReportDeferredError(f"no usable config for challenge {identity.challenge_id}; report left PENDING")
        correlation_id = identity.correlation_id or record.correlation_id or run.submission_id
        return self._report_recorded(run, record, outcome, config, correlation_id)

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
            outcome = recorded_outcome(record, fallback=_unknown_outcome(record))
        if record.report_status in (None, ReportStatus.NOT_REQUIRED):
            return self._not_required(run, outcome)
        config = self._load_config(record.challenge_id)
        if config is None:
            raise ReportDeferredError(f"no usable config for challenge {record.challenge_id}; report left PENDING")
        correlation_id = record.correlation_id or run.submission_id
        return self._report_recorded(run, record, outcome, config, correlation_id)

    # ------------------------------------------------------------------ steps
    def _identify(self, event: EcsTaskStateChangeEvent) -> TaskIdentity | IgnoreReason:
        """Who the task is, from the values the pipeline set on it, each validated (decision 076)."""
        detail = event.detail
        env = detail.environment()
        raw_submission = env.get(TaskEnv.SUBMISSION_ID.value)
        raw_challenge = env.get(TaskEnv.CHALLENGE_ID.value) or (detail.started_by or "")[len(self._prefix) :]
        raw_phase = env.get(TaskEnv.PHASE.value)
        source = "overrides"
        if not raw_submission:
            # Events carry no tags; only a task started without our overrides lands here.
            tags = self._task_tags(detail.cluster_arn, detail.task_arn)
            raw_submission = tags.get(TaskTag.SUBMISSION_ID.value)
            raw_challenge = raw_challenge or tags.get(TaskTag.CHALLENGE_ID.value, "")
            raw_phase = raw_phase or tags.get(TaskTag.PHASE.value)
            source = "tags"
        if not raw_submission:
            return IgnoreReason.SUBMISSION_UNIDENTIFIED
        submission_id = valid_submission_id(raw_submission)
        if submission_id is None:
            return IgnoreReason.SUBMISSION_ID_INVALID
        challenge_id = canonical_uuid(raw_challenge) if raw_challenge else None
        if challenge_id is None:
            return IgnoreReason.CHALLENGE_ID_INVALID
        phase: ScoringPhase | None = None
        if raw_phase:
            try:
                phase = ScoringPhase(raw_phase)
            except ValueError:
                return IgnoreReason.PHASE_INVALID
        raw_attempt = env.get(TaskEnv.LAUNCH_ATTEMPT.value)
        launch_attempt: int | None = None
        if raw_attempt is not None:
            if not _LAUNCH_ATTEMPT.match(raw_attempt):
                return IgnoreReason.LAUNCH_ATTEMPT_INVALID
            launch_attempt = int(raw_attempt)
        raw_correlation = env.get(TaskEnv.CORRELATION_ID.value, "")
        correlation_id = raw_correlation if _CORRELATION_ID.match(raw_correlation) else None
        return TaskIdentity(submission_id, challenge_id, correlation_id, source, launch_attempt, phase)

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

    def _relaunch(
        self, run: RunKey, identity: TaskIdentity, outcome: Outcome, *, task_arn: str
    ) -> tuple[CompletionResult | None, int]:
        """A transient start failure of task `task_arn`: back to the challenge queue, bounded (decision 072).

        Returns (result, relaunches already done). A None result means "not relaunched: record it as usual".
        """
        policy = self._policy
        if self._queues is None:
            return None, 0
        claim = self._store.mark_start_failed_for_relaunch(
            run.run_id,
            identity.challenge_id,
            task_arn=task_arn,
            launch_attempt=identity.launch_attempt,
            reason=outcome.reason,
            max_relaunches=policy.max_start_relaunches,
            recheck_seconds=policy.relaunch_check_seconds,
        )
        if claim.decision is RelaunchDecision.NOT_ELIGIBLE:
            done = claim.record.start_relaunches if claim.record and claim.record.task_arn == task_arn else 0
            return None, done
        record = claim.record
        assert record is not None
        if claim.decision is RelaunchDecision.ALREADY_SENT:
            self._metrics.count(Metric.DUPLICATE_EVENTS)
            return CompletionResult(
                Disposition.DUPLICATE, "relaunch already sent", run.submission_id, outcome.code, phase=run.phase
            ), record.start_relaunches
        delay = policy.relaunch_delay(record.start_relaunches)
        assert record.routed_message is not None  # the store's condition requires it
        # The run keeps its slot while it relaunches: it stays slot-holding LAUNCH_FAILED (decision 096).
        self._queues.send(
            identity.challenge_id, relaunch_message(record.routed_message, run.phase), delay_seconds=delay
        )
        self._store.mark_relaunch_sent(run.run_id, task_arn=task_arn, delay_seconds=delay)
        self._metrics.count(Metric.START_FAILURES_RELAUNCHED)
        self._logger.warning(
            "scorer task failed to start (transient); relaunching",
            extra={"relaunch": record.start_relaunches, "delay_seconds": delay, "resent": claim.decision.value},
        )
        summary = f"relaunch {record.start_relaunches} of {policy.max_start_relaunches} in {delay} s"
        return CompletionResult(Disposition.RELAUNCHED, summary, run.submission_id, outcome.code, phase=run.phase), 0

    def _free_slot(self, record: LifecycleRecord) -> None:
        """Release the final run's slot and admit waiting runs env-wide; never raises (decision 096)."""
        if self._capacity is not None:
            self._capacity.free(record)

    def _report_recorded(
        self, run: RunKey, record: LifecycleRecord, outcome: Outcome, config: ChallengeConfig, correlation_id: str
    ) -> CompletionResult:
        """Claim the run's report and send it, unless the policy needs none or another delivery owns it."""
        if (
            record.state is SubmissionState.SUCCEEDED
            and record.report_status is ReportStatus.PENDING
            and not config.report_on_success
            and outcome.task_arn is not None  # only a task can have succeeded
            and self._store.settle_report_not_required(run.run_id, task_arn=outcome.task_arn)
        ):
            self._logger.info("success recorded without config: no report needed after all")
            return self._not_required(run, outcome)

        claim = self._store.claim_report(run.run_id, lease_seconds=self._policy.report_lease_seconds)
        if not claim.granted and claim.report_status is ReportStatus.REPORTING:
            # Another invocation holds a live report lease. If it is alive it finishes within the lease; if it
            # died (timeout, out of memory), this event *is* its retry, and acknowledging it would drop the
            # report for good. Raise: Lambda's async retry returns after the lease has expired.
            self._logger.info("report lease held by another invocation; deferring to a retry")
            raise ReportInProgressError(f"report for run {run.run_id} is being sent by another invocation")
        if not claim.granted:
            self._metrics.count(Metric.DUPLICATE_EVENTS)
            status = claim.report_status.value if claim.report_status else "none"
            self._logger.info("duplicate event: report not claimable", extra={"report_status": status})
            return CompletionResult(
                Disposition.DUPLICATE, f"report status {status}", run.submission_id, outcome.code, phase=run.phase
            )
        return self._report(RunReport(run, outcome, config, correlation_id), claim)

    def _reporter(self, config: ChallengeConfig) -> Reporter:
        if config.platform is Platform.V6:
            if self._summations_api is None:
                raise ReporterUnavailableError("v6 challenge, but REVIEW_API_URL is not configured")
            return SummationReporter(self._summations_api(), now=self._store.now)
        return ReviewReporter(self._review_api())

    def _report(self, run_report: RunReport, claim: ReportClaim) -> CompletionResult:
        run, outcome = run_report.run, run_report.outcome
        attempt = claim.attempt
        try:
            reporter = self._reporter(run_report.config)
            if attempt > 1 and claim.ambiguous_at is not None:
                # An earlier attempt may have sent (and crashed, or timed out, before recording it): the reporter
                # looks first, but only once a slow commit of that request can no longer land (decision 074).
                settled_at = claim.ambiguous_at + self._policy.report_slow_commit_seconds
                if self._store.now() < settled_at:
                    self._release(run.run_id, ambiguous_at=claim.ambiguous_at)
                    self._metrics.count(Metric.REPORT_FAILURES, reason="outcome_unsettled")
                    raise ReportOutcomeUnsettledError(
                        f"an earlier report of run {run.run_id} may still commit; look after {settled_at}"
                    )
            sent = reporter.report(run_report, retried=attempt > 1)
        except ReportOutcomeUnsettledError:
            raise
        except ReporterUnavailableError as error:
            # A configuration fault of the environment: recorded on the item with its reason (REJECTED, with a
            # metric), never dropped silently; retrying cannot help until the environment is fixed.
            summary = f"not reported: {error}"[:_MAX_RESPONSE_SUMMARY]
            self._store.mark_report_rejected(run.run_id, response_summary=summary)
            self._metrics.count(Metric.REPORT_FAILURES, reason="no_report_client")
            self._logger.error("no client for the challenge's platform", extra={"detail": str(error)})
            return CompletionResult(Disposition.REJECTED, summary, run.submission_id, outcome.code, phase=run.phase)
        except ApiRejectedError as error:
            summary = f"rejected {error.status_code}: {error.body}"[:_MAX_RESPONSE_SUMMARY]
            self._store.mark_report_rejected(run.run_id, response_summary=summary)
            self._metrics.count(Metric.REPORT_FAILURES, reason=f"rejected_{error.status_code}")
            self._logger.error("Topcoder rejected the report", extra={"status_code": error.status_code})
            return CompletionResult(Disposition.REJECTED, summary, run.submission_id, outcome.code, phase=run.phase)
        except Exception as error:
            # Transient (5xx, timeout, 401 after a refresh, or anything unexpected): free the claim at once
            # and fail the invocation, so the retried delivery can report. After an ambiguous write the store
            # remembers when, so the retry looks (after the slow-commit window) before it sends.
            ambiguous_at = int(self._store.now()) if isinstance(error, ApiOutcomeUnknownError) else None
            self._release(run.run_id, ambiguous_at=ambiguous_at or claim.ambiguous_at)
            self._metrics.count(Metric.REPORT_FAILURES, reason=_transient_reason(error))
            self._logger.warning("report failed; will be retried", extra={"error_type": type(error).__name__})
            raise
        self._finish(run.run_id, sent.summary if not sent.already_sent else f"{sent.summary} (attempt {attempt})")
        if sent.already_sent:
            self._logger.info("report already sent by an earlier attempt", extra={"report_id": sent.report_id})
            return CompletionResult(
                Disposition.ALREADY_REPORTED, sent.detail, run.submission_id, outcome.code, sent.report_id, run.phase
            )
        self._metrics.count(Metric.REPORTS_SENT)
        self._logger.info("report sent", extra={"report_id": sent.report_id, "report_detail": sent.detail})
        return CompletionResult(
            Disposition.REPORTED, sent.detail, run.submission_id, outcome.code, sent.report_id, run.phase
        )

    def _not_required(self, run: RunKey, outcome: Outcome) -> CompletionResult:
        why = (
            "cancelled: the v5 review API has no cancelled status (decision 095)"
            if outcome.code is OutcomeCode.CANCELLED
            else "scorer reports its own scores"
        )
        return CompletionResult(Disposition.NOT_REQUIRED, why, run.submission_id, outcome.code, phase=run.phase)

    def _finish(self, run_id: str, summary: str) -> None:
        if not self._store.mark_reported(run_id, response_summary=summary):
            # Our lease expired and another delivery took over; its own look-before-send covers it.
            self._logger.warning("report lease lost before it was marked reported")

    def _release(self, run_id: str, *, ambiguous_at: int | None = None) -> None:
        try:
            self._store.release_report(run_id, ambiguous_at=ambiguous_at)
        except Exception:  # the lease then simply expires; never mask the original error
            self._logger.exception("could not release the report claim")

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


def relaunch_message(routed_message: str, phase: ScoringPhase) -> str:
    """The stored routed message, narrowed to the one phase being relaunched (a multi-phase submission's message
    would otherwise ask for every onSubmission phase again). A message that no longer parses is sent as stored."""
    try:
        submission = RoutedSubmission.model_validate_json(routed_message)
    except ValidationError:
        return routed_message
    if submission.phase is phase:
        return routed_message
    return submission.model_copy(update={"phase": phase}).to_json()


def _unknown_outcome(record: LifecycleRecord) -> Outcome:
    """What a report-due event falls back to where the item lacks a field: a failure with the item's reason (a
    cancelled run: the cancel, with its reason)."""
    if record.state is SubmissionState.CANCELLED:
        return Outcome(
            code=OutcomeCode.CANCELLED,
            test_status=TestStatus.CANCELLED,
            reason=record.reason or SUPERSEDED_REASON,
            task_arn=record.task_arn,
        )
    return Outcome(
        code=OutcomeCode.FAILED,
        test_status=TestStatus.FAILED,
        reason=record.reason or "scorer run not started",
        task_arn=record.task_arn,
    )


DEAD_LETTERED_NOTE = "parked in the challenge DLQ; a redrive retries it"


def dead_lettered_outcome(record: LifecycleRecord) -> Outcome:
    """The terminal failure of a run that could not be started (decision 086): the launch failure's reason and
    where the run is now. No task ARN: no task of the run exists (one the item may name is an earlier attempt's)."""
    return Outcome(
        code=OutcomeCode.FAILED,
        test_status=TestStatus.FAILED,
        reason=f"{record.reason or 'the scorer task could not be started'}; {DEAD_LETTERED_NOTE}",
        task_arn=None,
    )


def recorded_outcome(record: LifecycleRecord, *, fallback: Outcome) -> Outcome:
    """The outcome as the status item recorded it (items recorded before testStatus existed: the event's)."""
    try:
        test_status = TestStatus(record.test_status) if record.test_status else fallback.test_status
    except ValueError:
        test_status = fallback.test_status
    return Outcome(
        code=OutcomeCode(record.state.value),
        test_status=test_status,
        reason=record.reason or fallback.reason,
        exit_code=record.exit_code,
        stop_code=record.stop_code or None,
        task_arn=record.task_arn or fallback.task_arn,
    )


def _transient_reason(error: Exception) -> str:
    if isinstance(error, ApiAuthError):
        return "auth"
    if isinstance(error, ApiOutcomeUnknownError):
        return "outcome_unknown"
    if isinstance(error, ApiTransientError):
        return "transient"
    return "error"
