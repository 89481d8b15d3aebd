"""Completion logic: a STOPPED event in, one lifecycle record and at most one review out.

Plain class with injected ports (status store, config source, review API, ECS and SQS clients, metrics), so
the handler, the tests and the local pipeline all drive the same code. Exactly-once reporting rests on the
status store's conditional writes (see `mm_shared.status_store`); this module only follows the protocol:
validate the task's identity, record the outcome on the item that tracks the task (never create one), claim
the report, look before posting on a retried attempt (only once a slow commit can no longer land), then mark
the result. A transient start failure is relaunched a bounded number of times instead (decision 072).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from completion_lambda.observability import MetricsSink
from completion_lambda.outcome import decide_outcome, failure_reason, start_failure_is_transient
from completion_lambda.reporting import build_review, is_review_of_task
from mm_shared.challenge_config import ChallengeConfigError, ConfigErrorReason
from mm_shared.constants import CHALLENGE_ID_ATTRIBUTE, started_by_prefix
from mm_shared.models.bus import canonical_uuid
from mm_shared.models.challenge import ChallengeConfig
from mm_shared.models.ecs_event import EcsTaskStateChangeEvent, StopCode
from mm_shared.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_shared.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_shared.models.task import TaskEnv, TaskTag
from mm_shared.observability import Metric
from mm_shared.settings import CompletionSettings
from mm_shared.status_store import OutcomeDecision, RelaunchDecision, ReportClaim, StatusStore
from mm_shared.topcoder.models import ReviewCreate
from mm_shared.topcoder.submission_api import (
    ApiAuthError,
    ApiOutcomeUnknownError,
    ApiRejectedError,
    ApiTransientError,
)

STOPPED = "STOPPED"
_MAX_RESPONSE_SUMMARY = 500
SQS_MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
# What the pipeline itself writes: a RunTask launch attempt, a task ARN, a correlation id (printable ASCII).
_LAUNCH_ATTEMPT = re.compile(r"^[1-9][0-9]{0,8}$")
_TASK_ARN = re.compile(r"^arn:[a-z-]{1,16}:ecs:[a-z0-9-]{1,32}:[0-9]{12}:task/[A-Za-z0-9_/-]{1,300}$")
_CORRELATION_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


class ReviewApi(Protocol):
    def create_review(self, review: ReviewCreate) -> dict[str, Any]: ...

    def find_reviews(self, *, submission_id: str, type_id: str | None = None) -> list[dict[str, Any]]: ...


class ConfigSource(Protocol):
    def get(self, challenge_id: str, *, force_refresh: bool = False) -> ChallengeConfig: ...


class IgnoreReason(StrEnum):
    """Why an event was not acted on (the `Reason` dimension of EventsIgnored)."""

    NOT_TASK_STATE_CHANGE = "not_task_state_change"
    NOT_STOPPED = "not_stopped"
    FOREIGN_TASK = "foreign_task"  # startedBy is not ours
    TASK_ARN_INVALID = "task_arn_invalid"
    SUBMISSION_UNIDENTIFIED = "submission_unidentified"  # neither overrides nor tags name the submission
    SUBMISSION_ID_INVALID = "submission_id_invalid"  # not a canonical v5 UUID (decision 076)
    CHALLENGE_ID_INVALID = "challenge_id_invalid"
    LAUNCH_ATTEMPT_INVALID = "launch_attempt_invalid"  # MM_LAUNCH_ATTEMPT present but not a positive integer
    UNKNOWN_SUBMISSION = "unknown_submission"  # no status item: the pipeline never launched it
    OTHER_TASK = "other_task"  # the status item tracks a different task (stale event)
    STALE_TASK = "stale_task"  # the item is LAUNCHING on a newer attempt than the stopped task's


class Disposition(StrEnum):
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    NOT_REQUIRED = "not_required"  # success without a configured success report
    REPORTED = "reported"
    ALREADY_REPORTED = "already_reported"  # a retried attempt found its earlier review
    REJECTED = "rejected"
    RELAUNCHED = "relaunched"  # a transient start failure sent back to the challenge queue (decision 072)


@dataclass(frozen=True)
class CompletionResult:
    disposition: Disposition
    reason: str = ""
    submission_id: str | None = None
    outcome: OutcomeCode | None = None
    review_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "disposition": self.disposition.value,
            "reason": self.reason,
            "submissionId": self.submission_id,
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
    """An earlier POST's outcome is unknown and a slow commit may still land: look later, never post now."""


_OUTCOME_METRICS = {
    OutcomeCode.SUCCEEDED: Metric.TASKS_SUCCEEDED,
    OutcomeCode.FAILED: Metric.TASKS_FAILED,
    OutcomeCode.TIMED_OUT: Metric.TASKS_TIMED_OUT,
}


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
        report_lease_seconds: int | None = None,
    ) -> None:
        self._prefix = started_by_prefix(environment_name)
        self._store = store
        self._config = config_source
        self._review_api = review_api  # built on first use: most events never need the API, ECS or SQS
        self._ecs = ecs
        self._sqs = sqs
        self._metrics = metrics
        policy = policy or CompletionPolicy()
        if report_lease_seconds is not None:
            policy = CompletionPolicy(**{**policy.__dict__, "report_lease_seconds": report_lease_seconds})
        self._policy = policy
        self._logger = logger
        self._queue_urls: dict[str, str] = {}

    # ------------------------------------------------------------------ entry point
    def process(self, event: EventBridgeModel) -> CompletionResult:
        """`event` is an `EcsTaskStateChangeEvent` for ECS task state changes (see `handler.parse_event`)."""
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
        outcome = decide_outcome(detail, scorer_container_name=config.scorer_container_name if config else None)
        relaunches_done = 0
        if outcome.stop_code == StopCode.TASK_FAILED_TO_START and start_failure_is_transient(detail.stopped_reason):
            relaunched, relaunches_done = self._relaunch(identity, outcome)
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
        recorded = self._store.record_outcome(
            identity.submission_id,
            identity.challenge_id,
            outcome,
            report_required=report_required,
            launch_attempt=identity.launch_attempt,
            report_check_seconds=self._policy.report_check_delay_seconds,
            stopped_at=detail.stopped_at,
        )
        if recorded.decision is OutcomeDecision.UNKNOWN_SUBMISSION or recorded.record is None:
            return self._ignore(
                IgnoreReason.UNKNOWN_SUBMISSION, "no status item: never launched", submission_id=identity.submission_id
            )
        record = recorded.record
        if recorded.decision is OutcomeDecision.STALE_TASK:
            return self._ignore(
                IgnoreReason.STALE_TASK,
                f"task of attempt {identity.launch_attempt}; item LAUNCHING on attempt {record.launch_attempt}",
                submission_id=identity.submission_id,
            )
        if recorded.decision is OutcomeDecision.OTHER_TASK:
            return self._ignore(
                IgnoreReason.OTHER_TASK,
                f"status item tracks task {record.task_arn} in state {record.state.value}",
                submission_id=identity.submission_id,
            )
        if recorded.decision is OutcomeDecision.RECORDED:
            self._count_outcome(outcome)
            self._logger.info(
                "outcome recorded",
                extra={"outcome": outcome.code.value, "exit_code": outcome.exit_code, "stop_code": outcome.stop_code},
            )
            if record.report_status is ReportStatus.NOT_REQUIRED:
                return CompletionResult(
                    Disposition.NOT_REQUIRED, "scorer reports its own scores", identity.submission_id, outcome.code
                )
        else:
            # A duplicate, a retry or the sweeper's re-drive: report what was recorded, not this event's reading.
            outcome = recorded_outcome(record, fallback=outcome)

        if config is None:
            raise ReportDeferredError(f"no usable config for challenge {identity.challenge_id}; report left PENDING")
        if (
            record.state is SubmissionState.SUCCEEDED
            and record.report_status is ReportStatus.PENDING
            and not config.report_on_success
            and self._store.settle_report_not_required(identity.submission_id, task_arn=outcome.task_arn)
        ):
            self._logger.info("success recorded without config: no report needed after all")
            return CompletionResult(
                Disposition.NOT_REQUIRED, "scorer reports its own scores", identity.submission_id, outcome.code
            )

        claim = self._store.claim_report(identity.submission_id, lease_seconds=self._policy.report_lease_seconds)
        if not claim.granted and claim.report_status is ReportStatus.REPORTING:
            # Another invocation holds a live report lease. If it is alive it finishes within the lease; if it
            # died (timeout, out of memory), this event *is* its retry, and acknowledging it would drop the
            # report for good. Raise: Lambda's async retry returns after the lease has expired.
            self._logger.info("report lease held by another invocation; deferring to a retry")
            raise ReportInProgressError(
                f"report for submission {identity.submission_id} is being sent by another invocation"
            )
        if not claim.granted:
            self._metrics.count(Metric.DUPLICATE_EVENTS)
            status = claim.report_status.value if claim.report_status else "none"
            self._logger.info("duplicate STOPPED event: report not claimable", extra={"report_status": status})
            return CompletionResult(
                Disposition.DUPLICATE, f"report status {status}", identity.submission_id, outcome.code
            )
        correlation_id = identity.correlation_id or record.correlation_id or identity.submission_id
        return self._report(identity.submission_id, correlation_id, outcome, config, claim)

    # ------------------------------------------------------------------ steps
    def _identify(self, event: EcsTaskStateChangeEvent) -> TaskIdentity | IgnoreReason:
        """Who the task is, from the values the pipeline set on it, each validated (decision 076)."""
        detail = event.detail
        env = detail.environment()
        raw_submission = env.get(TaskEnv.SUBMISSION_ID.value)
        raw_challenge = env.get(TaskEnv.CHALLENGE_ID.value) or (detail.started_by or "")[len(self._prefix) :]
        source = "overrides"
        if not raw_submission:
            # Events carry no tags; only a task started without our overrides lands here.
            tags = self._task_tags(detail.cluster_arn, detail.task_arn)
            raw_submission = tags.get(TaskTag.SUBMISSION_ID.value)
            raw_challenge = raw_challenge or tags.get(TaskTag.CHALLENGE_ID.value, "")
            source = "tags"
        if not raw_submission:
            return IgnoreReason.SUBMISSION_UNIDENTIFIED
        submission_id = canonical_uuid(raw_submission)
        if submission_id is None:
            return IgnoreReason.SUBMISSION_ID_INVALID
        challenge_id = canonical_uuid(raw_challenge) if raw_challenge else None
        if challenge_id is None:
            return IgnoreReason.CHALLENGE_ID_INVALID
        raw_attempt = env.get(TaskEnv.LAUNCH_ATTEMPT.value)
        launch_attempt: int | None = None
        if raw_attempt is not None:
            if not _LAUNCH_ATTEMPT.match(raw_attempt):
                return IgnoreReason.LAUNCH_ATTEMPT_INVALID
            launch_attempt = int(raw_attempt)
        raw_correlation = env.get(TaskEnv.CORRELATION_ID.value, "")
        correlation_id = raw_correlation if _CORRELATION_ID.match(raw_correlation) else None
        return TaskIdentity(submission_id, challenge_id, correlation_id, source, launch_attempt)

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

    def _relaunch(self, identity: TaskIdentity, outcome: Outcome) -> tuple[CompletionResult | None, int]:
        """A transient start failure: back to the challenge queue, bounded (decision 072).

        Returns (result, relaunches already done). A None result means "not relaunched: record it as usual".
        """
        policy = self._policy
        if policy.challenge_queue_name_template is None or self._sqs is None:
            return None, 0
        claim = self._store.mark_start_failed_for_relaunch(
            identity.submission_id,
            identity.challenge_id,
            task_arn=outcome.task_arn,
            launch_attempt=identity.launch_attempt,
            reason=outcome.reason,
            max_relaunches=policy.max_start_relaunches,
            recheck_seconds=policy.relaunch_check_seconds,
        )
        if claim.decision is RelaunchDecision.NOT_ELIGIBLE:
            done = claim.record.start_relaunches if claim.record and claim.record.task_arn == outcome.task_arn else 0
            return None, done
        record = claim.record
        assert record is not None
        if claim.decision is RelaunchDecision.ALREADY_SENT:
            self._metrics.count(Metric.DUPLICATE_EVENTS)
            return CompletionResult(
                Disposition.DUPLICATE, "relaunch already sent", identity.submission_id, outcome.code
            ), record.start_relaunches
        delay = policy.relaunch_delay(record.start_relaunches)
        assert record.routed_message is not None  # the store's condition requires it
        self._sqs().send_message(
            QueueUrl=self._queue_url(identity.challenge_id),
            MessageBody=record.routed_message,
            DelaySeconds=delay,
            MessageAttributes={CHALLENGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": identity.challenge_id}},
        )
        self._store.mark_relaunch_sent(identity.submission_id, task_arn=outcome.task_arn, delay_seconds=delay)
        self._metrics.count(Metric.START_FAILURES_RELAUNCHED)
        self._logger.warning(
            "scorer task failed to start (transient); relaunching",
            extra={"relaunch": record.start_relaunches, "delay_seconds": delay, "resent": claim.decision.value},
        )
        summary = f"relaunch {record.start_relaunches} of {policy.max_start_relaunches} in {delay} s"
        return CompletionResult(Disposition.RELAUNCHED, summary, identity.submission_id, outcome.code), 0

    def _queue_url(self, challenge_id: str) -> str:
        url = self._queue_urls.get(challenge_id)
        if url is None:
            template = self._policy.challenge_queue_name_template
            assert template is not None
            assert self._sqs is not None
            url = str(self._sqs().get_queue_url(QueueName=template.format(challenge_id=challenge_id))["QueueUrl"])
            self._queue_urls[challenge_id] = url
        return url

    def _report(
        self, submission_id: str, correlation_id: str, outcome: Outcome, config: ChallengeConfig, claim: ReportClaim
    ) -> CompletionResult:
        attempt = claim.attempt
        try:
            api = self._review_api()
            if attempt > 1:
                # An earlier attempt may have posted (and crashed, or timed out, before recording it): look first,
                # but only once a slow commit of that POST can no longer land (decision 074).
                if claim.ambiguous_at is not None:
                    settled_at = claim.ambiguous_at + self._policy.report_slow_commit_seconds
                    if self._store.now() < settled_at:
                        self._release(submission_id, ambiguous_at=claim.ambiguous_at)
                        self._metrics.count(Metric.REPORT_FAILURES, reason="outcome_unsettled")
                        raise ReportOutcomeUnsettledError(
                            f"an earlier POST for submission {submission_id} may still commit; look after {settled_at}"
                        )
                existing = [
                    review
                    for review in api.find_reviews(submission_id=submission_id)
                    if is_review_of_task(review, outcome.task_arn)
                ]
                if existing:
                    review_id = str(existing[0].get("id", ""))
                    self._finish(submission_id, f"review {review_id} already posted (found on attempt {attempt})")
                    self._logger.info("review already posted by an earlier attempt", extra={"review_id": review_id})
                    return CompletionResult(
                        Disposition.ALREADY_REPORTED, "found earlier review", submission_id, outcome.code, review_id
                    )
            review = build_review(outcome, config, submission_id=submission_id, correlation_id=correlation_id)
            created = api.create_review(review)
        except ReportOutcomeUnsettledError:
            raise
        except ApiRejectedError as error:
            summary = f"rejected {error.status_code}: {error.body}"[:_MAX_RESPONSE_SUMMARY]
            self._store.mark_report_rejected(submission_id, response_summary=summary)
            self._metrics.count(Metric.REPORT_FAILURES, reason=f"rejected_{error.status_code}")
            self._logger.error("Submission API rejected the review", extra={"status_code": error.status_code})
            return CompletionResult(Disposition.REJECTED, summary, submission_id, outcome.code)
        except Exception as error:
            # Transient (5xx, timeout, 401 after a refresh, or anything unexpected): free the claim at once
            # and fail the invocation, so the retried delivery can report. After an ambiguous POST the store
            # remembers when, so the retry looks (after the slow-commit window) before it posts.
            ambiguous_at = int(self._store.now()) if isinstance(error, ApiOutcomeUnknownError) else None
            self._release(submission_id, ambiguous_at=ambiguous_at or claim.ambiguous_at)
            self._metrics.count(Metric.REPORT_FAILURES, reason=_transient_reason(error))
            self._logger.warning("report failed; will be retried", extra={"error_type": type(error).__name__})
            raise
        review_id = str(created.get("id", ""))
        self._finish(submission_id, f"review {review_id} created ({review.status.value})")
        self._metrics.count(Metric.REPORTS_SENT)
        self._logger.info("review posted", extra={"review_id": review_id, "review_status": review.status.value})
        return CompletionResult(Disposition.REPORTED, review.status.value, submission_id, outcome.code, review_id)

    def _finish(self, submission_id: str, summary: str) -> None:
        if not self._store.mark_reported(submission_id, response_summary=summary):
            # Our lease expired and another delivery took over; its own look-before-post covers it.
            self._logger.warning("report lease lost before it was marked reported")

    def _release(self, submission_id: str, *, ambiguous_at: int | None = None) -> None:
        try:
            self._store.release_report(submission_id, ambiguous_at=ambiguous_at)
        except Exception:  # the lease then simply expires; never mask the original error
            self._logger.exception("could not release the report claim")

    def _count_outcome(self, outcome: Outcome) -> None:
        metric = _OUTCOME_METRICS[outcome.code]
        self._metrics.count(metric, reason=failure_reason(outcome) if outcome.code is OutcomeCode.FAILED else None)

    def _ignore(self, reason: IgnoreReason, detail: str, *, submission_id: str | None = None) -> CompletionResult:
        self._metrics.count(Metric.EVENTS_IGNORED, reason=reason.value)
        self._logger.info("event ignored", extra={"ignore_reason": reason.value, "detail": detail})
        return CompletionResult(Disposition.IGNORED, reason.value, submission_id)


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
