"""The matrix's functions, each built as its own wiring builds it (`<Function>Dependencies`), on the world's
clients (faults installed), fakes and virtual clock."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from challenge_lambda.launcher import EcsLauncher
from challenge_lambda.processor import ChallengeProcessor
from challenge_lambda.wiring import ChallengeDependencies
from completion_lambda.wiring import CompletionDependencies
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.status_store import StatusStore
from mm_contracts.models.phase import Platform
from mm_contracts.names import challenge_config_parameter_name, challenge_config_parameter_prefix
from mm_contracts.settings import ChallengeProcessorSettings, CompletionSettings, RouterSettings, TimeoutSweeperSettings
from router_lambda.routing import SubmissionRouter
from router_lambda.wiring import RouterDependencies
from sweeper_lambda.sweep import Sweeper
from sweeper_lambda.wiring import SweeperDependencies
from tests.fakes.topcoder import BASE_URL, V6_BASE_URL
from tests.matrix.deployment import (
    ALLOWED_HOST,
    AUDIT_MARKS_TABLE,
    CAPACITY_PARAMETER,
    CAPACITY_TABLE,
    CHALLENGE_TABLE,
    CLUSTER_ARN,
    COMPLETION_FUNCTION,
    ENVIRONMENT,
    REGION,
    STATUS_TABLE,
    queue_name,
)

if TYPE_CHECKING:
    from tests.matrix.world import ChallengeSide, World


def processor_settings(world: World, side: ChallengeSide) -> ChallengeProcessorSettings:
    return ChallengeProcessorSettings(
        environment_name=ENVIRONMENT,
        challenge_id=side.challenge_id,
        challenge_config_parameter=challenge_config_parameter_name(side.challenge_id),
        status_table_name=STATUS_TABLE,
        max_receive_count=world.timings.max_receive_count,
        launch_lease_seconds=world.timings.launch_lease_seconds,
        allowed_url_hosts=(ALLOWED_HOST,),
        completion_function_name=COMPLETION_FUNCTION,
        capacity_table_name=CAPACITY_TABLE,
        capacity_parameter_name=CAPACITY_PARAMETER,
        capacity_cache_seconds=world.timings.capacity_cache_seconds,
        challenge_queue_url=side.queue.url,
    )


def challenge_processor(world: World, settings: ChallengeProcessorSettings) -> ChallengeProcessor:
    return ChallengeDependencies(
        settings,
        metrics=world.metrics,
        logger=Logger(service="challenge-processor"),
        ssm_client=world.ssm,
        dynamodb_client=world.ddb,
        lambda_client=ProcessorLambda(world),
        sqs_client=world.sqs,
        launcher=EcsLauncher(world.ecs),
        clock=world.clock,
        config_clock=world.clock,
        sleep=world.clock.sleep,  # pacing waits for the next second's RunTask token in virtual time
    ).processor


def completion_dependencies(world: World) -> CompletionDependencies:
    """The completion function's dependencies as its wiring builds them, on the world's clients and clock."""
    settings = CompletionSettings(
        environment_name=ENVIRONMENT,
        status_table_name=STATUS_TABLE,
        challenge_config_parameter_prefix="/mm-processor/challenges",
        submission_api_url=BASE_URL,
        review_api_url=V6_BASE_URL,
        report_lease_seconds=world.timings.report_lease_seconds,
        capacity_table_name=CAPACITY_TABLE,
        capacity_parameter_name=CAPACITY_PARAMETER,
        capacity_cache_seconds=world.timings.capacity_cache_seconds,
        config_cache_seconds=world.timings.config_cache_seconds,
        challenge_queue_name_template=queue_name("{challenge_id}"),
    )
    return CompletionDependencies(
        settings,
        store=StatusStore(STATUS_TABLE, clock=world.clock, dynamodb_client=world.ddb),
        config_source=ChallengeConfigLoader(
            challenge_config_parameter_name, settings.config_cache_seconds, world.ssm, clock=world.clock
        ),
        token_provider=world.tokens,
        review_api=world.review_client,
        summations_api=world.summations_client,
        ecs=world.ecs,
        metrics_sink=world.metrics,
        sqs=world.sqs,
        capacity_store=world.capacity_store(),
        environment_capacity=world.environment_capacity(),
    )


def sweeper(world: World) -> Sweeper:
    """The sweeper as its handler builds it (`SweeperDependencies`), on the world's clients and clock."""
    settings = TimeoutSweeperSettings(
        environment_name=ENVIRONMENT,
        status_table_name=STATUS_TABLE,
        completion_function_name=COMPLETION_FUNCTION,
        reconcile_grace_seconds=world.timings.reconcile_grace_seconds,
        ecs_cluster_arns=(CLUSTER_ARN,),
        capacity_table_name=CAPACITY_TABLE,
        capacity_parameter_name=CAPACITY_PARAMETER,
        capacity_cache_seconds=world.timings.capacity_cache_seconds,
        challenge_config_parameter_prefix=challenge_config_parameter_prefix(),
        config_cache_seconds=world.timings.config_cache_seconds,
        challenge_queue_name_template=queue_name("{challenge_id}"),
    )
    store = StatusStore(STATUS_TABLE, clock=world.clock, dynamodb_client=world.ddb)
    deps = SweeperDependencies(
        settings,
        store=store,
        ecs=world.ecs,
        lambda_client=world,
        metrics_sink=world.metrics,
        capacity_store=world.capacity_store(),
        config_source=ChallengeConfigLoader(
            challenge_config_parameter_name, settings.config_cache_seconds, world.ssm, clock=world.clock
        ),
        environment_capacity=world.environment_capacity(),
        sqs=world.sqs,
        ssm=world.ssm,
    )
    return deps.sweeper()


def router(world: World) -> SubmissionRouter:
    settings = RouterSettings(
        environment_name=ENVIRONMENT,
        sns_topic_arn=f"arn:aws:sns:{REGION}:123456789012:mm-{ENVIRONMENT}-submissions",
        challenge_table_name=CHALLENGE_TABLE,
        audit_queue_url=f"https://sqs.{REGION}.amazonaws.com/123456789012/mm-{ENVIRONMENT}-audit",
        audit_marks_table_name=AUDIT_MARKS_TABLE,
        allowed_url_hosts=(ALLOWED_HOST,),
        platforms=(Platform.V5, Platform.V6),
    )

    return RouterDependencies(
        settings,
        metrics=world.metrics,
        clock=world.clock,
        sleep=world.clock.sleep,
        jitter=lambda: 0.5,
        sns=lambda: world.sns,
        sqs=lambda: world.audit,
        dynamodb=lambda: world.ddb,
    ).router


class ProcessorLambda:
    """The challenge processor's Lambda client: its report-due invokes of the completion function (async)."""

    def __init__(self, world: World) -> None:
        self._world = world

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        world = self._world
        world.report_due_invokes.append(json.loads(kwargs["Payload"]))
        if world.lose_report_due_invokes > 0:  # accepted (202), never run: only the sweeper can re-drive it
            world.lose_report_due_invokes -= 1
            return {"StatusCode": 202}
        return world.invoke(**kwargs)
