"""The scorer task contract: environment variable and tag names the pipeline sets on RunTask.

The completion handler reads the same names back from the STOPPED event's overrides, so the two ends
can never disagree. Secrets never appear here (see ScorerCredentialsMode).
"""

from __future__ import annotations

from enum import StrEnum


class TaskEnv(StrEnum):
    SUBMISSION_ID = "MM_SUBMISSION_ID"
    # The status item's launch attempt this task belongs to (the clientToken's suffix): the completion
    # function records an outcome only for the attempt the item is on.
    LAUNCH_ATTEMPT = "MM_LAUNCH_ATTEMPT"
    CHALLENGE_ID = "MM_CHALLENGE_ID"
    # The run's phase and what it scores (decision 085): EXAMPLE | PROVISIONAL | SYSTEM, the first seed, how many.
    PHASE = "MM_PHASE"
    PHASE_START_SEED = "MM_PHASE_START_SEED"
    PHASE_NUMBER_OF_TESTS = "MM_PHASE_NUMBER_OF_TESTS"
    PLATFORM = "MM_PLATFORM"
    MEMBER_HANDLE = "MM_MEMBER_HANDLE"
    LEGACY_CHALLENGE_ID = "MM_LEGACY_CHALLENGE_ID"
    SUBMISSION_URL = "MM_SUBMISSION_URL"
    MEMBER_ID = "MM_MEMBER_ID"
    SCORER_TYPE = "MM_SCORER_TYPE"
    CORRELATION_ID = "MM_CORRELATION_ID"
    TIMEOUT_SECONDS = "MM_TIMEOUT_SECONDS"
    ENVIRONMENT = "MM_ENVIRONMENT"
    # A *reference* (SSM parameter name) the scorer resolves itself; never the token.
    TOKEN_PARAMETER = "MM_TOKEN_PARAMETER"
    # Compatibility mode only (off by default, documented risk): the token in plain text.
    M2M_TOKEN = "MM_M2M_TOKEN"


class TaskTag(StrEnum):
    CHALLENGE_ID = "ChallengeId"
    SUBMISSION_ID = "SubmissionId"
    PHASE = "Phase"
    SCORER_TYPE = "ScorerType"
    ENVIRONMENT = "Environment"
    PROJECT = "Project"


class EcsRunnerEnv(StrEnum):
    """The names Topcoder's own ecs-runner reads, set in addition to `TaskEnv` when a challenge opts in
    (`scorerEnvironment: topcoder_ecs_runner`, decision 087). Names and value forms as marathon-match-api-v6
    `src/shared/modules/global/ecs.service.ts` (`launchScorerTask`) sets them and `ecs-runner/.../EcsRunnerMain.java`
    reads them. Deliberately absent: `ACCESS_TOKEN` (only the task definition's `secrets` give it to the task),
    `MARATHON_MATCH_API_URL` (per deployment: the task definition's `environment`) and `REVIEW_ID` (Topcoder's
    SYSTEM review id, created by its autopilot; nothing here knows it)."""

    TESTER_CONFIG_ID = "TESTER_CONFIG_ID"  # the challenge id: the runner loads its config and tester by it
    SUBMISSION_ID = "SUBMISSION_ID"
    REVIEW_TYPE_ID = "REVIEW_TYPE_ID"  # required by the runner
    TEST_PHASE = "TEST_PHASE"  # example | provisional | system
    PHASE_CONFIG_TYPE = "PHASE_CONFIG_TYPE"  # EXAMPLE | PROVISIONAL | SYSTEM
    PHASE_START_SEED = "PHASE_START_SEED"
    PHASE_NUMBER_OF_TESTS = "PHASE_NUMBER_OF_TESTS"
    MEMBER_ID = "MEMBER_ID"  # set by Topcoder only when known; its duplicate/superseded-task checks read it
