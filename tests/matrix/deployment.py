"""The matrix's deployment: the names, the challenge config documents and the timings the world runs on.

The timings are the deployed values (decision 078): the matrix runs on them, in virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mm_contracts.names import capacity_parameter_name

REGION = "us-east-1"
ENVIRONMENT = "matrix"
CHALLENGE_ID = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"
CLUSTER = "mm-scorers"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:123456789012:cluster/{CLUSTER}"
CONTAINER = "scorer"
STATUS_TABLE = "mm-matrix-status"
CAPACITY_TABLE = "mm-matrix-capacity"
CAPACITY_PARAMETER = capacity_parameter_name()
CHALLENGE_TABLE = "mm-matrix-challenges"
AUDIT_MARKS_TABLE = "mm-matrix-audit-marks"
QUEUE_NAME = f"mm-{ENVIRONMENT}-{CHALLENGE_ID}"
COMPLETION_FUNCTION = f"mm-{ENVIRONMENT}-completion"
REVIEW_TYPE_ID = "c56a4180-65aa-42ec-a945-5fd21dec0503"
REVIEWER_ID = "2b8f3c1e-6a6d-4d2a-9b39-3e1f4b5c6d7e"
ALLOWED_HOST = "topcoder-submissions.s3.amazonaws.com"
TOPIC = "submission.notification.create"
SCORECARD_ID = "Sc0rEcArD-v6_1"
MEMBER_HANDLE = "tourist"
MEMBER_ID = 40_158_994
V6_PHASES = (
    {"phase": "EXAMPLE", "startSeed": 1, "numberOfTests": 10, "onSubmission": True},
    {"phase": "PROVISIONAL", "startSeed": 11, "numberOfTests": 50, "onSubmission": True},
)


def queue_name(challenge_id: str) -> str:
    """A challenge's queue (`mm-<env>-<challengeId>`: the completion function's relaunch template fills it)."""
    return f"mm-{ENVIRONMENT}-{challenge_id}"


def _scorer_document(challenge_id: str) -> dict[str, Any]:
    """What every challenge's config says of its scorer task (cluster, task definition, network, timeout)."""
    return {
        "challengeId": challenge_id,
        "scorerType": "mm-scorer-java",
        "ecsCluster": CLUSTER,
        "ecsTaskDefinition": "mm-scorer-example:3",
        "scorerContainerName": CONTAINER,
        "timeoutSeconds": 1800,
        "subnets": ["subnet-0a1b2c3d"],
        "securityGroups": ["sg-0123456789abcdef0"],
    }


def v5_config_document(challenge_id: str = CHALLENGE_ID) -> dict[str, Any]:
    return {
        **_scorer_document(challenge_id),
        "reviewTypeId": REVIEW_TYPE_ID,
        "reviewerId": REVIEWER_ID,
        "scoreCardId": 30_001_852,
        "reportOnSuccess": True,
    }


def v6_config_document(challenge_id: str = CHALLENGE_ID) -> dict[str, Any]:
    """Two phases per new submission; a success is the scorer's to report (no `reportOnSuccess`)."""
    return {
        **_scorer_document(challenge_id),
        "platform": "v6",
        "scorecardId": SCORECARD_ID,
        "phases": [dict(phase) for phase in V6_PHASES],
        "reportOnSuccess": False,
    }


@dataclass(frozen=True)
class Timings:
    """The deployed values (common brief); the matrix runs on them, in virtual time."""

    visibility_seconds: int = 180
    max_receive_count: int = 3
    launch_lease_seconds: int = 60
    report_lease_seconds: int = 90
    async_retry_delays: tuple[int, ...] = (60, 120)
    sweep_seconds: int = 300
    reconcile_grace_seconds: int = 900
    sqs_batch_size: int = 5
    eventbridge_delay_seconds: float = 1.0
    kafka_retry_seconds: float = 10.0
    kafka_max_retries: int = 10
    capacity_cache_seconds: int = 60  # every function's cache of the environment's caps parameter
    config_cache_seconds: int = 300  # the completion function's and the sweeper's challenge config cache
    horizon_seconds: float = 3 * 86_400  # a case that is not quiescent by then is stuck
