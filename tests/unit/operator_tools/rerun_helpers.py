"""Runs of the v6 `dev` environment in moto for the rerun and dispatch-system tests: final (scored and reported),
launched, or absent; the CLI called with `--env dev`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infrastructure.wiring import ResourceNames
from mm_adapters.status_store import StatusStore
from mm_capacity.store import CapacityStore
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from operator_tools.cli import main
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed, routed_submission

NAMES = ResourceNames("dev")
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"
CHANGE = ("--yes", "--reason", "scorer fixed", "--env", "dev")
_BASE = datetime(2027, 1, 15, 10, 0, tzinfo=UTC)


def cli(*argv: str) -> int:
    return main([*argv, *CHANGE])


def status_store(deployed: Deployed) -> StatusStore:
    return StatusStore(NAMES.status_table, dynamodb_client=deployed.client("dynamodb"))


def capacity_store(deployed: Deployed) -> CapacityStore:
    return CapacityStore(NAMES.capacity_table, NAMES.status_table, dynamodb_client=deployed.client("dynamodb"))


def submission_id(n: int) -> str:
    return f"subm{n:010d}"  # a 14-character v6 nanoid


def scored(
    deployed: Deployed,
    n: int,
    member_id: int,
    *,
    phase: ScoringPhase = ScoringPhase.PROVISIONAL,
    minutes: int = 0,
    reported: bool = True,
) -> str:
    """Submission `n` of `member_id` (made `minutes` after the base time): its `phase` run SUCCEEDED (reported)."""
    store = status_store(deployed)
    routed = routed_submission(submission_id(n), Platform.V6).model_copy(
        update={"challenge_id": ROUTE_PLANNER, "member_id": member_id, "created": _BASE + timedelta(minutes=minutes)}
    )
    claim = store.claim_launch(routed, phase=phase, scorer_type="route-planner", lease_seconds=60)
    assert claim.granted
    the_run = run_id(routed.submission_id, phase)
    task = f"arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/{n:032x}"
    assert store.mark_launched(
        the_run, attempt=claim.attempt, task_arn=task, cluster_arn=CLUSTER_ARN, timeout_seconds=600
    )
    outcome = Outcome(
        code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exit 0", exit_code=0, task_arn=task
    )
    store.record_outcome(the_run, ROUTE_PLANNER, outcome, report_required=True)
    if reported:
        assert store.claim_report(the_run, lease_seconds=60).granted
        assert store.mark_reported(the_run, response_summary="201")
    return the_run


def launched(deployed: Deployed, n: int, member_id: int, phase: ScoringPhase = ScoringPhase.PROVISIONAL) -> str:
    store = status_store(deployed)
    routed = routed_submission(submission_id(n), Platform.V6).model_copy(
        update={"challenge_id": ROUTE_PLANNER, "member_id": member_id}
    )
    claim = store.claim_launch(routed, phase=phase, scorer_type="route-planner", lease_seconds=60)
    the_run = run_id(routed.submission_id, phase)
    task = f"arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/{n:032x}"
    assert store.mark_launched(
        the_run, attempt=claim.attempt, task_arn=task, cluster_arn=CLUSTER_ARN, timeout_seconds=600
    )
    return the_run
