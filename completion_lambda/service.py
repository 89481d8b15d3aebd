"""Completion logic: a STOPPED event in, one lifecycle record and at most one review out.

Plain class with injected ports (status store, config source, review API, ECS client, metrics), so the
handler, the tests and the local pipeline all drive the same code. Exactly-once reporting rests on the
status store's conditional writes (see `mm_shared.status_store`); this module only follows the protocol:
record the outcome, claim the report, look before posting on a retried attempt, then mark the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from completion_lambda.observability import MetricsSink
from completion_lambda.outcome import decide_outcome, failure_reason
from completion_lambda.reporting import build_review, is_review_of_task
from mm_shared.challenge_config import ChallengeConfigError, ConfigErrorReason
from mm_shared.constants import started_by_prefix
from mm_shared.models.challenge import ChallengeConfig
from mm_shared.models.ecs_event import EcsTaskStateChangeEvent
from mm_shared.models.lifecycle import ReportStatus
from mm_shared.models.outcome import Outcome, OutcomeCode
from mm_shared.models.task import TaskEnv, TaskTag
from mm_shared.observability import Metric
from mm_shared.status_store import OutcomeDecision, StatusStore
from mm_shared.topcoder.models import ReviewCreate
from mm_shared.topcoder.submission_api import ApiAuthError, ApiRejectedError, ApiTransientError

STOPPED = "STOPPED"
_MAX_RESPONSE_SUMMARY = 500


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
    SUBMISSION_UNIDENTIFIED = "submission_unidentified"  # neither overrides nor tags name the submission
    OTHER_TASK = "other_task"  # the status item tracks a different task (stale event)


class Disposition(StrEnum):
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    NOT_REQUIRED = "not_required"  # success without a configured success report
    REPORTED = "reported"
    ALREADY_REPORTED = "already_reported"  # a retried attempt found its earlier review
    REJECTED = "rejected"


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
    correlation_id: str
    source: str  # "overrides" or "tags"


class ReportDeferredError(RuntimeError):
    """The outcome is recorded but cannot be reported yet (e.g. no usable challenge config).

    Raised so the event is retried and finally kept in the rule target's DLQ; the report stays PENDING,
    so a redrive after the cause is fixed reports it.
    """


class ReportInProgressError(RuntimeError):
    """Another invocation holds the report lease: retry later (its holder may have died mid-report)."""


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
        report_lease_seconds: int,
        logger: Logger,
    ) -> None:
        self._prefix = started_by_prefix(environment_name)
        self._store = store
        self._config = config_source
        self._review_api = review_api  # built on first use: most events never need the API or ECS
        self._ecs = ecs
        self._metrics = metrics
        self._lease_seconds = report_lease_seconds
        self._logger = logger

    # ------------------------------------------------------------------ entry point
    def process(self, event: EventBridgeModel) -> CompletionResult:
        """`event` is an `EcsTaskStateChangeEvent` for ECS task state changes (see `handler.parse_event`)."""
        if not isinstance(event, EcsTaskStateChangeEvent):
            return self._ignore(IgnoreReason.NOT_TASK_STATE_CHANGE, f"{event.source} / {event.detail_type}")
        detail = event.detail
        self._logger.append_keys(task_arn=detail.task_arn)
        if detail.last_status != STOPPED:
            return self._ignore(IgnoreReason.NOT_STOPPED, f"lastStatus {detail.last_status}")
        if not (detail.started_by or "").startswith(self._prefix):
            return self._ignore(IgnoreReason.FOREIGN_TASK, f"startedBy {detail.started_by!r}")

        identity = self._identify(event)
        if identity is None:
            self._logger.error("STOPPED event of our task names no submission (overrides and tags)")
            return self._ignore(IgnoreReason.SUBMISSION_UNIDENTIFIED, "no submission id in overrides or tags")
        self._logger.set_correlation_id(identity.submission_id)
        self._logger.append_keys(challenge_id=identity.challenge_id, kafka_correlation_id=identity.correlation_id)

        config = self._load_config(identity.challenge_id)
        outcome = decide_outcome(detail, scorer_container_name=config.scorer_container_name if config else None)
        report_required = outcome.code is not OutcomeCode.SUCCEEDED or bool(config and config.report_on_success)
        recorded = self._store.record_outcome(
            identity.submission_id,
            identity.challenge_id,
            outcome,
            report_required=report_required,
            stopped_at=detail.stopped_at,
        )
        if recorded.decision is OutcomeDecision.OTHER_TASK:
            return self._ignore(
                IgnoreReason.OTHER_TASK,
                f"status item tracks task {recorded.record.task_arn} in state {recorded.record.state.value}",
                submission_id=identity.submission_id,
            )
        if recorded.decision is OutcomeDecision.RECORDED:
            self._count_outcome(outcome)
            self._logger.info(
                "outcome recorded",
                extra={"outcome": outcome.code.value, "exit_code": outcome.exit_code, "stop_code": outcome.stop_code},
            )
            if recorded.record.report_status is ReportStatus.NOT_REQUIRED:
                return CompletionResult(
                    Disposition.NOT_REQUIRED, "scorer reports its own scores", identity.submission_id, outcome.code
                )

        if config is None:
            raise ReportDeferredError(f"no usable config for challenge {identity.challenge_id}; report left PENDING")

        claim = self._store.claim_report(identity.submission_id, lease_seconds=self._lease_seconds)
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
        return self._report(identity, outcome, config, attempt=claim.attempt)

    # ------------------------------------------------------------------ steps
    def _identify(self, event: EcsTaskStateChangeEvent) -> TaskIdentity | None:
        detail = event.detail
        env = detail.environment()
        submission_id = env.get(TaskEnv.SUBMISSION_ID.value)
        challenge_id = env.get(TaskEnv.CHALLENGE_ID.value) or (detail.started_by or "")[len(self._prefix) :]
        source = "overrides"
        if not submission_id:
            # Events carry no tags; only a task started without our overrides lands here.
            tags = self._task_tags(detail.cluster_arn, detail.task_arn)
            submission_id = tags.get(TaskTag.SUBMISSION_ID.value)
            challenge_id = challenge_id or tags.get(TaskTag.CHALLENGE_ID.value, "")
            source = "tags"
        if not submission_id or not challenge_id:
            return None
        correlation_id = env.get(TaskEnv.CORRELATION_ID.value) or submission_id
        return TaskIdentity(submission_id, challenge_id, correlation_id, source)

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

    def _report(
        self, identity: TaskIdentity, outcome: Outcome, config: ChallengeConfig, *, attempt: int
    ) -> CompletionResult:
        submission_id = identity.submission_id
        try:
            api = self._review_api()
            if attempt > 1:
                # An earlier attempt may have posted and crashed before recording it: look first.
                existing = [
                    review
                    for review in api.find_reviews(submission_id=submission_id, type_id=config.review_type_id)
                    if is_review_of_task(review, outcome.task_arn)
                ]
                if existing:
                    review_id = str(existing[0].get("id", ""))
                    self._finish(submission_id, f"review {review_id} already posted (found on attempt {attempt})")
                    self._logger.info("review already posted by an earlier attempt", extra={"review_id": review_id})
                    return CompletionResult(
                        Disposition.ALREADY_REPORTED, "found earlier review", submission_id, outcome.code, review_id
                    )
            review = build_review(outcome, config, submission_id=submission_id, correlation_id=identity.correlation_id)
            created = api.create_review(review)
        except ApiRejectedError as error:
            summary = f"rejected {error.status_code}: {error.body}"[:_MAX_RESPONSE_SUMMARY]
            self._store.mark_report_rejected(submission_id, response_summary=summary)
            self._metrics.count(Metric.REPORT_FAILURES, reason=f"rejected_{error.status_code}")
            self._logger.error("Submission API rejected the review", extra={"status_code": error.status_code})
            return CompletionResult(Disposition.REJECTED, summary, submission_id, outcome.code)
        except Exception as error:
            # Transient (5xx, timeout, 401 after a refresh, or anything unexpected): free the claim at once
            # and fail the invocation, so the retried delivery can report.
            self._release(submission_id)
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

    def _release(self, submission_id: str) -> None:
        try:
            self._store.release_report(submission_id)
        except Exception:  # the lease then simply expires; never mask the original error
            self._logger.exception("could not release the report claim")

    def _count_outcome(self, outcome: Outcome) -> None:
        metric = _OUTCOME_METRICS[outcome.code]
        self._metrics.count(metric, reason=failure_reason(outcome) if outcome.code is OutcomeCode.FAILED else None)

    def _ignore(self, reason: IgnoreReason, detail: str, *, submission_id: str | None = None) -> CompletionResult:
        self._metrics.count(Metric.EVENTS_IGNORED, reason=reason.value)
        self._logger.info("event ignored", extra={"ignore_reason": reason.value, "detail": detail})
        return CompletionResult(Disposition.IGNORED, reason.value, submission_id)


def _transient_reason(error: Exception) -> str:
    if isinstance(error, ApiAuthError):
        return "auth"
    if isinstance(error, ApiTransientError):
        return "transient"
    return "error"
