"""Who a stopped task is, from the values the pipeline set on it, each validated (decision 076): the submission, the
challenge, the phase, the launch attempt and the correlation id (`identify_task`); overrides first, tags else."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from completion_lambda.results import (
    IgnoreReason,
)
from mm_contracts.models.base import canonical_uuid
from mm_contracts.models.ecs_event import EcsTaskStateChangeEvent
from mm_contracts.models.phase import V6_SUBMISSION_ID, ScoringPhase
from mm_contracts.models.task import TaskEnv, TaskTag

# What the pipeline itself writes: a RunTask launch attempt, a task ARN, a correlation id (printable ASCII).
_LAUNCH_ATTEMPT = re.compile(r"^[1-9][0-9]{0,8}$")
TASK_ARN = re.compile(r"^arn:[a-z-]{1,16}:ecs:[a-z0-9-]{1,32}:[0-9]{12}:task/[A-Za-z0-9_/-]{1,300}$")
_CORRELATION_ID = re.compile(r"^[\x21-\x7e]{1,256}$")


@dataclass(frozen=True)
class TaskIdentity:
    submission_id: str
    challenge_id: str
    correlation_id: str | None  # MM_CORRELATION_ID when well-formed
    source: str  # "overrides" or "tags"
    launch_attempt: int | None = None  # MM_LAUNCH_ATTEMPT; None for tasks launched before it existed
    phase: ScoringPhase | None = None  # MM_PHASE (Phase tag); None: the task names none (see `_run_of`)


def valid_submission_id(raw: str) -> str | None:
    """The submission id in its canonical form: a v5 UUID (lower-cased) or a v6 nanoid (exact); else None."""
    return canonical_uuid(raw) or (raw if V6_SUBMISSION_ID.match(raw) else None)


def identify_task(
    event: EcsTaskStateChangeEvent, *, prefix: str, task_tags: Callable[[str, str], dict[str, str]]
) -> TaskIdentity | IgnoreReason:
    """Who the task is, from the values the pipeline set on it, each validated (decision 076)."""
    detail = event.detail
    env = detail.environment()
    raw_submission = env.get(TaskEnv.SUBMISSION_ID.value)
    raw_challenge = env.get(TaskEnv.CHALLENGE_ID.value) or (detail.started_by or "")[len(prefix) :]
    raw_phase = env.get(TaskEnv.PHASE.value)
    source = "overrides"
    if not raw_submission:
        # Events carry no tags; only a task started without our overrides lands here.
        tags = task_tags(detail.cluster_arn, detail.task_arn)
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
