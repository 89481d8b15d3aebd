"""Helpers of the operator command tests: the `example` environment's stores in moto, runs seeded in them, and the
CLI called with `--env example`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.wiring import ResourceNames
from mm_adapters.status_store import StatusStore
from mm_capacity.store import CapacityStore
from mm_contracts.models.phase import ScoringPhase, run_id
from operator_tools.cli import main
from tests.builders import new_uuid
from tests.unit.operator_tools.conftest import Deployed, routed_submission

NAMES = ResourceNames("example")
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef"
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"


def cli(*argv: str) -> int:
    return main([*argv, "--env", "example"])


def output_json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def status_store(deployed: Deployed) -> StatusStore:
    return StatusStore(NAMES.status_table, dynamodb_client=deployed.client("dynamodb"))


def capacity_store(deployed: Deployed) -> CapacityStore:
    return CapacityStore(NAMES.capacity_table, NAMES.status_table, dynamodb_client=deployed.client("dynamodb"))


def waiting_run(deployed: Deployed, challenge_id: str, member_id: int, *, wait_reason: str = "") -> str:
    """A new submission's PROVISIONAL run, WAITING in the challenge's queue; its run id."""
    submission_id = new_uuid()
    routed = routed_submission(submission_id).model_copy(update={"challenge_id": challenge_id, "member_id": member_id})
    result = capacity_store(deployed).enqueue(
        routed,
        phase=ScoringPhase.PROVISIONAL,
        scorer_type="route-planner",
        timeout_seconds=60,
        priority_rank=1,
        wait_reason=wait_reason,
    )
    assert result.created
    return run_id(submission_id, ScoringPhase.PROVISIONAL)


def launched_run(
    deployed: Deployed, challenge_id: str, member_id: int, *, task_arn: str = TASK_ARN, cluster_arn: str = CLUSTER_ARN
) -> str:
    """A new submission's PROVISIONAL run, LAUNCHED on `task_arn`; its run id."""
    store = status_store(deployed)
    submission_id = new_uuid()
    routed = routed_submission(submission_id).model_copy(update={"challenge_id": challenge_id, "member_id": member_id})
    claim = store.claim_launch(routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", lease_seconds=60)
    the_run = run_id(submission_id, ScoringPhase.PROVISIONAL)
    store.mark_launched(the_run, attempt=claim.attempt, task_arn=task_arn, cluster_arn=cluster_arn, timeout_seconds=600)
    return the_run


def skipped_run(deployed: Deployed, challenge_id: str, member_id: int, reason: str = "no_capacity_for_phase") -> str:
    """A new submission's PROVISIONAL run, FAILED without a task (skipped); its run id."""
    submission_id = new_uuid()
    routed = routed_submission(submission_id).model_copy(update={"challenge_id": challenge_id, "member_id": member_id})
    assert status_store(deployed).record_skipped(
        routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", reason=reason
    )
    return run_id(submission_id, ScoringPhase.PROVISIONAL)
