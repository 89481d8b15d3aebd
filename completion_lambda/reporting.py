"""What the pipeline reports for a finished run, and the port that sends it (decisions 037, 086).

One port, `Reporter`, two adapters chosen by the challenge's platform:
- v5 (`ReviewReporter`): Topcoder Submission API v5, `POST /reviews`, as the seed design does.
- v6 (`SummationReporter`): review-api-v6 review summations, one per (submission, phase), upserted: list the
  submission's summations of the phase (`metadata=true`), PATCH the one found, else POST.

The bodies are built by plain functions below, so a test can read exactly what a run would send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.outcome import Outcome, OutcomeCode
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.names import PROJECT
from mm_contracts.topcoder import (
    ReviewCreate,
    ReviewStatus,
    ReviewSummationRequest,
    ReviewSummationUpdate,
)

REPORTED_BY = PROJECT
# The platform's marker for "no score": a failed, crashed, timed-out, unstartable or skipped run.
FAILED_AGGREGATE_SCORE = -1
PENDING_AGGREGATE_SCORE = 0  # a success summation posted before the scorer's own (scores still to come)


@dataclass(frozen=True)
class RunReport:
    """Everything one report says: which run, its recorded outcome, and the challenge's reporting config."""

    run: RunKey
    outcome: Outcome
    config: ChallengeConfig
    correlation_id: str
    launched_at: datetime | None = None  # when the run's current task launched (the record's launchedAt)


@dataclass(frozen=True)
class SentReport:
    report_id: str
    summary: str  # the status item's reportResponse
    detail: str  # the result's reason: the review status, or how the summation was written
    already_sent: bool = False  # an earlier attempt's report was found: nothing was sent now


class Reporter(Protocol):
    """Sends one run's report. `retried`: an earlier attempt may have sent it (look before sending)."""

    def report(self, run_report: RunReport, *, retried: bool) -> SentReport: ...


class ReporterUnavailableError(RuntimeError):
    """The environment has no client for this challenge's platform (e.g. a v6 challenge without REVIEW_API_URL)."""


# ---------------------------------------------------------------------------------------------------- v5 reviews
class ReviewApi(Protocol):
    def create_review(self, review: ReviewCreate) -> dict[str, Any]: ...

    def find_reviews(self, *, submission_id: str, type_id: str | None = None) -> list[dict[str, Any]]: ...


def review_metadata(
    outcome: Outcome, config: ChallengeConfig, *, correlation_id: str, phase: ScoringPhase
) -> dict[str, Any]:
    return {
        "testType": phase.test_type,
        "testStatus": outcome.test_status.value,
        "reason": outcome.reason,
        "exitCode": outcome.exit_code,
        "stopCode": outcome.stop_code,
        "taskArn": outcome.task_arn,
        "correlationId": correlation_id,
        "outcome": outcome.code.value,
        "reportedBy": REPORTED_BY,
    }


def build_review(
    outcome: Outcome,
    config: ChallengeConfig,
    *,
    submission_id: str,
    correlation_id: str,
    phase: ScoringPhase | None = None,
) -> ReviewCreate:
    """Failure/timeout/cancel: a completed review with score 0. Success: a queued review.

    The spec's `Review` schema requires `score` for every POST, so the queued success review carries 0
    too; the scorer posts the real scores itself (decision 037). `testType` is the run's phase (a v5 challenge
    has one: `effective_phases[0]`).
    """
    if config.review_type_id is None or config.reviewer_id is None or config.score_card_id is None:
        # The v5 config validator requires all three; only a v6 config can lack them.
        raise ReporterUnavailableError("a v5 review needs reviewTypeId, reviewerId and scoreCardId")
    status = ReviewStatus.QUEUED if outcome.code is OutcomeCode.SUCCEEDED else ReviewStatus.COMPLETED
    return ReviewCreate(
        score=0,
        type_id=config.review_type_id,
        reviewer_id=config.reviewer_id,
        score_card_id=config.score_card_id,
        submission_id=submission_id,
        status=status,
        metadata=review_metadata(
            outcome, config, correlation_id=correlation_id, phase=phase or config.effective_phases[0].phase
        ),
    )


def is_review_of_task(review: dict[str, Any], task_arn: str | None) -> bool:
    """Whether an existing review (wire form) was posted by us for this very task (a run without one has none)."""
    metadata = review.get("metadata")
    return task_arn is not None and isinstance(metadata, dict) and metadata.get("taskArn") == task_arn


class ReviewReporter:
    """v5: one review per run, posted once; a retried attempt looks for the task's review first."""

    def __init__(self, api: ReviewApi) -> None:
        self._api = api

    def report(self, run_report: RunReport, *, retried: bool) -> SentReport:
        submission_id = run_report.run.submission_id
        if retried:
            existing = [
                review
                for review in self._api.find_reviews(submission_id=submission_id)
                if is_review_of_task(review, run_report.outcome.task_arn)
            ]
            if existing:
                review_id = str(existing[0].get("id", ""))
                return SentReport(review_id, f"review {review_id} already posted", "found earlier review", True)
        review = build_review(
            run_report.outcome,
            run_report.config,
            submission_id=submission_id,
            correlation_id=run_report.correlation_id,
            phase=run_report.run.phase,
        )
        created = self._api.create_review(review)
        review_id = str(created.get("id", ""))
        return SentReport(review_id, f"review {review_id} created ({review.status.value})", review.status.value)


# ------------------------------------------------------------------------------------------ v6 review summations
class SummationsApi(Protocol):
    """`mm_adapters.topcoder.review_summations.ReviewSummationsClient`."""

    def list_summations(self, *, submission_id: str, phase: ScoringPhase) -> list[dict[str, Any]]: ...

    def create_summation(self, body: ReviewSummationRequest) -> dict[str, Any]: ...

    def patch_summation(self, summation_id: str, body: ReviewSummationUpdate) -> dict[str, Any]: ...


def _test_process(phase: ScoringPhase) -> str:
    # The member screens know two processes: provisional scoring (EXAMPLE and PROVISIONAL) and system scoring.
    return "system" if phase is ScoringPhase.SYSTEM else "provisional"


def summation_metadata(run_report: RunReport) -> dict[str, Any]:
    """The run's fields in a summation's metadata (contract 4 of issue 10; decision 086)."""
    outcome, phase = run_report.outcome, run_report.run.phase
    metadata: dict[str, Any] = {
        "testType": phase.test_type,
        "testProcess": _test_process(phase),
        "testStatus": outcome.test_status.value,
        "testProgress": 1,
        "reason": outcome.reason,
        "exitCode": outcome.exit_code,
        "stopCode": outcome.stop_code,
        "taskArn": run_report.outcome.task_arn,
        "runId": run_report.run.run_id,
        "phase": phase.value,
        "correlationId": run_report.correlation_id,
        "outcome": outcome.code.value,
        "reportedBy": REPORTED_BY,
    }
    if outcome.code is OutcomeCode.TIMED_OUT:
        metadata["timed_out"] = True  # the platform's own key for a run over its time (snake case, as it writes it)
    return metadata


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def failed_summation(run_report: RunReport, *, now: float) -> dict[str, Any]:
    """Wire fields of the terminal summation of a run that produced no score (failed, cancelled, timed out,
    unstartable or skipped): what review-api-v6 shows as the phase's final state."""
    body: dict[str, Any] = {
        "submissionId": run_report.run.submission_id,
        "aggregateScore": FAILED_AGGREGATE_SCORE,
        "isPassing": False,
        run_report.run.phase.summation_flag: True,
        "reviewedDate": _iso(now),
        "metadata": summation_metadata(run_report),
    }
    if run_report.config.scorecard_id:
        body["scorecardId"] = run_report.config.scorecard_id
    return body


def pending_success_summation(run_report: RunReport) -> dict[str, Any]:
    """A success with no scorer summation yet: visible as done, scores to come (never a score we invented)."""
    body: dict[str, Any] = {
        "submissionId": run_report.run.submission_id,
        "aggregateScore": PENDING_AGGREGATE_SCORE,
        "isPassing": False,
        run_report.run.phase.summation_flag: True,
        "metadata": {**summation_metadata(run_report), "scoresPending": True},
    }
    if run_report.config.scorecard_id:
        body["scorecardId"] = run_report.config.scorecard_id
    return body


def success_metadata_patch(run_report: RunReport, existing: dict[str, Any]) -> dict[str, Any]:
    """PATCH body for the scorer's own summation after a success: its metadata plus the run's fields, and
    nothing else (the scorer owns aggregateScore and isPassing)."""
    current = existing.get("metadata")
    merged = {**(current if isinstance(current, dict) else {}), **summation_metadata(run_report)}
    merged.pop("scoresPending", None)
    return {"metadata": merged}


def _metadata(summation: dict[str, Any]) -> dict[str, Any]:
    metadata = summation.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def is_summation_of_phase(summation: dict[str, Any], phase: ScoringPhase) -> bool:
    """The API filters by phase already; checked again, as the platform's own processor does."""
    flag = summation.get(phase.summation_flag)
    if flag is not None:
        return flag is True
    return _metadata(summation).get("testType") == phase.test_type


def is_summation_of_run(summation: dict[str, Any], run_report: RunReport) -> bool:
    """Whether this summation already says what this report would: ours, for this run, task and status."""
    metadata = _metadata(summation)
    return (
        metadata.get("reportedBy") == REPORTED_BY
        and metadata.get("runId") == run_report.run.run_id
        and metadata.get("taskArn") == run_report.outcome.task_arn
        and metadata.get("testStatus") == run_report.outcome.test_status.value
    )


def _created(summation: dict[str, Any]) -> datetime | None:
    """A summation's `createdAt` (review-api-v6), as an aware datetime; None when absent or unreadable."""
    value = summation.get("createdAt")
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _created_key(summation: dict[str, Any]) -> str:
    return str(summation.get("createdAt") or "")


def _posted_since_launch(summation: dict[str, Any], launched_at: datetime | None) -> bool:
    created = _created(summation)
    if launched_at is None or created is None:
        return True
    launched = launched_at if launched_at.tzinfo is not None else launched_at.replace(tzinfo=UTC)
    return created >= launched


def upsert_target(summations: list[dict[str, Any]], run_report: RunReport) -> dict[str, Any] | None:
    """The summation to update (decision 106), in this order:
    (a) one whose metadata names the current task (this run's report, written before by an earlier attempt);
    (b) the newest summation of the phase the scorer posted (no metadata of ours), created after the current task
        launched when both times are known: a rerun's scorer posts its own score, and that is the one to describe;
    (c) this run's own earlier summation (a rerun without a summation of its own: it updates the run's, so one
        summation per run stays).
    A summation naming another task of ours is never chosen while (a) or (b) has one."""
    candidates = [s for s in summations if isinstance(s.get("id"), str) and s["id"]]
    task = run_report.outcome.task_arn
    current = [s for s in candidates if task is not None and _metadata(s).get("taskArn") == task]
    if current:
        return sorted(current, key=_created_key)[0]
    scorers = [
        s
        for s in candidates
        if _metadata(s).get("reportedBy") != REPORTED_BY and _posted_since_launch(s, run_report.launched_at)
    ]
    if scorers:
        return sorted(scorers, key=_created_key)[-1]
    own = [s for s in candidates if _metadata(s).get("runId") == run_report.run.run_id]
    return sorted(own, key=_created_key)[-1] if own else None


def is_earlier_task_summation(summation: dict[str, Any], run_report: RunReport) -> bool:
    """Ours, for this run, but written for another (an earlier) task: its score is not this task's."""
    metadata = _metadata(summation)
    return (
        metadata.get("reportedBy") == REPORTED_BY
        and metadata.get("runId") == run_report.run.run_id
        and metadata.get("taskArn") != run_report.outcome.task_arn
    )


class SummationReporter:
    """v6: the phase's summation upserted. The list is also the look before sending on every attempt."""

    def __init__(self, api: SummationsApi, *, now: Callable[[], float]) -> None:
        self._api = api
        self._now = now

    def report(self, run_report: RunReport, *, retried: bool) -> SentReport:
        run = run_report.run
        summations = [
            s
            for s in self._api.list_summations(submission_id=run.submission_id, phase=run.phase)
            if str(s.get("submissionId")) == run.submission_id and is_summation_of_phase(s, run.phase)
        ]
        done = next((s for s in summations if is_summation_of_run(s, run_report)), None)
        if done is not None:
            summation_id = str(done.get("id", ""))
            return SentReport(
                summation_id, f"summation {summation_id} already written", "found earlier summation", True
            )
        status = run_report.outcome.test_status.value
        target = upsert_target(summations, run_report)
        succeeded = run_report.outcome.code is OutcomeCode.SUCCEEDED
        if target is None:
            body = pending_success_summation(run_report) if succeeded else failed_summation(run_report, now=self._now())
            created = self._api.create_summation(ReviewSummationRequest.model_validate(body))
            summation_id = str(created.get("id", ""))
            return SentReport(summation_id, f"summation {summation_id} created ({status})", "summation_created")
        summation_id = str(target["id"])
        if succeeded and is_earlier_task_summation(target, run_report):
            # A rerun succeeded, its scorer posted nothing (yet): the earlier task's score must not stand under
            # this task's metadata, so the run's summation says "done, scores to come", as a new one would.
            update = {k: v for k, v in pending_success_summation(run_report).items() if k != "submissionId"}
        elif succeeded:
            update = success_metadata_patch(run_report, target)
        else:
            update = {k: v for k, v in failed_summation(run_report, now=self._now()).items() if k != "submissionId"}
        self._api.patch_summation(summation_id, ReviewSummationUpdate.model_validate(update))
        return SentReport(summation_id, f"summation {summation_id} updated ({status})", "summation_updated")
