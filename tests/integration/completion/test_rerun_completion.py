"""A rerun end to end (decision 106): a scored run reopened WAITING is admitted by the dispatcher, claimed with the
next launch attempt (a new RunTask clientToken), and its outcome recorded and reported once; a STOPPED event of the
earlier task, late or repeated, never settles it, neither while it waits nor once it launched.

Real completion handler, StatusStore and CapacityStore on moto (`capacity_world`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from mm_capacity.dispatcher import Admitted, Dispatcher, admitted_message_body
from mm_capacity.store import RerunOutcome
from mm_contracts.models.audit import OperatorChange
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import Platform
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import client_token, started_by
from tests.conftest import Clock
from tests.integration.completion.capacity_world import World, capacity_world, config_of
from tests.integration.completion.conftest import (
    CLUSTER_ARN,
    DEFAULT_PHASE,
    ENVIRONMENT,
    stopped_event,
    task_arn,
    task_environment,
)
from tests.unit.completion.fakes import CHALLENGE_ID

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")
LOGGER = logging.getLogger("test.rerun")


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock, lambda_context: Any) -> Iterator[World]:
    yield from capacity_world(status_table, capacity_table, clock, lambda_context)


def stopped(world: World, sub: RoutedSubmission, arn: str, attempt: int | None, **kwargs: Any) -> dict[str, Any]:
    """The task's STOPPED event; `attempt` is its MM_LAUNCH_ATTEMPT (None: a task from before that variable)."""
    environment = task_environment(sub.submission_id, challenge_id=sub.challenge_id)
    if attempt is not None:
        environment[TaskEnv.LAUNCH_ATTEMPT.value] = str(attempt)
    if sub.platform is Platform.V6:
        environment[TaskEnv.PLATFORM.value] = "v6"
    return stopped_event(
        sub.submission_id,
        arn,
        environment=environment,
        started_by=started_by(ENVIRONMENT, sub.challenge_id),
        **kwargs,
    )


def record_of(world: World, rid: str) -> LifecycleRecord:
    record = world.status.get(rid)
    assert record is not None
    return record


def rerun(world: World, sub: RoutedSubmission, observed: LifecycleRecord) -> None:
    config = world.configs.get(sub.challenge_id)
    result = world.capacity.queue_rerun(
        sub.model_copy(update={"rerun": True, "phase": DEFAULT_PHASE}),
        phase=DEFAULT_PHASE,
        scorer_type=config.scorer_type,
        timeout_seconds=3600,
        priority_rank=config.capacity.rank(DEFAULT_PHASE, rerun=True),
        change=OperatorChange(
            actor="alice@ops-host",
            at=datetime.fromtimestamp(world.clock(), tz=UTC),
            action="rerun",
            reason="scorer fixed",
            request_id="0123456789ab",
        ),
        observed=observed,
    )
    assert result.outcome is RerunOutcome.QUEUED


def dispatch(world: World) -> list[Admitted]:
    sent: list[Admitted] = []
    Dispatcher(
        world.capacity,
        environment_capacity=lambda: EnvironmentCapacity(max_running_tasks=1),
        challenge_settings=world.configs.get,
        send=sent.append,
        logger=LOGGER,
    ).dispatch()
    return sent


def reports(world: World, sub: RoutedSubmission) -> int:
    if sub.platform is Platform.V6:
        return world.summations.posts + world.summations.patches
    return len(world.review_api.reviews_for(sub.submission_id))


@pytest.mark.parametrize("platform", [Platform.V5, Platform.V6])
def test_a_rerun_is_admitted_launched_on_the_next_attempt_and_reported_once(world: World, platform: Platform) -> None:
    # Given a run scored and reported (attempt 1, task `first`)
    world.configs.configs[CHALLENGE_ID] = config_of(CHALLENGE_ID, platform=platform)
    sub = world.submission(CHALLENGE_ID, platform=platform)
    rid, first = world.launched(sub)
    assert world.invoke(stopped(world, sub, first, 1, exit_code=1))["disposition"] == "reported"
    assert reports(world, sub) == 1
    world.clock.advance(60)

    # When an operator reruns it
    rerun(world, sub, record_of(world, rid))

    # Then a late STOPPED event of the first task (with or without its attempt) settles nothing while it waits
    for attempt in (1, None):
        result = world.invoke(stopped(world, sub, first, attempt, exit_code=0))
        assert result["disposition"] == "ignored"
    waiting = record_of(world, rid)
    assert waiting.state is SubmissionState.WAITING
    assert waiting.report_status is None
    assert world.holders() == set()
    assert reports(world, sub) == 1

    # When the dispatcher admits it and the processor claims it with the admitted message
    (admitted,) = dispatch(world)
    assert admitted.entry.run_id == rid
    assert world.invoke(stopped(world, sub, first, 1, exit_code=0))["disposition"] == "ignored"  # ADMITTED too
    assert record_of(world, rid).state is SubmissionState.ADMITTED
    message = RoutedSubmission.model_validate_json(admitted_message_body(admitted))
    assert message.rerun
    claim = world.status.claim_launch(message, phase=DEFAULT_PHASE, scorer_type="example-scorer", lease_seconds=120)
    assert claim.granted
    assert claim.attempt == 2
    assert client_token(sub.submission_id, DEFAULT_PHASE.value, 2) != client_token(
        sub.submission_id, DEFAULT_PHASE.value, 1
    )
    second = task_arn()
    assert world.status.mark_launched(rid, attempt=2, task_arn=second, cluster_arn=CLUSTER_ARN, timeout_seconds=3600)

    # Then the first task's event is still ignored once the rerun launched
    for attempt in (1, None):
        assert world.invoke(stopped(world, sub, first, attempt, exit_code=0))["disposition"] == "ignored"
    launched = record_of(world, rid)
    assert (launched.state, launched.task_arn) == (SubmissionState.LAUNCHED, second)
    assert world.holders() == {rid}

    # And the rerun's own task is recorded and reported, once, however often its event arrives
    result = world.invoke(stopped(world, sub, second, 2, exit_code=2))
    assert (result["disposition"], result["outcome"]) == ("reported", "FAILED")
    assert world.invoke(stopped(world, sub, second, 2, exit_code=2))["disposition"] == "duplicate"
    final = record_of(world, rid)
    assert (final.state, final.report_status, final.task_arn, final.exit_code) == (
        SubmissionState.FAILED,
        ReportStatus.REPORTED,
        second,
        2,
    )
    assert reports(world, sub) == 2  # the first run's report and the rerun's, no more
    assert world.holders() == set()
    if platform is Platform.V6:
        assert len(world.summations.summations) == 1  # the phase's summation upserted, not a second one
        # the failed rerun (no summation of its own) updated the run's own summation
        (summation,) = world.summations.summations.values()
        assert (summation["metadata"]["taskArn"], summation["metadata"]["testStatus"]) == (second, "FAILED")


def scorer_posts(world: World, sub: RoutedSubmission, score: float) -> str:
    """The scorer's own summation of the phase (as examples/scorer POSTs it each run): no metadata of ours."""
    summation_id = f"scorer-{len(world.summations.summations)}"
    created = datetime.fromtimestamp(world.clock(), tz=UTC).isoformat().replace("+00:00", "Z")
    world.summations.summations[summation_id] = {
        "id": summation_id,
        "createdAt": created,
        "submissionId": sub.submission_id,
        "aggregateScore": score,
        "isPassing": True,
        DEFAULT_PHASE.summation_flag: True,
        "metadata": {"scorer": "example"},
    }
    return summation_id


def relaunched(world: World, sub: RoutedSubmission, rid: str) -> str:
    """The run reopened by a rerun, admitted and launched on attempt 2: the new task's ARN."""
    world.clock.advance(60)
    rerun(world, sub, record_of(world, rid))
    (admitted,) = dispatch(world)
    message = RoutedSubmission.model_validate_json(admitted_message_body(admitted))
    claim = world.status.claim_launch(message, phase=DEFAULT_PHASE, scorer_type="example-scorer", lease_seconds=120)
    assert claim.granted
    assert claim.attempt == 2
    second = task_arn()
    assert world.status.mark_launched(rid, attempt=2, task_arn=second, cluster_arn=CLUSTER_ARN, timeout_seconds=3600)
    world.clock.advance(60)
    return second


def metadata_of(world: World, summation_id: str) -> dict[str, Any]:
    metadata = world.summations.summations[summation_id].get("metadata")
    assert isinstance(metadata, dict)
    return metadata


def test_a_successful_v6_rerun_describes_the_summation_its_scorer_posted(world: World) -> None:
    # Given a v6 run whose scorer posted its summation, completed and described by the pipeline
    world.configs.configs[CHALLENGE_ID] = config_of(CHALLENGE_ID, platform=Platform.V6, report_on_success=True)
    sub = world.submission(CHALLENGE_ID, platform=Platform.V6)
    rid, first = world.launched(sub)
    earlier = scorer_posts(world, sub, 90.0)
    assert world.invoke(stopped(world, sub, first, 1, exit_code=0))["disposition"] == "reported"
    assert metadata_of(world, earlier)["taskArn"] == first

    # When it is rerun and the new task's scorer posts its own summation
    second = relaunched(world, sub, rid)
    newer = scorer_posts(world, sub, 95.0)
    assert world.invoke(stopped(world, sub, second, 2, exit_code=0))["disposition"] == "reported"

    # Then the new summation carries the new task's metadata; the earlier one keeps its score and its task
    assert (metadata_of(world, newer)["taskArn"], metadata_of(world, newer)["runId"]) == (second, rid)
    assert metadata_of(world, earlier)["taskArn"] == first
    assert world.summations.summations[earlier]["aggregateScore"] == 90.0
    assert world.summations.summations[newer]["aggregateScore"] == 95.0
    assert world.summations.posts == 0


def test_a_successful_v6_rerun_without_a_scorer_summation_never_keeps_the_earlier_score(world: World) -> None:
    world.configs.configs[CHALLENGE_ID] = config_of(CHALLENGE_ID, platform=Platform.V6, report_on_success=True)
    sub = world.submission(CHALLENGE_ID, platform=Platform.V6)
    rid, first = world.launched(sub)
    earlier = scorer_posts(world, sub, 90.0)
    assert world.invoke(stopped(world, sub, first, 1, exit_code=0))["disposition"] == "reported"

    second = relaunched(world, sub, rid)
    assert world.invoke(stopped(world, sub, second, 2, exit_code=0))["disposition"] == "reported"

    # The run's one summation now describes the new task, its score to come (not the earlier task's 90)
    assert len(world.summations.summations) == 1
    summation = world.summations.summations[earlier]
    assert (summation["metadata"]["taskArn"], summation["metadata"]["scoresPending"]) == (second, True)
    assert summation["aggregateScore"] != 90.0
