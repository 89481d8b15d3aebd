"""The dispatcher on moto: fair across challenges and members, priorities, every cap, and what it sends."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mm_adapters.challenge_config import ConfigErrorReason
from mm_adapters.status_store import StatusStore
from mm_capacity.config import CapacityConfigError
from mm_capacity.dispatcher import CONFIG_BLOCK, Admitted, Dispatcher, admitted_message_body
from mm_capacity.store import ENV_POOL, CapacityStore, challenge_pool_key
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity, PriorityClass
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from tests.conftest import Clock
from tests.integration.capacity.conftest import CHALLENGE_A, CHALLENGE_B, CHALLENGE_C, config, submission

LOGGER = logging.getLogger("test.dispatcher")


class World:
    def __init__(self, store: CapacityStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.environment = EnvironmentCapacity(max_running_tasks=20)
        self.configs: dict[str, ChallengeConfig | None] = {}
        self.sent: list[Admitted] = []
        self.metrics: list[tuple[Metric, str | None]] = []
        self.config_error: CapacityConfigError | None = None

    def environment_capacity(self) -> EnvironmentCapacity:
        if self.config_error is not None:
            raise self.config_error
        return self.environment

    def dispatcher(self, send: Any = None, max_admissions: int = 50) -> Dispatcher:
        return Dispatcher(
            self.store,
            environment_capacity=self.environment_capacity,
            challenge_settings=self.configs.get,
            send=send or self.sent.append,
            logger=LOGGER,
            metrics=lambda metric, dimension: self.metrics.append((metric, dimension)),
            max_admissions=max_admissions,
        )

    def wait(self, sub: RoutedSubmission, phase: ScoringPhase = ScoringPhase.PROVISIONAL) -> str:
        settings = self.configs[sub.challenge_id]
        assert settings is not None
        rank = settings.capacity.rank(phase, rerun=sub.rerun)
        result = self.store.enqueue(sub, phase=phase, scorer_type="java", timeout_seconds=600, priority_rank=rank)
        assert result.created
        self.clock.advance(1)
        return run_id(sub.submission_id, phase)


@pytest.fixture
def world(capacity: CapacityStore, clock: Clock) -> World:
    return World(capacity, clock)


def admitted_challenges(admitted: tuple[Admitted, ...]) -> Counter[str]:
    return Counter(item.entry.challenge_id for item in admitted)


def test_a_flood_on_one_challenge_leaves_the_other_its_share(world: World) -> None:
    world.environment = EnvironmentCapacity(max_running_tasks=4)
    world.configs = {CHALLENGE_A: config(CHALLENGE_A), CHALLENGE_B: config(CHALLENGE_B)}
    for member in range(30):
        world.wait(submission(CHALLENGE_A, member_id=member + 1))
    for member in range(3):
        world.wait(submission(CHALLENGE_B, member_id=member + 1))
    result = world.dispatcher().dispatch()
    assert admitted_challenges(result.admitted) == {CHALLENGE_A: 2, CHALLENGE_B: 2}
    assert result.blocked_by == ENV_POOL
    assert len(world.sent) == 4
    assert result.self_admitted is None
    snapshot = world.store.pools()
    assert snapshot.env.used == 4
    assert (snapshot.challenge(CHALLENGE_A).waiting, snapshot.challenge(CHALLENGE_B).waiting) == (28, 1)


def test_each_challenge_stops_at_its_own_cap(world: World) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=2), CHALLENGE_B: config(CHALLENGE_B)}
    for member in range(5):
        world.wait(submission(CHALLENGE_A, member_id=member + 1))
    world.wait(submission(CHALLENGE_B))
    result = world.dispatcher().dispatch()
    assert admitted_challenges(result.admitted) == {CHALLENGE_A: 2, CHALLENGE_B: 1}
    only_a = world.dispatcher().dispatch(challenge_id=CHALLENGE_A)
    assert only_a.admitted == ()
    assert only_a.blocked_by == challenge_pool_key(CHALLENGE_A)


def test_members_are_admitted_round_robin(world: World) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=3)}
    for _ in range(4):
        world.wait(submission(CHALLENGE_A, member_id=7))
    world.wait(submission(CHALLENGE_A, member_id=8))
    world.wait(submission(CHALLENGE_A, member_id=9))
    result = world.dispatcher().dispatch(challenge_id=CHALLENGE_A)
    assert [item.record.member_id for item in result.admitted] == [7, 8, 9]


def test_system_before_provisional_before_example_before_reruns(world: World) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=1)}
    world.wait(submission(CHALLENGE_A, member_id=1, rerun=True), ScoringPhase.SYSTEM)
    world.wait(submission(CHALLENGE_A, member_id=2), ScoringPhase.EXAMPLE)
    world.wait(submission(CHALLENGE_A, member_id=3), ScoringPhase.PROVISIONAL)
    world.wait(submission(CHALLENGE_A, member_id=4), ScoringPhase.SYSTEM)
    order = []
    for _ in range(4):
        [item] = world.dispatcher().dispatch().admitted
        order.append((item.entry.phase, item.entry.rerun))
        assert world.store.release(item.record)
    assert order == [
        (ScoringPhase.SYSTEM, False),
        (ScoringPhase.PROVISIONAL, False),
        (ScoringPhase.EXAMPLE, False),
        (ScoringPhase.SYSTEM, True),
    ]


def test_a_custom_priority_order(world: World) -> None:
    custom = (PriorityClass.RERUN, PriorityClass.EXAMPLE, PriorityClass.PROVISIONAL, PriorityClass.SYSTEM)
    world.configs = {CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=1, priority_order=custom)}
    world.wait(submission(CHALLENGE_A, member_id=1), ScoringPhase.SYSTEM)
    world.wait(submission(CHALLENGE_A, member_id=2), ScoringPhase.EXAMPLE)
    world.wait(submission(CHALLENGE_A, member_id=3, rerun=True), ScoringPhase.PROVISIONAL)
    order = []
    for _ in range(3):
        [item] = world.dispatcher().dispatch().admitted
        order.append(item.entry.phase)
        world.store.release(item.record)
    assert order == [ScoringPhase.PROVISIONAL, ScoringPhase.EXAMPLE, ScoringPhase.SYSTEM]


def test_a_full_phase_lets_the_other_phases_through(world: World) -> None:
    world.configs = {
        CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=5, max_running_tasks_per_phase={ScoringPhase.SYSTEM: 1})
    }
    for member in range(3):
        world.wait(submission(CHALLENGE_A, member_id=member + 1), ScoringPhase.SYSTEM)
    for member in range(2):
        world.wait(submission(CHALLENGE_A, member_id=member + 10), ScoringPhase.PROVISIONAL)
    result = world.dispatcher().dispatch(challenge_id=CHALLENGE_A)
    assert Counter(item.entry.phase for item in result.admitted) == {
        ScoringPhase.SYSTEM: 1,
        ScoringPhase.PROVISIONAL: 2,
    }
    assert world.store.pools().phases[(CHALLENGE_A, ScoringPhase.SYSTEM)].used == 1


def test_the_environment_cpu_cap_counts_task_weights(world: World) -> None:
    world.environment = EnvironmentCapacity(max_running_tasks=20, max_running_vcpu=3)
    world.configs = {CHALLENGE_A: config(CHALLENGE_A, cpu=2048), CHALLENGE_B: config(CHALLENGE_B, cpu=512)}
    for member in range(3):
        world.wait(submission(CHALLENGE_A, member_id=member + 1))
        world.wait(submission(CHALLENGE_B, member_id=member + 1))
    result = world.dispatcher().dispatch()
    # 2048 (A) + 512 + 512 (B) = 3 vCPU: a second heavy A task does not fit, the light B ones do
    assert admitted_challenges(result.admitted) == {CHALLENGE_A: 1, CHALLENGE_B: 2}
    assert world.store.pools().env.cpu_used == 3072


def test_a_cap_of_zero_admits_nothing(world: World) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=0)}
    waiting = world.wait(submission(CHALLENGE_A))
    result = world.dispatcher().dispatch(challenge_id=CHALLENGE_A, prefer_run_id=waiting)
    assert result.admitted == ()
    assert result.blocked_by == challenge_pool_key(CHALLENGE_A)
    world.environment = EnvironmentCapacity(max_running_tasks=0)
    world.configs[CHALLENGE_A] = config(CHALLENGE_A)
    assert world.dispatcher().dispatch().blocked_by == ENV_POOL
    assert world.store.pools().env.used == 0


def test_the_preferred_run_is_returned_not_sent(world: World, status: StatusStore) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A)}
    other = world.wait(submission(CHALLENGE_A, member_id=1))
    mine = world.wait(submission(CHALLENGE_A, member_id=2))
    result = world.dispatcher().dispatch(challenge_id=CHALLENGE_A, prefer_run_id=mine)
    assert result.self_admitted is not None
    assert result.self_admitted.entry.run_id == mine
    assert [item.entry.run_id for item in world.sent] == [other]
    assert (Metric.RUNS_ADMITTED, CHALLENGE_A) in world.metrics
    record = status.get(mine)
    assert record is not None
    assert record.state is SubmissionState.ADMITTED


def test_a_failed_send_leaves_the_run_admitted_for_the_resend(world: World, status: StatusStore) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A)}
    run = world.wait(submission(CHALLENGE_A))

    def broken(admitted: Admitted) -> None:
        raise ConnectionError("SQS unreachable")

    result = world.dispatcher(send=broken).dispatch()
    assert [item.entry.run_id for item in result.admitted] == [run]
    record = status.get(run)
    assert record is not None
    assert record.state is SubmissionState.ADMITTED
    assert record.deadline_at is not None


def test_unreadable_caps_admit_nothing(world: World) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A)}
    world.wait(submission(CHALLENGE_A))
    world.config_error = CapacityConfigError("/mm-processor/test/capacity", ConfigErrorReason.PARAMETER_MISSING, "none")
    result = world.dispatcher().dispatch()
    assert result.admitted == ()
    assert result.blocked_by == CONFIG_BLOCK
    assert world.metrics == [(Metric.CAPACITY_CONFIG_ERRORS, None)]


def test_a_challenge_with_an_unusable_config_keeps_waiting_and_the_others_go(world: World) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A), CHALLENGE_B: config(CHALLENGE_B)}
    world.wait(submission(CHALLENGE_A))
    world.wait(submission(CHALLENGE_B))
    world.configs[CHALLENGE_A] = None  # its SSM config broke after the run queued
    result = world.dispatcher().dispatch()
    assert admitted_challenges(result.admitted) == {CHALLENGE_B: 1}
    assert world.store.pools().challenge(CHALLENGE_A).waiting == 1


def test_at_most_max_admissions_per_dispatch(world: World) -> None:
    world.configs = {CHALLENGE_C: config(CHALLENGE_C)}
    for member in range(4):
        world.wait(submission(CHALLENGE_C, member_id=member + 1))
    assert len(world.dispatcher(max_admissions=3).dispatch().admitted) == 3


def test_the_admitted_message_names_its_phase(world: World) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A)}
    sub = submission(CHALLENGE_A)
    world.wait(sub, ScoringPhase.EXAMPLE)
    [item] = world.dispatcher().dispatch().admitted
    body = json.loads(admitted_message_body(item))
    assert body["phase"] == "EXAMPLE"
    assert body["submissionId"] == sub.submission_id
    assert RoutedSubmission.model_validate(body).model_copy(update={"phase": None}) == sub


def test_a_run_behind_any_number_of_phase_blocked_runs_is_admitted(world: World) -> None:
    # 80 SYSTEM runs under a SYSTEM cap of 1 fill more than three pages of the queue ahead of the PROVISIONAL ones.
    world.configs = {
        CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=5, max_running_tasks_per_phase={ScoringPhase.SYSTEM: 1})
    }
    for member in range(80):
        world.wait(submission(CHALLENGE_A, member_id=member + 1), ScoringPhase.SYSTEM)
    provisional = [world.wait(submission(CHALLENGE_A, member_id=900 + n)) for n in range(2)]
    result = world.dispatcher().dispatch(challenge_id=CHALLENGE_A)
    assert Counter(item.entry.phase for item in result.admitted) == {
        ScoringPhase.SYSTEM: 1,
        ScoringPhase.PROVISIONAL: 2,
    }
    assert {item.entry.run_id for item in result.admitted} >= set(provisional)
    # a phase capped at 0 blocks only its own runs too
    world.configs[CHALLENGE_A] = config(
        CHALLENGE_A, max_running_tasks=5, max_running_tasks_per_phase={ScoringPhase.SYSTEM: 0}
    )
    late = world.wait(submission(CHALLENGE_A, member_id=999))
    assert [item.entry.run_id for item in world.dispatcher().dispatch().admitted] == [late]


def _conflict(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "TransactionConflictException", "Message": "busy"}}, operation)


def test_a_committed_admission_is_sent_even_when_the_store_cannot_re_read_it_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A, max_running_tasks=2)}
    first = world.wait(submission(CHALLENGE_A, member_id=1))
    second = world.wait(submission(CHALLENGE_A, member_id=2))
    third = world.wait(submission(CHALLENGE_A, member_id=3))
    status_get = world.store._status.get
    failures = {first: 1, second: 2}  # first: only the store's re-read fails; second: the dispatcher's too

    def flaky_get(run: str) -> Any:
        if failures.get(run, 0) > 0:
            failures[run] -= 1
            raise _conflict("GetItem")
        return status_get(run)

    def busy_pool(entry: Any) -> None:
        raise _conflict("UpdateItem")

    monkeypatch.setattr(world.store._status, "get", flaky_get)
    monkeypatch.setattr(world.store, "_raise_dispatched_round", busy_pool)
    result = world.dispatcher().dispatch(challenge_id=CHALLENGE_A, prefer_run_id=second)
    assert [item.entry.run_id for item in result.admitted] == [first]
    assert [item.entry.run_id for item in world.sent] == [first]
    assert result.self_admitted is None  # unreadable: left to the sweeper's re-send, never taken for waiting
    assert result.blocked_by == challenge_pool_key(CHALLENGE_A)  # its slot counts: the third run waits
    states = {run: status_get(run) for run in (first, second, third)}
    assert [record.state if record else None for record in states.values()] == [
        SubmissionState.ADMITTED,
        SubmissionState.ADMITTED,
        SubmissionState.WAITING,
    ]
    assert (Metric.RUNS_ADMITTED, CHALLENGE_A) in world.metrics


def test_a_failure_mid_dispatch_keeps_what_was_admitted(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.configs = {CHALLENGE_A: config(CHALLENGE_A)}
    mine = world.wait(submission(CHALLENGE_A, member_id=1))
    world.wait(submission(CHALLENGE_A, member_id=2))
    world.wait(submission(CHALLENGE_A, member_id=3))
    monkeypatch.setattr("mm_capacity.dispatcher._HEAD_PAGE", 1)  # one entry a page: a second read follows
    queue_head = world.store.queue_head
    calls: list[str | None] = []

    def failing_after_the_first_page(challenge_id: str, *, limit: int = 10, after: str | None = None) -> Any:
        calls.append(after)
        if len(calls) > 1:
            raise _conflict("Query")
        return queue_head(challenge_id, limit=limit, after=after)

    monkeypatch.setattr(world.store, "queue_head", failing_after_the_first_page)
    result = world.dispatcher().dispatch(challenge_id=CHALLENGE_A, prefer_run_id=mine)
    assert result.self_admitted is not None
    assert result.self_admitted.entry.run_id == mine
    assert [item.entry.run_id for item in result.admitted] == [mine]
    assert len(calls) == 2
    # nothing admitted yet: the error is the caller's to see
    with pytest.raises(ClientError):
        world.dispatcher().dispatch(challenge_id=CHALLENGE_A)


def test_the_queue_is_read_on_past_entries_admitted_meanwhile(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of one entry: each next page starts after an entry this dispatch admitted (deleted) already.
    monkeypatch.setattr("mm_capacity.dispatcher._HEAD_PAGE", 1)
    world.configs = {CHALLENGE_A: config(CHALLENGE_A)}
    runs = [world.wait(submission(CHALLENGE_A, member_id=member + 1)) for member in range(4)]
    assert [item.entry.run_id for item in world.dispatcher().dispatch().admitted] == runs
