"""When a local run ends (decision 079): quiet for the settle period, at the hard cap, or when nothing moved."""

from __future__ import annotations

from local_pipeline.limits import DEADLINE, QUIET, STALLED, RunWatch


def _watch() -> RunWatch:
    return RunWatch(started_at=100.0, hard_cap_seconds=50.0, stall_seconds=10.0)


def test_a_run_ends_only_after_staying_quiet_for_the_settle_period() -> None:
    watch = _watch()
    assert watch.look("a", None, 2.0, 101.0) is None  # quiet from now
    assert watch.look("b", None, 2.0, 102.5) is None
    assert watch.look("c", None, 2.0, 103.0) == QUIET


def test_a_busy_look_restarts_the_settle_period() -> None:
    watch = _watch()
    assert watch.look("a", None, 2.0, 101.0) is None
    assert watch.look("b", "1 message(s) in a queue", 2.0, 102.0) is None
    assert watch.look("c", None, 2.0, 103.5) is None  # quiet again only since 103.5
    assert watch.look("d", None, 2.0, 105.5) == QUIET


def test_no_change_for_the_stall_period_stalls_the_run_and_any_change_is_progress() -> None:
    watch = _watch()
    assert watch.look("same", "busy", 1.0, 101.0) is None
    assert watch.look("same", "busy", 1.0, 110.0) is None
    assert watch.look("moved", "busy", 1.0, 110.5) is None  # progress: the stall clock starts again
    assert watch.look("moved", "busy", 1.0, 120.0) is None
    assert watch.look("moved", "busy", 1.0, 120.5) == STALLED


def test_the_hard_cap_ends_a_run_that_keeps_moving() -> None:
    watch = _watch()
    for second in range(101, 150):
        assert watch.look(second, "busy", 1.0, float(second)) is None
    assert watch.look("late", "busy", 1.0, 150.0) == DEADLINE
