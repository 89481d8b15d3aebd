"""The review the pipeline posts for a finished run (Topcoder Submission API v5, `POST /reviews`)."""

from __future__ import annotations

from typing import Any

from mm_shared.constants import PROJECT
from mm_shared.models.challenge import ChallengeConfig
from mm_shared.models.outcome import Outcome, OutcomeCode
from mm_shared.topcoder.models import ReviewCreate, ReviewStatus

REPORTED_BY = PROJECT


def review_metadata(outcome: Outcome, config: ChallengeConfig, *, correlation_id: str) -> dict[str, Any]:
    return {
        "testType": config.test_type,
        "testStatus": outcome.test_status.value,
        "reason": outcome.reason,
        "exitCode": outcome.exit_code,
        "stopCode": outcome.stop_code,
        "taskArn": outcome.task_arn,
        "correlationId": correlation_id,
        "outcome": outcome.code.value,
        "reportedBy": REPORTED_BY,
    }


def build_review(outcome: Outcome, config: ChallengeConfig, *, submission_id: str, correlation_id: str) -> ReviewCreate:
    """Failure/timeout/cancel: a completed review with score 0. Success: a queued review.

    The spec's `Review` schema requires `score` for every POST, so the queued success review carries 0
    too; the scorer posts the real scores itself (decision 037).
    """
    status = ReviewStatus.QUEUED if outcome.code is OutcomeCode.SUCCEEDED else ReviewStatus.COMPLETED
    return ReviewCreate(
        score=0,
        type_id=config.review_type_id,
        reviewer_id=config.reviewer_id,
        score_card_id=config.score_card_id,
        submission_id=submission_id,
        status=status,
        metadata=review_metadata(outcome, config, correlation_id=correlation_id),
    )


def is_review_of_task(review: dict[str, Any], task_arn: str) -> bool:
    """Whether an existing review (wire form) was posted by us for this very task."""
    metadata = review.get("metadata")
    return isinstance(metadata, dict) and metadata.get("taskArn") == task_arn
