"""Capacity in the local pipeline (issue 11, decision 098): the real functions, in their own processes, enforce the
caps of the environment config (`example`: route-planner 5, image-denoise 5, the environment 10) from the capacity
table and the `<ssmPrefix>/capacity` parameter the local pipeline provisions from the wiring plan.

A flood of long-running scorers on one challenge (`--generate N --challenge <id>`, as an operator would run it) and
two submissions on another: the flooded challenge never runs more than its cap, the other's runs start while the
flood waits, every run ends (the sweeper stops each at its timeout), and every slot is free at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from infrastructure.config import load_environment
from local_pipeline.engine import LocalPipeline, RunOutcome
from local_pipeline.fargate import ALL_CHALLENGES
from local_pipeline.provision import LocalDeviations
from local_pipeline.report import capacity_figures, to_report
from local_pipeline.scenario import InputRecord, Scenario, generate
from local_pipeline.tracker import TIMED_OUT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-capacity-local")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"  # cap 5
IMAGE_DENOISE = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f602"  # cap 5
FLOOD = 12


@dataclass
class FloodRun:
    outcome: RunOutcome
    flooded: set[str]  # submission ids
    other: set[str]


@pytest.fixture(scope="module")
def flood_run(tmp_path_factory: pytest.TempPathFactory) -> FloodRun:
    config = load_environment("example")
    flood = generate(config, FLOOD, seed=3, challenge_id=ROUTE_PLANNER)
    other = generate(config, 2, seed=4, challenge_id=IMAGE_DENOISE)
    records = [InputRecord(i, r.value) for i, r in enumerate([*flood, *other])]
    # Every scorer runs past its timeout: a slot is held until the sweeper stops the task (a few seconds here).
    scenario = Scenario(scorers={ROUTE_PLANNER: "run-long", IMAGE_DENOISE: "run-long"})
    log_dir: Path = tmp_path_factory.mktemp("capacity-local") / "logs"
    # Each task runs ~12 s before the sweeper stops it (not ~3 s): long enough that the flood fills its cap of 5 even
    # when the machine is loaded and the one local worker launches slowly; the graces stay as lenient or more.
    deviations = LocalDeviations(sweeper_deadline_advance_seconds=18.0)
    with LocalPipeline(config, deviations=deviations, log_dir=log_dir, max_running_tasks=12) as pipeline:
        outcome = pipeline.run(records, scenario, deadline_seconds=240)
    ids = {r.position: r.submission_id for r in outcome.records}
    return FloodRun(
        outcome,
        {str(ids[i]) for i in range(FLOOD)},
        {str(ids[i]) for i in range(FLOOD, FLOOD + 2)},
    )


def test_the_flood_ends_with_every_run_final_and_every_slot_free(flood_run: FloodRun) -> None:
    outcome = flood_run.outcome
    assert outcome.ok, to_report(outcome)["unaccounted"]
    assert all(r.state == TIMED_OUT for r in outcome.records), [(r.state, r.reason) for r in outcome.records]
    assert outcome.slots_held_at_end == {}
    assert outcome.cap_violations == []


def test_the_flooded_challenge_runs_at_its_cap_and_never_above(flood_run: FloodRun) -> None:
    most = flood_run.outcome.running_most
    assert flood_run.outcome.caps[ROUTE_PLANNER] == 5
    assert most[ROUTE_PLANNER] == 5  # the flood filled its cap (12 long runs) ...
    assert most[ALL_CHALLENGES] <= flood_run.outcome.caps[ALL_CHALLENGES]  # ... and the environment's held
    figures = capacity_figures(flood_run.outcome)["challenges"][ROUTE_PLANNER]
    assert figures["maxRunning"] == 5
    assert figures["waitSeconds"]["runsThatWaited"] >= FLOOD - 5  # the rest waited for a slot


def test_the_other_challenge_starts_while_the_flood_waits(flood_run: FloodRun) -> None:
    runs = {run.run_id: run for record in flood_run.outcome.records for run in record.runs}
    flooded = [r for r in runs.values() if r.run_id.partition("#")[0] in flood_run.flooded]
    other = [r for r in runs.values() if r.run_id.partition("#")[0] in flood_run.other]
    last_flooded_admission = max(r.admitted_at or 0 for r in flooded)
    longest_flooded_wait = max(r.waited_seconds or 0 for r in flooded)
    assert len(other) == 2
    for run in other:
        assert run.admitted_at is not None
        assert run.waited_seconds is not None
        # admitted on arrival (its challenge had room), not behind the flood: how long "on arrival" takes depends on
        # the machine's load, so it is compared with the flood's own waits rather than a number of seconds
        assert run.waited_seconds < longest_flooded_wait
        assert run.admitted_at <= last_flooded_admission  # while the flood still had runs waiting
