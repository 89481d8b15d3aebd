"""Helpers shared by the Topcoder tests: constants, a stub Secrets Manager client, a sleep recorder, the
review the completion Lambda posts for a failed v5 run, and the v6 terminal summation of a failed run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mm_adapters.topcoder import ReviewCreate, ReviewSummationRequest
from mm_contracts.models.phase import ScoringPhase

CLIENT_ID = "mm-processor-dev-client"
CLIENT_SECRET = "never-log-this-client-secret"
REVIEW_TYPE_ID = "c56a4180-65aa-42ec-a945-5fd21dec0503"  # "Review" in the seed
OTHER_REVIEW_TYPE_ID = "c56a4180-65aa-42ec-a945-5fd21dec0501"  # "Screening"
SUBMISSION_ID = "a12a4180-65aa-42ec-a945-5fd21dec0503"
V6_SUBMISSION_ID = "3G9RNcDiRX4ioW"  # a nanoid(14), the form review-api-v6 gives submission ids
V6_MEMBER_ID = "88770025"
CHALLENGE_ID = "30049360-2e4f-4b1b-9a5d-2c4f7f1e2b10"


class StubSecrets:
    """Secrets Manager's get_secret_value, in memory."""

    def __init__(self, secret: dict[str, Any]) -> None:
        self.secret = secret
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.reads += 1
        return {"ARN": SecretId, "SecretString": json.dumps(self.secret)}


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def failure_review(submission_id: str = SUBMISSION_ID, **overrides: Any) -> ReviewCreate:
    """What the completion Lambda reports for a failed scorer run (Topcoder MM tooling's metadata)."""
    fields: dict[str, Any] = {
        "score": 0,
        "type_id": REVIEW_TYPE_ID,
        "reviewer_id": "0b27a6a7-5f5e-4d4c-8f5e-2a43f5f0b7c1",
        "score_card_id": 30001852,
        "submission_id": submission_id,
        "status": "completed",
        "metadata": {
            "testType": "provisional",
            "testStatus": "FAILED",
            "reason": "scorer exited with code 137 (OutOfMemory)",
        },
    }
    fields.update(overrides)
    return ReviewCreate(**fields)


def failed_summation(
    submission_id: str = V6_SUBMISSION_ID, phase: ScoringPhase = ScoringPhase.PROVISIONAL, **metadata: Any
) -> ReviewSummationRequest:
    """The v6 terminal summation of a failed run (common brief, contract 4)."""
    return ReviewSummationRequest(
        submission_id=submission_id,
        aggregate_score=-1,
        is_passing=False,
        scorecard_id="fn2ksYbFzw5Cf4",
        reviewed_date=datetime(2026, 7, 3, 10, 0, tzinfo=UTC),
        metadata={
            "testType": phase.test_type,
            "testProcess": "system" if phase is ScoringPhase.SYSTEM else "provisional",
            "testStatus": "FAILED",
            "testProgress": 1,
            "reason": "scorer exited with code 137 (OutOfMemory)",
            "exitCode": 137,
            "runId": f"{submission_id}#{phase.value}",
            "phase": phase.value,
            "reportedBy": "mm-processor",
            **metadata,
        },
        **{phase.summation_flag: True},
    )
