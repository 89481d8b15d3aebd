"""Capacity on the completion side, without AWS: the gauges (pure), the cancel outcome, and the EMF lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from completion_lambda.outcome import FailureReason, decide_outcome, failure_reason
from mm_adapters.metrics import EmfMetricsSink
from mm_capacity.queues import entry_of_admitted
from mm_capacity.store import PoolSnapshot, PoolState
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.ecs_event import EcsTaskStateChangeEvent, StopCode
from mm_contracts.models.outcome import SUPERSEDED_REASON, OutcomeCode, TestStatus
from sweeper_lambda.capacity import CapacityGauge, capacity_gauges
from tests.builders import ecs_task_stopped_event

A = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"
B = "6b1d1e68-9c81-4b3c-8a4f-2d3e4f5a6b7c"
NOW = 1_800_000_000.0


def pool(sk: str, *, used: int = 0, waiting: int = 0, cpu_used: int = 0, cap: int | None = None) -> PoolState:
    holders = {f"run-{i}": 1024 for i in range(used)}
    return PoolState(sk=sk, used=used, cpu_used=cpu_used, waiting=waiting, holders=holders, cap=cap, dispatched_round=0)


def lines(gauges: list[CapacityGauge], challenge_id: str | None) -> dict[Metric, float]:
    return {g.metric: g.value for g in gauges if g.challenge_id == challenge_id}


def test_each_challenge_gets_its_four_gauges_and_the_environment_the_totals_and_maxima() -> None:
    snapshot = PoolSnapshot(
        env=pool("ENV", used=3),
        challenges={A: pool(f"CHALLENGE#{A}", used=2, waiting=4), B: pool(f"CHALLENGE#{B}", used=1, waiting=1)},
        phases={},
    )

    gauges = capacity_gauges(
        snapshot,
        challenge_caps={A: 2, B: 5},
        oldest_enqueued_at={A: int(NOW) - 600, B: int(NOW) - 30},
        environment=EnvironmentCapacity(max_running_tasks=10),
        now=NOW,
    )

    assert lines(gauges, A) == {
        Metric.RUNNING_TASKS: 2,
        Metric.WAITING_RUNS: 4,
        Metric.OLDEST_WAIT_SECONDS: 600,
        Metric.CAPACITY_FULL: 1,  # at its cap with runs waiting
    }
    assert lines(gauges, B)[Metric.CAPACITY_FULL] == 0
    assert lines(gauges, None) == {
        Metric.RUNNING_TASKS: 3,
        Metric.WAITING_RUNS: 5,
        Metric.OLDEST_WAIT_SECONDS: 600,
        Metric.CAPACITY_FULL: 1,  # a challenge holds runs back
    }
    assert {g.seconds for g in gauges if g.metric is Metric.OLDEST_WAIT_SECONDS} == {True}


def test_a_cap_reached_with_nothing_waiting_is_not_full() -> None:
    snapshot = PoolSnapshot(env=pool("ENV", used=2), challenges={A: pool(f"CHALLENGE#{A}", used=2)}, phases={})

    gauges = capacity_gauges(
        snapshot,
        challenge_caps={A: 2},
        oldest_enqueued_at={},
        environment=EnvironmentCapacity(max_running_tasks=2),
        now=NOW,
    )

    assert lines(gauges, A)[Metric.CAPACITY_FULL] == 0
    assert lines(gauges, None)[Metric.CAPACITY_FULL] == 0
    assert lines(gauges, None)[Metric.OLDEST_WAIT_SECONDS] == 0


@pytest.mark.parametrize(("cpu_used", "full"), [(3072, 0), (3073, 1)])
def test_the_environment_is_full_when_its_vcpu_cannot_fit_another_default_task(cpu_used: int, full: int) -> None:
    snapshot = PoolSnapshot(
        env=pool("ENV", used=3, cpu_used=cpu_used), challenges={A: pool(f"CHALLENGE#{A}", waiting=1)}, phases={}
    )
    environment = EnvironmentCapacity(max_running_tasks=20, max_running_vcpu=4, default_task_cpu=1024)

    gauges = capacity_gauges(
        snapshot, challenge_caps={A: 5}, oldest_enqueued_at={A: int(NOW)}, environment=environment, now=NOW
    )

    assert lines(gauges, None)[Metric.CAPACITY_FULL] == full


def test_unknown_caps_never_claim_full() -> None:
    snapshot = PoolSnapshot(
        env=pool("ENV", used=9), challenges={A: pool(f"CHALLENGE#{A}", used=9, waiting=3)}, phases={}
    )

    gauges = capacity_gauges(snapshot, challenge_caps={A: None}, oldest_enqueued_at={}, environment=None, now=NOW)

    assert lines(gauges, A)[Metric.CAPACITY_FULL] == 0
    assert lines(gauges, None)[Metric.CAPACITY_FULL] == 0


# ------------------------------------------------------------------ the cancel outcome (decision 095)
def _detail(**kwargs: Any) -> Any:
    event = ecs_task_stopped_event(task_arn="arn:aws:ecs:us-east-1:123456789012:task/c/abc", **kwargs)
    return EcsTaskStateChangeEvent.model_validate(event).detail


def test_a_task_stopped_for_a_cancel_is_cancelled_with_the_stop_reason() -> None:
    detail = _detail(stop_code=StopCode.USER_INITIATED, stopped_reason=f"{SUPERSEDED_REASON} abc", exit_code=143)

    outcome = decide_outcome(detail, scorer_container_name=None, cancel_requested=True)

    assert (outcome.code, outcome.test_status) == (OutcomeCode.CANCELLED, TestStatus.CANCELLED)
    assert outcome.reason == f"{SUPERSEDED_REASON} abc"
    assert failure_reason(outcome) == FailureReason.SUPERSEDED


def test_a_cancel_that_hit_the_task_before_it_started_is_cancelled_not_a_start_failure() -> None:
    detail = _detail(stop_code=StopCode.TASK_FAILED_TO_START, stopped_reason="Timeout waiting for network interface")

    outcome = decide_outcome(detail, scorer_container_name=None, cancel_requested=True)

    assert (outcome.code, outcome.reason) == (OutcomeCode.CANCELLED, SUPERSEDED_REASON)


def test_a_scorer_that_finished_before_the_cancel_stop_keeps_its_outcome() -> None:
    detail = _detail(stop_code=StopCode.ESSENTIAL_CONTAINER_EXITED, exit_code=0)

    outcome = decide_outcome(detail, scorer_container_name=None, cancel_requested=True)

    assert outcome.code is OutcomeCode.SUCCEEDED


def test_an_operator_stop_without_a_cancel_request_stays_a_failure() -> None:
    detail = _detail(stop_code=StopCode.USER_INITIATED, stopped_reason="operator")

    outcome = decide_outcome(detail, scorer_container_name=None)

    assert (outcome.code, outcome.test_status) == (OutcomeCode.FAILED, TestStatus.CANCELLED)


# ------------------------------------------------------------------ EMF
def _emf(out: str) -> list[dict[str, Any]]:
    return [doc for doc in (json.loads(line) for line in out.splitlines() if line.startswith("{")) if "_aws" in doc]


def test_a_gauge_is_an_emf_line_with_the_environment_and_optionally_the_challenge(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sweeper's lines as its alarms and dashboard read them: Environment + service, and with ChallengeId
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "timeout-sweeper")
    sink = EmfMetricsSink(environment_name="dev")

    sink.gauge(Metric.WAITING_RUNS, 7)
    sink.gauge(Metric.OLDEST_WAIT_SECONDS, 42.0, challenge_id=A, seconds=True)

    env_line, challenge_line = _emf(capsys.readouterr().out)
    assert env_line["WaitingRuns"] == [7.0]
    assert env_line["Environment"] == "dev"
    assert "ChallengeId" not in env_line
    [env_metric] = env_line["_aws"]["CloudWatchMetrics"]
    assert env_metric["Dimensions"] == [["Environment", "service"]]
    assert challenge_line["ChallengeId"] == A
    [challenge_metric] = challenge_line["_aws"]["CloudWatchMetrics"]
    assert challenge_metric["Dimensions"] == [["Environment", "ChallengeId", "service"]]
    assert challenge_metric["Metrics"] == [{"Name": "OldestWaitSeconds", "Unit": "Seconds"}]


def test_an_admitted_runs_queue_entry_is_rebuilt_from_its_item() -> None:
    from mm_contracts.models.lifecycle import LifecycleRecord

    record = LifecycleRecord.model_validate(
        {
            "runId": "s1#PROVISIONAL",
            "submissionId": "s1",
            "phase": "PROVISIONAL",
            "challengeId": A,
            "state": "ADMITTED",
            "memberId": 7,
            "waitOrder": "01#000000000001#0000000000001#s1#PROVISIONAL",
            "enqueuedAt": 1_799_999_000,
            "rerun": True,
            "createdAt": "2027-01-01T00:00:00Z",
            "updatedAt": "2027-01-01T00:00:00Z",
        }
    )

    entry = entry_of_admitted(record)

    assert (entry.challenge_id, entry.run_id, entry.member_id, entry.enqueued_at, entry.rerun) == (
        A,
        "s1#PROVISIONAL",
        7,
        1_799_999_000,
        True,
    )
