"""The capacity vocabulary: priority ranks, caps validation, and the optional fields the models gained."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mm_contracts.models.capacity import ChallengeCapacity, EnvironmentCapacity, PriorityClass, SupersedePolicy
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, SubmissionState
from mm_contracts.models.phase import Platform, ScoringPhase
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission

CHALLENGE = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"


def test_default_ranks_put_system_first_and_reruns_last() -> None:
    capacity = ChallengeCapacity()
    ranks = [capacity.rank(phase, rerun=False) for phase in (ScoringPhase.SYSTEM, ScoringPhase.PROVISIONAL)]
    ranks += [capacity.rank(ScoringPhase.EXAMPLE, rerun=False), capacity.rank(ScoringPhase.SYSTEM, rerun=True)]
    assert ranks == [0, 1, 2, 3]


def test_a_custom_order_ranks_by_its_position() -> None:
    capacity = ChallengeCapacity.model_validate({"priorityOrder": ["EXAMPLE", "RERUN", "SYSTEM", "PROVISIONAL"]})
    assert capacity.rank(ScoringPhase.EXAMPLE, rerun=False) == 0
    assert capacity.rank(ScoringPhase.EXAMPLE, rerun=True) == 1
    assert capacity.rank(ScoringPhase.PROVISIONAL, rerun=False) == 3


@pytest.mark.parametrize(
    "document",
    [
        {"priorityOrder": ["SYSTEM", "PROVISIONAL", "EXAMPLE"]},
        {"priorityOrder": ["SYSTEM", "SYSTEM", "EXAMPLE", "RERUN"]},
        {"maxRunningTasksPerPhase": {"SYSTEM": -1}},
        {"maxRunningTasks": -1},
        {"supersede": "cancel_everything"},
    ],
    ids=["missing-class", "repeated-class", "negative-phase-cap", "negative-cap", "unknown-policy"],
)
def test_invalid_capacity_is_rejected(document: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ChallengeCapacity.model_validate(document)


def test_a_challenge_config_without_capacity_gets_the_defaults() -> None:
    config = ChallengeConfig.model_validate(
        {
            "challengeId": CHALLENGE,
            "scorerType": "java",
            "ecsCluster": "c",
            "ecsTaskDefinition": "t",
            "scorerContainerName": "s",
            "platform": "v6",
            "capacity": {"maxRunningTasks": 0, "supersede": "cancel_waiting_and_stop_running"},
        }
    )
    assert config.capacity.max_running_tasks == 0
    assert config.capacity.supersede is SupersedePolicy.CANCEL_WAITING_AND_STOP_RUNNING
    bare = config.model_copy(update={"capacity": ChallengeCapacity()})
    assert bare.capacity.max_running_tasks == 5
    assert bare.capacity.priority_order[0] is PriorityClass.SYSTEM


def test_environment_cpu_cap_in_units() -> None:
    assert EnvironmentCapacity(max_running_vcpu=2.5).max_running_cpu_units == 2560
    assert EnvironmentCapacity().max_running_cpu_units is None
    with pytest.raises(ValidationError):
        EnvironmentCapacity(run_task_per_second=0)


def test_a_routed_message_that_is_not_a_rerun_is_written_as_before() -> None:
    source = KafkaCoordinates(topic="submission.notification.create", partition=0, offset=1)
    sub = RoutedSubmission(
        submission_id="0b9c2a5e-4a52-4c0c-9a49-0d1f1c0b2f5e",
        challenge_id=CHALLENGE,
        member_id=5,
        url="https://topcoder-submissions.s3.amazonaws.com/x.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at=datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert "rerun" not in json.loads(sub.to_json())  # a reader deployed earlier (extra forbidden) still parses it
    rerun = sub.model_copy(update={"rerun": True})
    assert json.loads(rerun.to_json())["rerun"] is True
    assert RoutedSubmission.model_validate_json(rerun.to_json()).rerun


def test_cancelled_is_final_and_holds_no_slot() -> None:
    assert SubmissionState.CANCELLED in FINAL_STATES
    moment = datetime(2027, 1, 1, tzinfo=UTC)

    def record(state: SubmissionState, *, ambiguous: bool = False) -> LifecycleRecord:
        return LifecycleRecord(
            run_id="s#SYSTEM",
            submission_id="s",
            phase=ScoringPhase.SYSTEM,
            platform=Platform.V6,
            challenge_id=CHALLENGE,
            state=state,
            launch_ambiguous=ambiguous,
            created_at=moment,
            updated_at=moment,
        )

    holding = {state for state in SubmissionState if record(state).holds_slot}
    assert holding == {
        SubmissionState.ADMITTED,
        SubmissionState.LAUNCHING,
        SubmissionState.LAUNCHED,
        SubmissionState.LAUNCH_FAILED,
    }
    assert record(SubmissionState.DEAD_LETTERED, ambiguous=True).holds_slot
