"""The report protocol of one run (`ReportSender`): claim the report, look before sending on a retried attempt (only
once a slow commit can no longer land, decision 074), send it through the `Reporter` of the challenge's platform
(a v5 review or a v6 summation upsert, decision 086), then mark the result; a transient failure frees the claim and
fails the invocation so the retried delivery reports."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger

from completion_lambda.policy import CompletionPolicy
from completion_lambda.reporting import (
    Reporter,
    ReporterUnavailableError,
    ReviewApi,
    ReviewReporter,
    RunReport,
    SummationReporter,
    SummationsApi,
)
from completion_lambda.results import (
    CompletionResult,
    Disposition,
    ReportInProgressError,
    ReportOutcomeUnsettledError,
    not_required_result,
)
from mm_adapters.status_store import ReportClaim, StatusStore
from mm_adapters.topcoder.submission_api import (
    ApiAuthError,
    ApiOutcomeUnknownError,
    ApiRejectedError,
    ApiTransientError,
)
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome
from mm_contracts.models.phase import Platform, RunKey
from mm_contracts.ports import MetricsSink

_MAX_RESPONSE_SUMMARY = 500


class ReportSender:
    """Claims a run's report, sends it through the platform's `Reporter`, and marks the result; exactly once per run
    by the status store's conditional writes (decisions 074, 086)."""

    def __init__(
        self,
        *,
        store: StatusStore,
        review_api: Callable[[], ReviewApi],
        summations_api: Callable[[], SummationsApi] | None,
        policy: CompletionPolicy,
        metrics: MetricsSink,
        logger: Logger,
    ) -> None:
        self._store = store
        self._review_api = review_api
        self._summations_api = summations_api
        self._policy = policy
        self._metrics = metrics
        self._logger = logger

    def report_recorded(
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
            return not_required_result(run, outcome)

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

    def report_claimed(
        self, run: RunKey, outcome: Outcome, config: ChallengeConfig, correlation_id: str, claim: ReportClaim
    ) -> CompletionResult:
        """Send the report whose claim the outcome write took (decision 114); the rest of the protocol as above."""
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

    def _finish(self, run_id: str, summary: str) -> None:
        if not self._store.mark_reported(run_id, response_summary=summary):
            # Our lease expired and another delivery took over; its own look-before-send covers it.
            self._logger.warning("report lease lost before it was marked reported")

    def _release(self, run_id: str, *, ambiguous_at: int | None = None) -> None:
        try:
            self._store.release_report(run_id, ambiguous_at=ambiguous_at)
        except Exception:  # the lease then simply expires; never mask the original error
            self._logger.exception("could not release the report claim")


def _transient_reason(error: Exception) -> str:
    if isinstance(error, ApiAuthError):
        return "auth"
    if isinstance(error, ApiOutcomeUnknownError):
        return "outcome_unknown"
    if isinstance(error, ApiTransientError):
        return "transient"
    return "error"
