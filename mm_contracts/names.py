"""Names shared across stages. Change a name here and every stage (and the stacks) follows."""

from __future__ import annotations

PROJECT = "mm-processor"

# Kafka
DEFAULT_SUBMISSION_TOPIC = "submission.notification.create"

# SNS message attribute the per-challenge subscription filter policies match on.
CHALLENGE_ID_ATTRIBUTE = "challengeId"

# SSM: per-challenge configuration parameter, and the static M2M token of the seed design. A deployment uses
# `environment_ssm_prefix()`; the bare project prefix is only the functions' fallback (unit tests, local tools).
DEFAULT_SSM_PREFIX = "/mm-processor"


def environment_ssm_prefix(environment: str) -> str:
    """`/mm-processor/<environment>`: environments sharing an account never share a parameter (decision 051)."""
    return f"{DEFAULT_SSM_PREFIX}/{environment}"


def challenge_config_parameter_name(challenge_id: str, ssm_prefix: str = DEFAULT_SSM_PREFIX) -> str:
    """`<ssmPrefix>/challenges/{challengeId}/config`, e.g. `/mm-processor/example/challenges/{id}/config`."""
    return f"{ssm_prefix.rstrip('/')}/challenges/{challenge_id}/config"


def challenge_config_parameter_prefix(ssm_prefix: str = DEFAULT_SSM_PREFIX) -> str:
    return f"{ssm_prefix.rstrip('/')}/challenges"


def static_token_parameter_name(ssm_prefix: str = DEFAULT_SSM_PREFIX) -> str:
    return f"{ssm_prefix.rstrip('/')}/auth0/token"


def capacity_parameter_name(ssm_prefix: str = DEFAULT_SSM_PREFIX) -> str:
    """`<ssmPrefix>/capacity`: the environment's caps (JSON, `mm_contracts.models.capacity.EnvironmentCapacity`)."""
    return f"{ssm_prefix.rstrip('/')}/capacity"


def scorer_token_parameter_name(ssm_prefix: str = DEFAULT_SSM_PREFIX) -> str:
    """`<ssmPrefix>/auth0/scorer-token`: the SecureString the scorer-token refresher keeps fresh (token source
    auth0_proxy, decision 091); a scorer task definition references it in `secrets` as ACCESS_TOKEN."""
    return f"{ssm_prefix.rstrip('/')}/auth0/scorer-token"


# ECS: how a task is recognized as ours. startedBy allows [A-Za-z0-9-/_], up to 128 characters.
def started_by_prefix(environment: str) -> str:
    """The prefix every task this pipeline starts carries in `startedBy` (EventBridge filters on it)."""
    return f"{PROJECT}/{environment}/"


def started_by(environment: str, challenge_id: str) -> str:
    return f"{started_by_prefix(environment)}{challenge_id}"


def client_token(submission_id: str, phase: str, launch_attempt: int) -> str:
    """Deterministic RunTask clientToken (<= 64 printable ASCII): same run (submission, phase) + attempt, same task.

    A UUID (36) + `-` + the longest phase (11) + `-` + the attempt stays within 64 characters.

    The attempt number only advances after a launch is *known* not to have happened (failures[] or a
    definite error), so an ambiguous retry (crash after RunTask) reuses the token and gets the same task.
    """
    return f"{submission_id}-{phase}-{launch_attempt}"


# StopTask reason the timeout sweeper uses; the completion handler maps UserInitiated + this prefix
# to TIMED_OUT (any other UserInitiated stop is a cancellation).
TIMEOUT_STOP_REASON_PREFIX = "mm-processor timeout:"
# StopTask reason for a running task of ours that no status item tracks (an orphan, decision 071): its
# STOPPED event is ignored by the completion function (the item does not track it), never reported.
ORPHAN_STOP_REASON_PREFIX = "mm-processor orphan:"
# stoppedReason of a synthetic STOPPED event for a task whose real event was never processed and that ECS no
# longer describes, when the pipeline did not stop it itself: the outcome is unknown and is reported as such
# (never invented as a timeout; decision 073).
OUTCOME_UNKNOWN_STOP_REASON_PREFIX = "mm-processor outcome-unknown:"

# DynamoDB
# One item per run: `runId` = `<submissionId>#<PHASE>` (decision 084). The table is new with this key (the v5-only
# table was keyed by `submissionId`); docs/deploy.md says how an environment moves to it.
STATUS_TABLE_PARTITION_KEY = "runId"
STATUS_TABLE_OVERDUE_INDEX = "byStateDeadline"  # GSI: partition `state`, sort `deadlineAt` (epoch s)
# GSI: partition `challengeId`, sort `createdAt` (ISO 8601): a challenge's runs, for the operator (decision 108).
STATUS_TABLE_CHALLENGE_INDEX = "byChallenge"
STATUS_TABLE_TTL_ATTRIBUTE = "expiresAt"
CHALLENGE_TABLE_PARTITION_KEY = "challengeId"
# The capacity table (decisions 093, 094): pools, queue entries, member items and pace items under `pk` + `sk`.
CAPACITY_TABLE_PARTITION_KEY = "pk"
CAPACITY_TABLE_SORT_KEY = "sk"
CAPACITY_TABLE_TTL_ATTRIBUTE = "expiresAt"
LEGACY_CHALLENGE_ALIAS_PREFIX = "legacy:"  # alias item key for a legacy numeric challenge id


def legacy_challenge_alias_key(legacy_id: int | str) -> str:
    return f"{LEGACY_CHALLENGE_ALIAS_PREFIX}{legacy_id}"
