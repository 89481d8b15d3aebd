"""RunTask: build the request (pure) and send it (`EcsLauncher`, replaceable in tests).

Outcomes of a send, and what each means for the exactly-once guarantee:
- `LaunchResult`: ECS returned a task (or a ConflictException naming the task that already holds this
  clientToken, which is adopted rather than launched twice).
- `LaunchRejected`: ECS *answered* and this call started nothing (`failures[]`, throttling, another 4xx).
  The caller records the failure; the next delivery claims a new attempt and so a new clientToken, unless
  an earlier call of the same attempt was ambiguous: only `failures[]` (ECS evaluated this clientToken
  and placed nothing) settles that (`token_settled`). Throttling (`LaunchErrorKind.THROTTLED`) is no failure
  of the run: the caller puts it back in its capacity queue (decision 094).
- `LaunchOutcomeUnknown`: the call may have started a task: a 5xx (ECS documents that a server error can
  follow a created task), a read timeout, a dropped connection, an answer without a task, an error
  botocore already retried (an earlier try may have been a timeout), any error we cannot classify. The
  caller keeps the lease and marks the attempt ambiguous, so every retry reuses the same clientToken
  (decision 070).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mm_adapters import aws
from mm_contracts.models.challenge import ChallengeConfig, ScorerEnvironment
from mm_contracts.models.phase import PhaseConfig
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.models.task import EcsRunnerEnv, TaskEnv, TaskTag
from mm_contracts.names import PROJECT, client_token, started_by

_MAX_REASON = 300
_MAX_DIMENSION = 64
_MAX_STOP_REASON = 255  # StopTask `reason`: up to 255 characters

_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded", "TooManyRequestsException"}
)
_SERVER_CODES = frozenset(
    {"ServerException", "InternalFailure", "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException"}
)
# Errors that will not go away by retrying the same request: the configuration (cluster, task
# definition, network, IAM) is wrong. Retried through SQS anyway (after a config refresh), then DLQ.
_PERMANENT_CODES = frozenset(
    {
        "InvalidParameterException",
        "ClientException",
        "ClusterNotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
        "PlatformUnknownException",
        "PlatformTaskDefinitionIncompatibilityException",
        "UnsupportedFeatureException",
        "BlockedException",
        "ValidationException",
    }
)


@dataclass(frozen=True)
class RunTaskRequest:
    """RunTask parameters. `repr` hides them: in the insecure credentials mode they hold the token."""

    client_token: str
    started_by: str
    cluster: str
    kwargs: dict[str, Any] = field(repr=False)
    secret_values: tuple[str, ...] = field(default=(), repr=False)

    def redact(self, text: str) -> str:
        for secret in self.secret_values:
            if secret:
                text = text.replace(secret, "***")
        return text


def build_run_task_request(
    submission: RoutedSubmission,
    config: ChallengeConfig,
    phase_config: PhaseConfig | None = None,
    *,
    environment_name: str,
    attempt: int,
    credential_environment: tuple[tuple[str, str], ...] = (),
    secret_values: tuple[str, ...] = (),
) -> RunTaskRequest:
    """One Fargate task for one run (submission, phase); everything the scorer and the completion function need.

    `phase_config` None: the config's only phase (a v5 challenge); a config with several phases must name one.
    """
    if phase_config is None:
        if len(config.effective_phases) != 1:
            raise ValueError("a challenge with several phases launches one named phase per task")
        phase_config = config.effective_phases[0]
    phase = phase_config.phase
    env: list[tuple[str, str]] = [
        (TaskEnv.SUBMISSION_ID, submission.submission_id),
        (TaskEnv.LAUNCH_ATTEMPT, str(attempt)),
        (TaskEnv.CHALLENGE_ID, submission.challenge_id),
        (TaskEnv.PHASE, phase.value),
        (TaskEnv.PHASE_START_SEED, str(phase_config.start_seed)),
        (TaskEnv.PHASE_NUMBER_OF_TESTS, str(phase_config.number_of_tests)),
        (TaskEnv.PLATFORM, submission.platform.value),
    ]
    if submission.legacy_challenge_id is not None:
        env.append((TaskEnv.LEGACY_CHALLENGE_ID, str(submission.legacy_challenge_id)))
    env += [
        (TaskEnv.SUBMISSION_URL, submission.url),
        (TaskEnv.MEMBER_ID, str(submission.member_id)),
    ]
    if submission.member_handle:
        env.append((TaskEnv.MEMBER_HANDLE, submission.member_handle))
    env += [
        (TaskEnv.SCORER_TYPE, config.scorer_type),
        (TaskEnv.CORRELATION_ID, submission.correlation_id),
        (TaskEnv.TIMEOUT_SECONDS, str(config.phase_timeout(phase))),
        (TaskEnv.ENVIRONMENT, environment_name),
    ]
    if config.scorer_environment is ScorerEnvironment.TOPCODER_ECS_RUNNER:
        env += _ecs_runner_environment(submission, config, phase_config)
    env += credential_environment
    overrides: dict[str, Any] = {
        "containerOverrides": [
            {
                "name": config.scorer_container_name,
                "environment": [{"name": str(name), "value": value} for name, value in env],
            }
        ]
    }
    if config.cpu is not None:
        overrides["cpu"] = str(config.cpu)
    if config.memory_mb is not None:
        overrides["memory"] = str(config.memory_mb)

    vpc: dict[str, Any] = {"subnets": list(config.subnets), "assignPublicIp": "DISABLED"}
    if config.security_groups:
        vpc["securityGroups"] = list(config.security_groups)

    token = client_token(submission.submission_id, phase.value, attempt)
    starter = started_by(environment_name, submission.challenge_id)
    tags = {
        TaskTag.CHALLENGE_ID: submission.challenge_id,
        TaskTag.SUBMISSION_ID: submission.submission_id,
        TaskTag.PHASE: phase.value,
        TaskTag.SCORER_TYPE: config.scorer_type,
        TaskTag.ENVIRONMENT: environment_name,
        TaskTag.PROJECT: PROJECT,
    }
    kwargs: dict[str, Any] = {
        "cluster": config.ecs_cluster,
        "taskDefinition": config.ecs_task_definition,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": starter,
        "clientToken": token,
        "networkConfiguration": {"awsvpcConfiguration": vpc},
        "overrides": overrides,
        # propagateTags is deliberately absent: only TASK_DEFINITION/SERVICE are valid, and the tags are set here.
        "tags": [{"key": str(key), "value": value} for key, value in tags.items()],
    }
    return RunTaskRequest(
        client_token=token,
        started_by=starter,
        cluster=config.ecs_cluster,
        kwargs=kwargs,
        secret_values=secret_values,
    )


def _ecs_runner_environment(
    submission: RoutedSubmission, config: ChallengeConfig, phase_config: PhaseConfig
) -> list[tuple[str, str]]:
    """Topcoder's ecs-runner names, with the value forms its launcher uses (decision 087). Never ACCESS_TOKEN."""
    env: list[tuple[str, str]] = [
        (EcsRunnerEnv.TESTER_CONFIG_ID, submission.challenge_id),
        (EcsRunnerEnv.SUBMISSION_ID, submission.submission_id),
    ]
    if config.review_type_id is not None:
        env.append((EcsRunnerEnv.REVIEW_TYPE_ID, config.review_type_id))
    env += [
        (EcsRunnerEnv.TEST_PHASE, phase_config.phase.test_type),
        (EcsRunnerEnv.PHASE_CONFIG_TYPE, phase_config.phase.value),
        (EcsRunnerEnv.PHASE_START_SEED, str(phase_config.start_seed)),
        (EcsRunnerEnv.PHASE_NUMBER_OF_TESTS, str(phase_config.number_of_tests)),
        (EcsRunnerEnv.MEMBER_ID, str(submission.member_id)),
    ]
    return env


# ------------------------------------------------------------------ outcomes
@dataclass(frozen=True)
class LaunchResult:
    task_arn: str
    cluster_arn: str
    adopted: bool = False  # ConflictException named the task that already holds this clientToken


class LaunchErrorKind(StrEnum):
    TRANSIENT = "transient"  # capacity (failures[]) and other passing refusals: retry through SQS
    THROTTLED = "throttled"  # RunTask's rate limit: the run goes back to WAITING, never toward a DLQ
    PERMANENT = "permanent"  # configuration (cluster, task definition, network, IAM): refresh config, retry, DLQ


class LaunchError(Exception):
    """`reason_code` is low-cardinality (a metric dimension); `detail` is for the record and the log."""

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = reason_code[:_MAX_DIMENSION]
        self.detail = detail[:_MAX_REASON]
        super().__init__(f"{self.reason_code}: {self.detail}")


class LaunchRejected(LaunchError):
    """ECS answered and started no task: a definite failure."""

    def __init__(self, reason_code: str, detail: str, kind: LaunchErrorKind, *, token_settled: bool = False) -> None:
        super().__init__(reason_code, detail)
        self.kind = kind
        # True only for failures[]: ECS evaluated this clientToken and placed nothing, so no earlier call with
        # it started a task either (a repeated token with the same parameters returns the original result).
        self.token_settled = token_settled


class LaunchOutcomeUnknown(LaunchError):
    """The request may have reached ECS: keep the lease, retry with the same clientToken."""


def _cluster_arn_from_task_arn(task_arn: str, fallback: str) -> str:
    # arn:aws:ecs:{region}:{account}:task/{cluster}/{id} -> arn:aws:ecs:{region}:{account}:cluster/{cluster}
    prefix, _, resource = task_arn.partition(":task/")
    cluster_name = resource.split("/")[0] if "/" in resource else ""
    return f"{prefix}:cluster/{cluster_name}" if prefix and cluster_name else fallback


class EcsLauncher:
    """Sends one RunTask and classifies the answer. The ECS client is injected or built lazily."""

    def __init__(self, ecs_client: Any | None = None) -> None:
        self._client = ecs_client

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("ecs")

    def run_task(self, request: RunTaskRequest) -> LaunchResult:
        try:
            response = self.client.run_task(**request.kwargs)
        except ClientError as error:
            return self._from_client_error(error, request)
        except BotoCoreError as error:
            # Read timeouts and dropped connections may follow a request ECS did process; even a
            # connect failure can be the last of several botocore attempts, an earlier one ambiguous.
            raise LaunchOutcomeUnknown(
                type(error).__name__, request.redact(f"RunTask transport error: {error}")
            ) from None

        tasks = response.get("tasks") or []
        if tasks and tasks[0].get("taskArn"):
            task = tasks[0]
            return LaunchResult(task_arn=task["taskArn"], cluster_arn=task.get("clusterArn") or request.cluster)
        failures = response.get("failures") or []
        if failures:
            first = failures[0]
            reason = str(first.get("reason") or "unknown failure")
            detail = "; ".join(
                f"{f.get('reason', '')}{' (' + f['detail'] + ')' if f.get('detail') else ''}" for f in failures
            )
            raise LaunchRejected(
                reason, request.redact(f"RunTask failures[]: {detail}"), LaunchErrorKind.TRANSIENT, token_settled=True
            )
        raise LaunchOutcomeUnknown("NoTaskReturned", "RunTask answered without a task and without failures[]")

    @staticmethod
    def _from_client_error(error: ClientError, request: RunTaskRequest) -> LaunchResult:
        code = str(error.response.get("Error", {}).get("Code", "ClientError"))
        message = request.redact(str(error.response.get("Error", {}).get("Message", "")))
        if code == "ConflictException":
            # The clientToken is already bound to a task (started by an earlier, ambiguous attempt with
            # different parameters, e.g. after a config change): that task is ours. Never start another.
            response: dict[str, Any] = dict(error.response)
            resource_ids = list(response.get("resourceIds") or [])
            if resource_ids:
                task_arn = str(resource_ids[0])
                return LaunchResult(
                    task_arn=task_arn,
                    cluster_arn=_cluster_arn_from_task_arn(task_arn, request.cluster),
                    adopted=True,
                )
            raise LaunchOutcomeUnknown(code, f"clientToken in use, task not named: {message}") from None
        metadata = error.response.get("ResponseMetadata", {})
        status = int(metadata.get("HTTPStatusCode", 0) or 0)
        if code in _SERVER_CODES or status >= 500:
            # ECS: "a timeout or a server error can occur after the resources are mutated" (ECS_Idempotency).
            raise LaunchOutcomeUnknown(code, f"{code} (HTTP {status or '?'}): {message}") from None
        if int(metadata.get("RetryAttempts", 0) or 0) > 0:
            # botocore retried before this answer: an earlier try may have been a 5xx or a timeout.
            raise LaunchOutcomeUnknown(
                code, f"{code} after {metadata['RetryAttempts']} botocore retries: {message}"
            ) from None
        if code in _THROTTLING_CODES:
            raise LaunchRejected("Throttling", f"{code}: {message}", LaunchErrorKind.THROTTLED) from None
        if code in _PERMANENT_CODES or 400 <= status < 500:
            raise LaunchRejected(code, f"{code}: {message}", LaunchErrorKind.PERMANENT) from None
        # No status and no code we know: we cannot prove ECS started nothing.
        raise LaunchOutcomeUnknown(code, f"{code}: {message}") from None

    def stop_task(self, *, cluster: str, task_arn: str, reason: str) -> None:
        """StopTask (a superseded run's task, decision 095). Errors propagate: the caller logs them."""
        self.client.stop_task(cluster=cluster, task=task_arn, reason=reason[:_MAX_STOP_REASON])


__all__ = [
    "EcsLauncher",
    "LaunchError",
    "LaunchErrorKind",
    "LaunchOutcomeUnknown",
    "LaunchRejected",
    "LaunchResult",
    "RunTaskRequest",
    "build_run_task_request",
]
