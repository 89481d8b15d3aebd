"""The capacity store on moto (the `capacity_table` fixture is `tests/conftest.py`'s), and builders for the runs
that wait in it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_capacity.store import AdmissionLimits, CapacityStore, WaitEntry
from mm_contracts.models.capacity import ChallengeCapacity
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from tests.builders import new_uuid
from tests.conftest import Clock

CHALLENGE_A = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"
CHALLENGE_B = "6b1d1e68-9c81-4b3c-8a4f-2d3e4f5a6b7c"
CHALLENGE_C = "7c2e2f79-ad92-4c4d-9b5a-3e4f5a6b7c8d"


@pytest.fixture
def capacity(capacity_table: str, status_table: str, clock: Clock) -> CapacityStore:
    return CapacityStore(capacity_table, status_table, ttl_days=90, clock=clock)


@pytest.fixture
def status(status_table: str, clock: Clock) -> StatusStore:
    return StatusStore(status_table, ttl_days=90, clock=clock)


_V6_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def submission(
    challenge_id: str = CHALLENGE_A, *, member_id: int = 1001, platform: Platform = Platform.V5, rerun: bool = False
) -> RoutedSubmission:
    topic = "marathonmatch.submission.received" if platform is Platform.V6 else "submission.notification.create"
    source = KafkaCoordinates(topic=topic, partition=0, offset=7)
    if platform is Platform.V6:
        raw = new_uuid().replace("-", "")
        submission_id = "".join(_V6_ALPHABET[int(raw[i : i + 2], 16) % 64] for i in range(0, 28, 2))
    else:
        submission_id = new_uuid()
    return RoutedSubmission(
        platform=platform,
        submission_id=submission_id,
        challenge_id=challenge_id,
        member_id=member_id,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at=datetime(2027, 1, 15, tzinfo=UTC),
        rerun=rerun,
    )


PHASE = ScoringPhase.PROVISIONAL


def config(challenge_id: str, *, cpu: int | None = None, **capacity: Any) -> ChallengeConfig:
    """A challenge's config with the capacity settings given (the scorer's fields fixed)."""
    return ChallengeConfig(
        challenge_id=challenge_id,
        scorer_type="java",
        ecs_cluster="mm-scorers",
        ecs_task_definition="mm-scorer",
        scorer_container_name="scorer",
        platform=Platform.V6,
        cpu=cpu,
        capacity=ChallengeCapacity(**capacity),
    )


CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef"


def limits(challenge_cap: int = 5, *, env_cap: int = 20, phase_cap: int | None = None, **extra: Any) -> AdmissionLimits:
    return AdmissionLimits(
        challenge_cap=challenge_cap,
        phase_cap=phase_cap,
        env_cap=env_cap,
        env_cpu_cap_units=extra.get("env_cpu_cap_units"),
        cpu_units=extra.get("cpu_units", 1024),
    )


def enqueue(capacity: CapacityStore, sub: RoutedSubmission, phase: ScoringPhase = PHASE, rank: int = 1) -> WaitEntry:
    result = capacity.enqueue(sub, phase=phase, scorer_type="java", timeout_seconds=600, priority_rank=rank)
    assert result.created
    entries = {entry.run_id: entry for entry in capacity.queue_entries(sub.challenge_id)}
    return entries[run_id(sub.submission_id, phase)]


def current(status: StatusStore, run: str) -> LifecycleRecord:
    record = status.get(run)
    assert record is not None
    return record


def raw_item(table: str, key: dict[str, Any]) -> dict[str, Any]:
    return aws_clients.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
