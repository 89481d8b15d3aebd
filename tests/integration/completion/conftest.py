"""Completion integration fixtures: the real handler, StatusStore on a moto table, and fakes or the stand-in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from completion_lambda import handler as completion_handler
from completion_lambda import wiring as completion_wiring
from completion_lambda.observability import logger
from completion_lambda.reporting import ReviewApi
from completion_lambda.service import ConfigSource
from completion_lambda.wiring import CompletionDependencies
from infrastructure.config import load_environment
from infrastructure.wiring import CHALLENGE_ID_PLACEHOLDER, ResourceRefs, WiringPlan
from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_capacity.store import CapacityStore
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import started_by
from mm_contracts.ports import MetricsSink
from mm_contracts.settings import CompletionSettings, TimeoutSweeperSettings
from sweeper_lambda import wiring as sweeper_wiring
from sweeper_lambda.wiring import SweeperDependencies
from tests.builders import ACCOUNT, REGION, ecs_task_stopped_event, new_uuid
from tests.conftest import CAPACITY_TABLE, Clock
from tests.fakes.metrics import RecordingMetrics
from tests.unit.completion.fakes import CHALLENGE_ID, FakeConfigSource, FakeReviewApi

ENVIRONMENT = "example"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mm-scorers"
# The single phase of the test challenge's config (no `phases`: its `testType`, provisional): a task that names
# no phase is a run of this phase.
DEFAULT_PHASE = ScoringPhase.PROVISIONAL
# The wiring plan of the example environment, as the stacks and the local pipeline use it: the functions' settings
# and names come from it, and a test changes only the values it names (`_with`).
PLAN = WiringPlan(load_environment(ENVIRONMENT))
REFS = ResourceRefs(
    sns_topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:mm-{ENVIRONMENT}-submissions",
    challenge_table_name=f"mm-{ENVIRONMENT}-challenges",
    status_table_name="mm-test-status",
    audit_queue_url=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/mm-{ENVIRONMENT}-audit",
    capacity_table_name=CAPACITY_TABLE,
)
CAPACITY_PARAMETER = PLAN.capacity_parameter()
CHALLENGE_CONFIG_PREFIX = PLAN.completion_settings(REFS).challenge_config_parameter_prefix
QUEUE_NAME_TEMPLATE = PLAN.names.challenge_queue(CHALLENGE_ID_PLACEHOLDER)
COMPLETION_FUNCTION = PLAN.names.completion_function


def _with(settings: Any, **updates: Any) -> Any:
    """A settings copy with the test's values, validated again (as the local pipeline's provisioning does)."""
    return type(settings).model_validate({**settings.model_dump(), **updates})


def create_auth0_secret() -> str:
    """The Auth0 client credentials an AUTH0_PROXY token provider reads (moto Secrets Manager); returns its ARN."""
    response = aws_clients.client("secretsmanager").create_secret(
        Name="mm-processor/auth0",
        SecretString=json.dumps(
            {
                "client_id": "mm-processor-client",
                "client_secret": "s3cr3t-client-secret",
                "auth0_url": "https://topcoder-dev.auth0.com/oauth/token",
                "audience": "https://m2m.topcoder-dev.com/",
            }
        ),
    )
    return str(response["ARN"])


def put_environment_capacity(**caps: Any) -> None:
    """The environment's caps parameter (camelCase JSON, as CDK writes it)."""
    aws_clients.client("ssm").put_parameter(
        Name=CAPACITY_PARAMETER, Value=json.dumps(caps), Type="String", Overwrite=True
    )


def rid(submission_id: str, phase: ScoringPhase = DEFAULT_PHASE) -> str:
    """The status-table key of a run of `submission_id` (decision 084)."""
    return run_id(submission_id, phase)


def task_arn() -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/mm-scorers/{new_uuid().replace('-', '')}"


def task_environment(
    submission_id: str,
    *,
    challenge_id: str = CHALLENGE_ID,
    phase: ScoringPhase | None = DEFAULT_PHASE,
    overrides: dict[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """The overrides the challenge processor sets (task contract); `phase=None`: a task that names no phase.
    `overrides`: variables by their task names (`TaskEnv` values), added last."""
    phase_env = {TaskEnv.PHASE.value: phase.value} if phase is not None else {}
    return {
        TaskEnv.SUBMISSION_ID.value: submission_id,
        TaskEnv.CHALLENGE_ID.value: challenge_id,
        **phase_env,
        TaskEnv.CORRELATION_ID.value: f"submission.notification.create-0-{abs(hash(submission_id)) % 10_000}",
        **extra,
        **(overrides or {}),
    }


def stopped_event(submission_id: str, arn: str, *, cluster_arn: str = CLUSTER_ARN, **kwargs: Any) -> dict[str, Any]:
    """A STOPPED event of a task this pipeline started for `submission_id`."""
    kwargs.setdefault("environment", task_environment(submission_id))
    kwargs.setdefault("started_by", started_by(ENVIRONMENT, CHALLENGE_ID))
    return ecs_task_stopped_event(task_arn=arn, cluster_arn=cluster_arn, **kwargs)


def completion_settings(
    status_table: str, api_url: str | None = "http://127.0.0.1:9/v5", review_api_url: str | None = None
) -> CompletionSettings:
    """The plan's completion settings with the test's API stand-ins; no challenge queue template (a start failure
    is not relaunched and admitted runs are not sent) unless a test sets one."""
    settings: CompletionSettings = _with(
        PLAN.completion_settings(replace(REFS, status_table_name=status_table)),
        submission_api_url=api_url,
        review_api_url=review_api_url,
        report_lease_seconds=120,
        challenge_queue_name_template=None,
    )
    return settings


@dataclass
class Completion:
    """The completion handler wired to a moto status table and replaceable ports."""

    store: StatusStore
    api: Any
    config: Any
    metrics: Any
    clock: Clock
    context: Any

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return completion_handler.handler(event, self.context)

    def launched(
        self, submission_id: str | None = None, *, arn: str | None = None, phase: ScoringPhase = DEFAULT_PHASE
    ) -> tuple[str, str]:
        """A run in LAUNCHED state (as the challenge processor leaves it)."""
        submission_id = submission_id or new_uuid()
        arn = arn or task_arn()
        launch_task(self.store, submission_id, arn, CLUSTER_ARN, phase=phase)
        return submission_id, arn

    def record(self, submission_id: str, phase: ScoringPhase = DEFAULT_PHASE) -> LifecycleRecord:
        record = self.store.get(rid(submission_id, phase))
        assert record is not None
        return record


def routed(submission_id: str, *, offset: int = 100, platform: Platform = Platform.V5) -> RoutedSubmission:
    """A routed submission of the test challenge, as the router would publish it."""
    return RoutedSubmission(
        platform=platform,
        submission_id=submission_id,
        challenge_id=CHALLENGE_ID,
        member_id=40_158_994,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        correlation_id=f"submission.notification.create-0-{offset}",
        source=KafkaCoordinates(topic="submission.notification.create", partition=0, offset=offset),
        routed_at=datetime.now(tz=UTC),
    )


def launch_task(
    store: StatusStore,
    submission_id: str,
    arn: str,
    cluster_arn: str,
    timeout: int = 3600,
    *,
    phase: ScoringPhase = DEFAULT_PHASE,
    platform: Platform = Platform.V5,
) -> None:
    submission = routed(submission_id, platform=platform)
    claim = store.claim_launch(submission, phase=phase, scorer_type="example-scorer", lease_seconds=120)
    assert claim.granted
    assert store.mark_launched(
        rid(submission_id, phase), attempt=claim.attempt, task_arn=arn, cluster_arn=cluster_arn, timeout_seconds=timeout
    )


def install_completion(
    status_table: str,
    clock: Clock,
    context: Any,
    *,
    api: ReviewApi,
    config: ConfigSource | None = None,
    metrics: MetricsSink | None = None,
    api_url: str = "http://127.0.0.1:9/v5",
    **extra: Any,
) -> Completion:
    store = StatusStore(status_table, clock=clock)
    config = config or FakeConfigSource()
    sink = metrics if metrics is not None else RecordingMetrics()
    completion_wiring.use_dependencies(
        CompletionDependencies(
            completion_settings(status_table, api_url),
            store=store,
            config_source=config,
            review_api=api,
            metrics_sink=sink,
            **extra,
        )
    )
    return Completion(store=store, api=api, config=config, metrics=sink, clock=clock, context=context)


@pytest.fixture
def completion(status_table: str, clock: Clock, lambda_context: Any) -> Iterator[Completion]:
    """Handler with a fake Submission API and a fake config source."""
    yield install_completion(status_table, clock, lambda_context, api=FakeReviewApi())
    completion_wiring.use_dependencies(None)


def sweeper_settings_for(status_table: str, **values: Any) -> TimeoutSweeperSettings:
    """The plan's sweeper settings, but no ECS cluster to list (a test that scans tasks names its clusters) and the
    settings model's own orphan settle period (what the task-scan tests count with), then the test's `values`."""
    test_values: dict[str, Any] = {
        "ecs_cluster_arns": (),
        "orphan_settle_seconds": TimeoutSweeperSettings.model_fields["orphan_settle_seconds"].default,
        **values,
    }
    settings: TimeoutSweeperSettings = _with(
        PLAN.sweeper_settings(replace(REFS, status_table_name=status_table)), **test_values
    )
    return settings


@pytest.fixture
def sweeper_settings(status_table: str, capacity_table: str) -> TimeoutSweeperSettings:
    """The sweeper's settings, with the capacity table and the environment's caps in place (its capacity passes
    then find nothing to do unless a test sets runs up)."""
    put_environment_capacity(maxRunningTasks=20)
    return sweeper_settings_for(status_table)


class FakeLambda:
    """The sweeper's Lambda client: records `invoke` calls. Asynchronous as Lambda's Event invocations are:
    `run_pending()` then hands each accepted payload to `deliver` (the completion handler)."""

    def __init__(self, deliver: Callable[[dict[str, Any]], Any] | None = None, status_code: int = 202) -> None:
        self.deliver = deliver
        self.status_code = status_code
        self.calls: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.status_code == 202:
            self._pending.append(json.loads(kwargs["Payload"]))
        return {"StatusCode": self.status_code}

    def run_pending(self) -> int:
        pending, self._pending = self._pending, []
        for event in pending:
            if self.deliver is not None:
                self.deliver(event)
        return len(pending)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(call["Payload"]) for call in self.calls]


@pytest.fixture
def install_sweeper(sweeper_settings: TimeoutSweeperSettings) -> Iterator[Any]:
    def install(
        store: StatusStore,
        ecs: Any,
        metrics: MetricsSink,
        lambda_client: Any | None = None,
        *,
        config_source: ConfigSource | None = None,
        capacity_store: CapacityStore | None = None,
        sqs: Any | None = None,
        **settings: Any,
    ) -> None:
        sweeper_wiring.use_dependencies(
            SweeperDependencies(
                sweeper_settings.model_copy(update=settings),
                store=store,
                ecs=ecs,
                lambda_client=lambda_client if lambda_client is not None else FakeLambda(),
                metrics_sink=metrics,
                config_source=config_source or FakeConfigSource(),
                capacity_store=capacity_store,
                sqs=sqs,
            )
        )

    yield install
    sweeper_wiring.use_dependencies(None)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the functions' Powertools logger writes (at DEBUG), plus stdlib loggers via the root."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    previous_stream = handler.setStream(buffer)  # type: ignore[attr-defined]
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    root_handler = logging.StreamHandler(buffer)
    root = logging.getLogger()
    previous_root_level = root.level
    root.addHandler(root_handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        handler.setStream(previous_stream)  # type: ignore[attr-defined]
        logger.setLevel(previous_level)
        root.removeHandler(root_handler)
        root.setLevel(previous_root_level)


# ---------------------------------------------------------------- moto ECS
@dataclass(frozen=True)
class MotoTask:
    cluster_arn: str
    task_arn: str


def moto_ecs_task(
    *, environment: dict[str, str], tags: dict[str, str], started_by_value: str = started_by(ENVIRONMENT, CHALLENGE_ID)
) -> MotoTask:
    """Run a Fargate task in moto (it needs a VPC with DNS hostnames and a security group for awsvpc)."""
    ec2 = aws_clients.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="mm-scorer", Description="scorer", VpcId=vpc)["GroupId"]
    ecs = aws_clients.client("ecs")
    cluster_arn = ecs.create_cluster(clusterName="mm-scorers")["cluster"]["clusterArn"]
    ecs.register_task_definition(
        family="mm-scorer-example",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[{"name": "scorer", "image": "scorer:latest", "essential": True, "memory": 2048}],
    )
    task = ecs.run_task(
        cluster=cluster_arn,
        taskDefinition="mm-scorer-example",
        launchType="FARGATE",
        startedBy=started_by_value,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
        overrides={
            "containerOverrides": [
                {"name": "scorer", "environment": [{"name": k, "value": v} for k, v in environment.items()]}
            ]
        },
        tags=[{"key": k, "value": v} for k, v in tags.items()],
    )["tasks"][0]
    return MotoTask(cluster_arn=cluster_arn, task_arn=task["taskArn"])
