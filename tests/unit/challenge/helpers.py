"""Fakes and builders for the challenge processor tests (unit and integration)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from challenge_lambda.launcher import LaunchResult, RunTaskRequest
from challenge_lambda.processor import ChallengeProcessor
from challenge_lambda.wiring import ChallengeDependencies
from mm_contracts.metric_names import Metric
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform, ScoringPhase
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from mm_contracts.names import capacity_parameter_name
from mm_contracts.settings import ChallengeProcessorSettings
from tests.conftest import CAPACITY_TABLE, Clock
from tests.fakes.metrics import RecordingMetrics

CHALLENGE_ID = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"
OTHER_CHALLENGE_ID = "0f9e8d7c-6b5a-4f3e-8d2c-1b0a9f8e7d6c"
REVIEW_TYPE_ID = "c56a4180-65aa-42ec-a945-5fd21dec0503"
REVIEWER_ID = "2b8f3c1e-6a6d-4d2a-9b39-3e1f4b5c6d7e"
PARAMETER_NAME = f"/mm-processor/challenges/{CHALLENGE_ID}/config"
TOKEN_PARAMETER_NAME = "/mm-processor/auth0/token"
SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.SECRET-M2M-TOKEN-do-not-leak.c2lnbmF0dXJl"
REGION = "us-east-1"
ACCOUNT = "123456789012"
CAPACITY_PARAMETER_NAME = capacity_parameter_name("/mm-processor")
CHALLENGE_QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/mm-dev-challenge-{CHALLENGE_ID}"


def capacity_document(**overrides: Any) -> dict[str, Any]:
    """The environment's caps (`<ssmPrefix>/capacity`, wire names): roomy unless a test narrows them."""
    document: dict[str, Any] = {"maxRunningTasks": 20, "defaultTaskCpu": 1024, "runTaskPerSecond": 10}
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not None}


def capacity_settings_env(capacity_table: str, queue_url: str = CHALLENGE_QUEUE_URL) -> dict[str, str]:
    """The challenge processor's capacity variables (ChallengeProcessorSettings)."""
    return {
        "CAPACITY_TABLE_NAME": capacity_table,
        "CAPACITY_PARAMETER_NAME": CAPACITY_PARAMETER_NAME,
        "CHALLENGE_QUEUE_URL": queue_url,
    }


# The phase of a config without phase configs (`testType` defaults to provisional): every v5 run's phase here.
V5_PHASE = ScoringPhase.PROVISIONAL


def routed_submission(
    *,
    submission_id: str | None = None,
    challenge_id: str = CHALLENGE_ID,
    legacy_challenge_id: int | None = None,
    offset: int = 42,
) -> RoutedSubmission:
    source = KafkaCoordinates(topic="submission.notification.create", partition=0, offset=offset)
    return RoutedSubmission(
        submission_id=submission_id or str(uuid.uuid4()),
        challenge_id=challenge_id,
        legacy_challenge_id=legacy_challenge_id,
        member_id=40_158_994,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        submission_type="Contest Submission",
        correlation_id=source.correlation_id,
        source=source,
        routed_at=datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
    )


def new_nanoid() -> str:
    """A v6 submission id: 14 characters of A-Za-z0-9_- (review-api-v6 `nanoid(14)`)."""
    return uuid.uuid4().hex[:12] + "_-"


def v6_submission(
    *,
    submission_id: str | None = None,
    phase: ScoringPhase | None = None,
    skip_reason: str | None = None,
    member_handle: str | None = "tourist",
    offset: int = 7,
) -> RoutedSubmission:
    source = KafkaCoordinates(topic=V6_SUBMISSION_TOPIC, partition=1, offset=offset)
    return RoutedSubmission(
        platform=Platform.V6,
        submission_id=submission_id or new_nanoid(),
        challenge_id=CHALLENGE_ID,
        member_id=88_770_025,
        member_handle=member_handle,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/v6-solution.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at=datetime(2027, 1, 15, 12, 0, tzinfo=UTC),
        phase=phase,
        skip_reason=skip_reason,
    )


def v6_config_document(**overrides: Any) -> dict[str, Any]:
    """A v6 challenge with EXAMPLE and PROVISIONAL on submission (SYSTEM after the match)."""
    document = config_document(
        platform="v6",
        reviewerId=None,
        scoreCardId=None,
        scorecardId="Wd8mC2bNkq1Zt0",
        phases=[
            {"phase": "EXAMPLE", "startSeed": 1, "numberOfTests": 10, "timeoutSeconds": 600},
            {"phase": "PROVISIONAL", "startSeed": 1001, "numberOfTests": 100, "timeoutSeconds": 2400},
            {"phase": "SYSTEM", "startSeed": 5001, "numberOfTests": 2000, "onSubmission": False},
        ],
    )
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not None}


def config_document(challenge_id: str = CHALLENGE_ID, **overrides: Any) -> dict[str, Any]:
    """A valid `/mm-processor/challenges/{id}/config` document (wire names)."""
    document: dict[str, Any] = {
        "challengeId": challenge_id,
        "scorerType": "mm-scorer-java",
        "ecsCluster": "mm-scorers",
        "ecsTaskDefinition": "mm-scorer-example:3",
        "scorerContainerName": "scorer",
        "timeoutSeconds": 1800,
        "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
        "securityGroups": ["sg-0123456789abcdef0"],
        "reviewTypeId": REVIEW_TYPE_ID,
        "reviewerId": REVIEWER_ID,
        "scoreCardId": 30_001_852,
    }
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not None}


class FakeSsm:
    """`get_parameter` from a dict, counting calls per name; a missing name raises ParameterNotFound."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})
        self.calls: list[str] = []

    def put(self, name: str, document: dict[str, Any] | str) -> None:
        self.values[name] = document if isinstance(document, str) else json.dumps(document)

    def get_parameter(self, *, Name: str, WithDecryption: bool = False) -> dict[str, Any]:
        self.calls.append(Name)
        if Name not in self.values:
            raise ClientError(
                {"Error": {"Code": "ParameterNotFound", "Message": f"Parameter {Name} not found."}}, "GetParameter"
            )
        return {"Parameter": {"Name": Name, "Type": "String", "Value": self.values[Name], "Version": 1}}

    def calls_for(self, name: str) -> int:
        return sum(1 for called in self.calls if called == name)


def phases_of(metrics: RecordingMetrics, metric: Metric) -> dict[str | None, int]:
    """How often `metric` was counted per run phase (the Phase dimension of per-run counts, decision 085)."""
    return {phase: n for (name, phase), n in metrics.phases.items() if name == metric.value}


class FakeSqs:
    """`send_message` recorded (admitted runs sent to the challenge queue); `error` makes every call fail."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.error = error

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        self.sent.append(kwargs)
        return {"MessageId": f"sent-{len(self.sent)}"}

    def bodies(self) -> list[RoutedSubmission]:
        return [RoutedSubmission.model_validate_json(call["MessageBody"]) for call in self.sent]


@dataclass
class FakeSleep:
    """Records each sleep; advances the test clock by it (a pacing wait takes no real time)."""

    clock: Callable[[float], None] | None = None
    sleeps: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.clock is not None:
            self.clock(seconds)


class FakeLambda:
    """`invoke` recorded (the report-due hand-off); `error` makes every call fail."""

    def __init__(self, error: Exception | None = None) -> None:
        self.invocations: list[dict[str, Any]] = []
        self.error = error

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        self.invocations.append(kwargs)
        return {"StatusCode": 202}

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(call["Payload"]) for call in self.invocations]


Outcome = LaunchResult | BaseException | Callable[[RunTaskRequest], LaunchResult]


class FakeLauncher:
    """Records every RunTask request; answers from a script (default: a fresh task per call)."""

    def __init__(self, *outcomes: Outcome, cluster_arn: str = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mm-scorers"):
        self.script: list[Outcome] = list(outcomes)
        self.requests: list[RunTaskRequest] = []
        self.cluster_arn = cluster_arn
        self.tasks_by_token: dict[str, str] = {}
        self.stops: list[dict[str, str]] = []
        self.stop_error: Exception | None = None

    def stop_task(self, *, cluster: str, task_arn: str, reason: str) -> None:
        if self.stop_error is not None:
            raise self.stop_error
        self.stops.append({"cluster": cluster, "task_arn": task_arn, "reason": reason})

    def run_task(self, request: RunTaskRequest) -> LaunchResult:
        self.requests.append(request)
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, BaseException):
            raise outcome
        if callable(outcome):
            return outcome(request)
        if outcome is not None:
            return outcome
        # Like ECS: the same clientToken returns the same task.
        task_arn = self.tasks_by_token.setdefault(
            request.client_token, f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/mm-scorers/{uuid.uuid4().hex}"
        )
        return LaunchResult(task_arn=task_arn, cluster_arn=self.cluster_arn)

    @property
    def tokens(self) -> list[str]:
        return [request.client_token for request in self.requests]


class FakeTokenProvider:
    def __init__(self, token: str = SECRET_TOKEN, error: Exception | None = None) -> None:
        self.token = token
        self.error = error
        self.calls = 0

    def get_token(self, force_refresh: bool = False) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.token


def captured_logger() -> tuple[Logger, io.StringIO]:
    """A Powertools Logger writing JSON lines into a buffer (unique service: no handler sharing)."""
    buffer = io.StringIO()
    logger = Logger(service=f"challenge-test-{uuid.uuid4().hex[:8]}", logger_handler=logging.StreamHandler(buffer))
    return logger, buffer


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def env_of(request: RunTaskRequest) -> dict[str, str]:
    overrides = request.kwargs["overrides"]["containerOverrides"][0]
    return {item["name"]: item["value"] for item in overrides["environment"]}


def iter_strings(value: Any) -> Iterator[str]:
    """Every string inside a nested structure (to scan for a leaked secret)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from iter_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_strings(item)


def processor_env(status_table: str, **extra: str) -> dict[str, str]:
    """The challenge processor's environment in these tests (`ChallengeProcessorSettings` variables)."""
    return {
        "ENVIRONMENT_NAME": "dev",
        "CHALLENGE_ID": CHALLENGE_ID,
        "CHALLENGE_CONFIG_PARAMETER": PARAMETER_NAME,
        "STATUS_TABLE_NAME": status_table,
        "TOKEN_PARAMETER_NAME": TOKEN_PARAMETER_NAME,
        "MAX_RECEIVE_COUNT": "3",
        "LAUNCH_LEASE_SECONDS": "120",
        "ALLOWED_URL_HOSTS": "topcoder-submissions.s3.amazonaws.com",
        **capacity_settings_env(CAPACITY_TABLE),
        **extra,
    }


@dataclass
class Fakes:
    """The processor's outside world as fakes (SSM holding the config and the caps, ECS, the token provider, the
    metrics, a captured logger) and the real processor built over them, on the test clock."""

    ssm: FakeSsm
    launcher: FakeLauncher
    metrics: RecordingMetrics
    tokens: FakeTokenProvider
    logger: Logger
    logs: io.StringIO

    @classmethod
    def with_config(cls, config: dict[str, Any]) -> Fakes:
        ssm = FakeSsm()
        ssm.put(PARAMETER_NAME, config)
        ssm.put(CAPACITY_PARAMETER_NAME, capacity_document())
        logger, logs = captured_logger()
        return cls(ssm, FakeLauncher(), RecordingMetrics(), FakeTokenProvider(), logger, logs)

    def processor(
        self,
        settings: ChallengeProcessorSettings,
        clock: Clock,
        *,
        sqs: FakeSqs | None = None,
        lambda_: FakeLambda | None = None,
    ) -> ChallengeProcessor:
        """Over the moto tables; pacing waits advance the test clock."""
        return ChallengeDependencies(
            settings,
            metrics=self.metrics,
            logger=self.logger,
            ssm_client=self.ssm,
            lambda_client=lambda_,
            launcher=self.launcher,  # type: ignore[arg-type]
            token_provider_factory=lambda: self.tokens,
            sqs_client=sqs or FakeSqs(),
            clock=clock,
            config_clock=clock,
            sleep=FakeSleep(clock.advance),
        ).processor
