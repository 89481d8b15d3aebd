#!/usr/bin/env python3
"""Example Marathon Match scorer: what the pipeline's Fargate task runs, as a plain local process.

Contract (mm_contracts.models.task.TaskEnv): the container overrides carry MM_SUBMISSION_ID,
MM_CHALLENGE_ID, MM_SUBMISSION_URL, MM_MEMBER_ID, MM_SCORER_TYPE, MM_CORRELATION_ID,
MM_TIMEOUT_SECONDS, MM_ENVIRONMENT, and the run's phase: MM_PHASE (EXAMPLE | PROVISIONAL | SYSTEM),
MM_PHASE_START_SEED, MM_PHASE_NUMBER_OF_TESTS, MM_PLATFORM (v5 | v6). The task definition adds where the
scorer reports and its identifiers, and its `secrets` inject MM_M2M_TOKEN (never the RunTask overrides):
  v5: MM_SUBMISSION_API_URL, MM_REVIEW_TYPE_ID, MM_REVIEWER_ID, MM_SCORECARD_ID -> POST /reviews
  v6: MM_REVIEW_API_URL (and MM_SUMMATION_SCORECARD_ID) -> POST /reviewSummations, the run's phase flag set
      (isExample / isProvisional / isFinal), as Topcoder's own runner posts its results

Behaviour (EXAMPLE_SCORER_BEHAVIOUR, set by the local pipeline's `--scorer ID=behaviour`):
  succeed   score the submission, POST the score review to the Submission API, exit 0 (default)
  fail      the solution fails the tests: exit 1
  error     the scorer itself breaks: an uncaught exception (exit 1, traceback)
  crash     killed like an out-of-memory container: SIGKILL, exit 137
  run-long  sleep far past MM_TIMEOUT_SECONDS, until the timeout sweeper stops the task

Standard library only, so it runs anywhere a python3 is.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

BEHAVIOURS = ("succeed", "fail", "error", "crash", "run-long")


def score_of(submission_id: str) -> float:
    """A deterministic score in [0, 100): the same submission always scores the same."""
    digest = hashlib.sha256(submission_id.encode()).hexdigest()
    return round(int(digest[:8], 16) % 10_000 / 100, 2)


def post_review(submission_id: str, score: float) -> str:
    api_url = os.environ["MM_SUBMISSION_API_URL"].rstrip("/")
    token = os.environ["MM_M2M_TOKEN"]
    body = {
        "score": score,
        "typeId": os.environ["MM_REVIEW_TYPE_ID"],
        "reviewerId": os.environ["MM_REVIEWER_ID"],
        "scoreCardId": int(os.environ["MM_SCORECARD_ID"]),
        "submissionId": submission_id,
        "status": "completed",
        "metadata": {
            "testType": os.environ.get("MM_TEST_TYPE", "provisional"),
            "testStatus": "SUCCESS",
            "scorer": "examples/scorer",
            "correlationId": os.environ.get("MM_CORRELATION_ID", ""),
        },
    }
    request = urllib.request.Request(  # noqa: S310 - the URL comes from the task definition, http(s) only
        f"{api_url}/reviews",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(json.loads(response.read()).get("id", ""))


_PHASE_FLAGS = {"EXAMPLE": "isExample", "PROVISIONAL": "isProvisional", "SYSTEM": "isFinal"}


def post_summation(submission_id: str, score: float) -> str:
    """v6: the run's review summation (review-api-v6 `POST /reviewSummations`, one per phase)."""
    api_url = os.environ["MM_REVIEW_API_URL"].rstrip("/")
    token = os.environ["MM_M2M_TOKEN"]
    phase = os.environ.get("MM_PHASE", "PROVISIONAL")
    body: dict[str, object] = {
        "submissionId": submission_id,
        "aggregateScore": score,
        "isPassing": True,
        _PHASE_FLAGS[phase]: True,
        "reviewedDate": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "metadata": {
            "testType": phase.lower(),
            "testProcess": "system" if phase == "SYSTEM" else "provisional",
            "testStatus": "SUCCESS",
            "testProgress": 1,
            "startSeed": os.environ.get("MM_PHASE_START_SEED"),
            "numberOfTests": os.environ.get("MM_PHASE_NUMBER_OF_TESTS"),
            "scorer": "examples/scorer",
            "correlationId": os.environ.get("MM_CORRELATION_ID", ""),
        },
    }
    if os.environ.get("MM_SUMMATION_SCORECARD_ID"):
        body["scorecardId"] = os.environ["MM_SUMMATION_SCORECARD_ID"]
    request = urllib.request.Request(  # noqa: S310 - the URL comes from the task definition, http(s) only
        f"{api_url}/reviewSummations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(json.loads(response.read()).get("id", ""))


def main() -> int:
    submission_id = os.environ.get("MM_SUBMISSION_ID", "")
    behaviour = os.environ.get("EXAMPLE_SCORER_BEHAVIOUR") or "succeed"
    timeout = int(os.environ.get("MM_TIMEOUT_SECONDS", "60"))
    print(
        json.dumps(
            {
                "msg": "scorer started",
                "submissionId": submission_id,
                "challengeId": os.environ.get("MM_CHALLENGE_ID"),
                "scorerType": os.environ.get("MM_SCORER_TYPE"),
                "phase": os.environ.get("MM_PHASE"),
                "behaviour": behaviour,
            }
        ),
        flush=True,
    )
    if behaviour not in BEHAVIOURS:
        print(f"unknown behaviour {behaviour!r}; expected one of {', '.join(BEHAVIOURS)}", file=sys.stderr)
        return 2
    if behaviour == "fail":
        print("solution failed the example tests (3 of 10 cases wrong)", flush=True)
        return 1
    if behaviour == "error":
        raise RuntimeError("scorer bug: could not parse the solution's output")
    if behaviour == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if behaviour == "run-long":
        time.sleep(timeout + 600)  # SIGTERM from StopTask ends it (exit 143)
        return 0
    if not submission_id:
        print("MM_SUBMISSION_ID is missing", file=sys.stderr)
        return 2
    score = score_of(submission_id)
    # The platform the task names; a task definition that only knows review-api-v6 is a v6 scorer either way.
    v6 = os.environ.get("MM_PLATFORM") == "v6" or "MM_SUBMISSION_API_URL" not in os.environ
    post = post_summation if v6 else post_review
    try:
        review_id = post(submission_id, score)
    except (urllib.error.URLError, KeyError, ValueError) as error:
        # A score nobody received is a failed run: exit non-zero so the pipeline reports the failure.
        print(f"could not post the score review: {type(error).__name__}: {error}", file=sys.stderr)
        return 3
    print(json.dumps({"msg": "scored", "submissionId": submission_id, "score": score, "reviewId": review_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
