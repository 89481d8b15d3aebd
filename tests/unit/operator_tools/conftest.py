"""An environment deployed into moto from its wiring plan (`local_pipeline.provision`, as the emulator does it):
`example` (v5, one run per submission) and `dev` with a smoke block (v6, EXAMPLE and PROVISIONAL per submission)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from infrastructure.config import CONFIG_DIR, EnvironmentConfig, load_environment, parse_environment
from infrastructure.wiring import WiringPlan
from local_pipeline.provision import LocalResources, TopcoderEndpoints, provision
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from operator_tools.clients import AwsClients
from tests.builders import new_uuid

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
IMAGE_DENOISE = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f602"
CLOSED = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f603"
# The v6 smoke's test submission: a 14-character nanoid, as review-api-v6 gives submissions.
V6_SMOKE_SUBMISSION = "SmokeV6sub0001"


class _InProcessAws:
    """What `provision` needs of `LocalAws`: clients, here moto's in-process mock."""

    def __init__(self, region: str) -> None:
        self.region = region

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]


def register_task_definitions(config: EnvironmentConfig) -> None:
    """Register each active challenge's scorer family up to the revision its imported ARN names."""
    ecs = boto3.client("ecs", region_name=config.region)
    for challenge in config.challenges:
        revision = int(challenge.task_definition_arn.rsplit(":", 1)[1])
        for _ in range(revision):
            ecs.register_task_definition(
                family=challenge.task_definition_family,
                containerDefinitions=[{"name": challenge.scorer_container_name, "image": "scorer:1", "memory": 512}],
            )


@dataclass
class Deployed:
    plan: WiringPlan
    resources: LocalResources
    clients: AwsClients

    def client(self, service: str) -> Any:
        return self.clients.client(service)


def raw_v6_environment(**smoke: Any) -> dict[str, Any]:
    """`dev` (v6) with a smoke block on Route Planner (EXAMPLE and PROVISIONAL on every new submission)."""
    raw: dict[str, Any] = json.loads((CONFIG_DIR / "dev.json").read_text())
    raw["smoke"] = {
        "challengeId": ROUTE_PLANNER,
        "submissionId": V6_SMOKE_SUBMISSION,
        "memberId": 88770025,
        "url": f"https://topcoder-submissions.s3.amazonaws.com/mm/{V6_SMOKE_SUBMISSION}.zip",
        **smoke,
    }
    return raw


def deploy(config: EnvironmentConfig) -> Deployed:
    plan = WiringPlan(config)
    resources = provision(
        plan,
        _InProcessAws(config.region),  # type: ignore[arg-type]
        TopcoderEndpoints(
            "https://api.topcoder-dev.com/v5",
            "https://auth.example/token",
            "not-a-real-token",
            "https://api.topcoder-dev.com/v6",
        ),
    )
    register_task_definitions(config)
    return Deployed(plan, resources, AwsClients(region=config.region))


@pytest.fixture
def deployed(aws: None) -> Deployed:
    return deploy(load_environment("example"))


@pytest.fixture
def deployed_v6(aws: None) -> Deployed:
    return deploy(parse_environment(raw_v6_environment()))


def routed_submission(submission_id: str | None = None, platform: Platform = Platform.V5) -> RoutedSubmission:
    """A routed submission as the router hands it on (a new challenge id each time), for status-table tests."""
    topic = V6_SUBMISSION_TOPIC if platform is Platform.V6 else "submission.notification.create"
    source = KafkaCoordinates(topic=topic, partition=0, offset=7)
    return RoutedSubmission(
        platform=platform,
        submission_id=submission_id or new_uuid(),
        challenge_id=new_uuid(),
        member_id=40158994,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/x.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at="2026-03-02T10:15:00Z",
    )
