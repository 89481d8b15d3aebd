"""A function's instances scale as Lambda scales them, within what the machine can afford (decision 116): an
invocation reuses a warm instance, a backlog spawns another one (never more than the function's concurrency),
and no instance is added while the machine's CPU is saturated, unless an invocation has been kept waiting long
enough to be starved."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_pipeline.workers import FunctionPool, MachineLoad, WorkerSpec

HANDLER = "tests.local_pipeline.sleepy_handler.handler"


class Machine(MachineLoad):
    """A machine whose CPU has room, or not, as the test says."""

    def __init__(self, room: bool) -> None:
        super().__init__()
        self.room = room

    def has_room(self) -> bool:
        return self.room


def _spec(tmp_path: Path) -> WorkerSpec:
    return WorkerSpec(
        function_name="mm-test-sleepy",
        handler=HANDLER,
        env={},
        timeout_seconds=30,
        memory_mb=128,
        log_path=str(tmp_path / "sleepy.log"),
    )


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[list[FunctionPool]]:
    started: list[FunctionPool] = []
    yield started
    for pool in started:
        pool.stop()


def _pool(
    pools: list[FunctionPool], tmp_path: Path, max_instances: int, *, room: bool, starved_after: float = 60.0
) -> FunctionPool:
    pool = FunctionPool(
        _spec(tmp_path), max_instances, scale_up_wait=0.05, starved_after=starved_after, machine=Machine(room)
    ).start()
    pools.append(pool)
    return pool


def _invoke_at_once(pool: FunctionPool, count: int, sleep: float) -> list[Any]:
    answers: list[Any] = [None] * count

    def one(index: int) -> None:
        answers[index] = pool.invoke({"sleep": sleep})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_invocations_one_after_another_reuse_the_warm_instance(tmp_path: Path, pools: list[FunctionPool]) -> None:
    pool = _pool(pools, tmp_path, 5, room=True)
    pids = {pool.invoke({}).payload["pid"] for _ in range(4)}
    assert len(pids) == 1
    assert (pool.size, pool.cold_starts, pool.invocations) == (1, 1, 4)


def test_a_backlog_scales_up_to_the_functions_concurrency_and_no_further(
    tmp_path: Path, pools: list[FunctionPool]
) -> None:
    pool = _pool(pools, tmp_path, 2, room=True)
    answers = _invoke_at_once(pool, 4, sleep=1.0)
    assert all(a.ok for a in answers)
    assert len({a.payload["pid"] for a in answers}) == 2
    assert (pool.size, pool.busy_most, pool.invocations) == (2, 2, 4)


def test_no_instance_is_added_while_the_machine_has_no_cpu_to_spare(tmp_path: Path, pools: list[FunctionPool]) -> None:
    pool = _pool(pools, tmp_path, 5, room=False)
    answers = _invoke_at_once(pool, 3, sleep=0.3)
    assert all(a.ok for a in answers)
    assert len({a.payload["pid"] for a in answers}) == 1
    assert (pool.size, pool.busy_most) == (1, 1)


def test_a_starved_event_gets_an_instance_however_busy_the_machine(tmp_path: Path, pools: list[FunctionPool]) -> None:
    # The completion function held at one instance by the others' load: every slot stays held behind it.
    pool = _pool(pools, tmp_path, 5, room=False, starved_after=0.3)
    answers = _invoke_at_once(pool, 2, sleep=2.0)
    assert all(a.ok for a in answers)
    assert len({a.payload["pid"] for a in answers}) == 2
    assert (pool.size, pool.busy_most, pool.cold_starts) == (2, 2, 2)


def test_the_time_an_event_waited_in_its_queue_counts_towards_starvation(
    tmp_path: Path, pools: list[FunctionPool]
) -> None:
    pool = _pool(pools, tmp_path, 5, room=False, starved_after=30.0)
    busy = threading.Thread(target=pool.invoke, args=({"sleep": 1.5},))
    busy.start()
    time.sleep(0.2)  # the one instance is busy
    answer = pool.invoke({}, queued_at=time.time() - 60)  # queued a minute ago: starved at once
    busy.join(timeout=30)
    assert answer.ok
    assert (pool.size, pool.cold_starts) == (2, 2)


def test_a_busy_machine_starts_one_cold_start_at_a_time_for_starved_events(
    tmp_path: Path, pools: list[FunctionPool]
) -> None:
    # Five starved events at once on a saturated machine: not five cold starts at once, which would only add
    # to the load; instances come one after another while the backlog lasts.
    pool = _pool(pools, tmp_path, 5, room=False, starved_after=0.0)
    answers: list[Any] = []

    def one() -> None:
        answers.append(pool.invoke({"sleep": 0.3}, queued_at=time.time() - 60))

    threads = [threading.Thread(target=one) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 5
    assert all(a.ok for a in answers)
    assert pool.size > 1  # starved events did scale it up
    assert pool.cold_starting_most == 1  # one cold start at a time


def test_a_fault_plan_configured_on_the_pool_reaches_instances_spawned_later(
    tmp_path: Path, pools: list[FunctionPool]
) -> None:
    pool = _pool(pools, tmp_path, 2, room=True)
    pool.configure({"MM_TEST_SETTING": "on"})
    _invoke_at_once(pool, 2, sleep=0.5)
    assert pool.size == 2
    assert all(worker.spec.env.get("MM_TEST_SETTING") == "on" for worker in pool.instances)


def test_machine_load_reads_the_idle_share_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    load = MachineLoad(str(stat))
    assert load.idle_share() is None  # one sample: no interval yet
    assert load.has_room()
    load._last = (load._last[0] - 1.0, *load._last[1:])  # type: ignore[index]  # a second later
    stat.write_text("cpu  190 0 100 810 0 0 0 0 0 0\n")  # 90 busy ticks, 10 idle
    assert load.idle_share() == pytest.approx(0.1)
    assert not load.has_room()


def test_a_limited_pool_keeps_to_its_limit_however_long_the_backlog(tmp_path: Path, pools: list[FunctionPool]) -> None:
    pool = _pool(pools, tmp_path, 3, room=True)
    pool.limit_instances(1)  # a fault plan counting "the first N calls" per process
    answers = _invoke_at_once(pool, 3, sleep=0.3)
    assert len({a.payload["pid"] for a in answers}) == 1
    pool.limit_instances(None)
    answers = _invoke_at_once(pool, 3, sleep=0.5)
    assert len({a.payload["pid"] for a in answers}) == 3
