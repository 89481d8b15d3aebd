"""The fakes of the AWS services moto cannot run, wired to the emulator: the fake Fargate (its events to the
emulated EventBridge, its secrets from the emulated SSM, its tasks' logs beside the functions') and the fake Lambda
(an asynchronous Invoke of the completion function lands where the completion rule's target puts events)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from infrastructure.config import EnvironmentConfig
from infrastructure.wiring import WiringPlan
from local_pipeline.awsenv import LocalAws
from local_pipeline.event_sources import ESM_KEY
from local_pipeline.fargate import FakeFargate
from local_pipeline.lambda_endpoint import FakeLambda
from local_pipeline.provision import LocalResources
from local_pipeline.task_definitions import scorer_task_definitions
from topcoder_standin import TopcoderStandIn

FARGATE_KEY = "local-fargate"  # the fake ECS control plane emitting events
ECS_AGENT_KEY = "local-ecs-agent"  # resolving a task definition's secrets from SSM


def start_fake_fargate(
    aws: LocalAws,
    config: EnvironmentConfig,
    standin: TopcoderStandIn,
    resources: LocalResources,
    *,
    scorer_command: tuple[str, ...],
    log_dir: Path,
    max_running_tasks: int,
    secret_values: Callable[[], list[str]],
) -> FakeFargate:
    """The fake ECS control plane: its events go to the emulated EventBridge, its secrets come from SSM."""
    events = aws.client("events", FARGATE_KEY)
    ssm = aws.client("ssm", ECS_AGENT_KEY)

    def emit(entry: dict[str, Any]) -> None:
        response = events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {response.get('Entries')}")

    def resolve_secret(parameter: str) -> str:
        return str(ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"])

    return FakeFargate(
        cluster_arn=config.ecs.cluster_arn,
        task_definitions=scorer_task_definitions(config, standin, resources.token_parameter_name, scorer_command),
        emit_event=emit,
        resolve_secret=resolve_secret,
        log_dir=log_dir / "tasks",
        counter=aws.counter,
        max_running_tasks=max_running_tasks,
        region=config.region,
        account=config.account,
        secret_values=secret_values,
    ).start()


def start_fake_lambda(aws: LocalAws, plan: WiringPlan, resources: LocalResources) -> FakeLambda:
    """The fake Lambda: an asynchronous Invoke of the completion function lands where its rule's target puts
    events (the same worker, retries and DLQ)."""
    endpoint = FakeLambda(counter=aws.counter).start()
    completion_target = aws.client("sqs", ESM_KEY)
    events_queue_url = resources.completion_events_queue_url

    def deliver_to_completion(payload: bytes) -> None:
        completion_target.send_message(QueueUrl=events_queue_url, MessageBody=payload.decode())

    endpoint.register(plan.names.completion_function, deliver_to_completion)
    return endpoint
