"""Capacity under a burst (issue 11; decision 098): at least 2,000 runs over three challenges capped at 5, 5 and 2 with
an environment cap of 10, through the real challenge processors, completion function and sweeper on moto, with a
fault mix, in virtual time (the fault matrix's world, `tests/matrix/world.py`). Prints, never asserts.

The burst (fixed seed): v6 submissions (an EXAMPLE and a PROVISIONAL run each) arriving within ten minutes, 40/40/20
over the three challenges, from a few dozen members per challenge (some submit far more than others); SYSTEM runs
for some of them later, and operator reruns (queued last). Scorers run 30-240 s. Faults, each on a few percent of
the runs: duplicate SQS deliveries, lost STOPPED events, throttled RunTask, and a crash between RunTask and recording.

Printed: runs, and how many ended in each state; the most tasks running at once per challenge and overall, exact
(every start and stop of the fake ECS) and sampled every minute, against each cap, and how many starts went over a
cap (a violation count: it must be 0); runs lost, dead-lettered and duplicated (a task started twice for a run, a
report posted twice); the wait for a slot (admission - enqueue) p50/p95/max per priority class and per challenge;
the time to drain, simulated and wall, and their ratio.

Run: `.venv/bin/python -m benchmarks.capacity_burst [--runs 2000] [--seed 11]` (a few minutes on a 2-core machine);
`make bench` runs it through benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# The functions' own logs would bury the figures: quiet them before their loggers are built (at import).
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")

from moto import mock_aws

from fault_injection import FaultKind, FaultPlan, FaultRule
from mm_adapters import aws as aws_clients
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, SubmissionState
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from tests.fakes import fast_transactions
from tests.fakes.ecs import ALL, TaskScript
from tests.matrix.deployment import V6_PHASES, Timings
from tests.matrix.world import World

CHALLENGES = {  # challenge id -> (cap, share of the submissions)
    "7c2e0a11-0b1c-4d2e-8f3a-4b5c6d7e8f01": (5, 0.4),
    "7c2e0a11-0b1c-4d2e-8f3a-4b5c6d7e8f02": (5, 0.4),
    "7c2e0a11-0b1c-4d2e-8f3a-4b5c6d7e8f03": (2, 0.2),
}
ENVIRONMENT_CAP = 10
BURST_SECONDS = 600  # every submission arrives within the first ten minutes
SYSTEM_SHARE = 0.05  # submissions that later get a SYSTEM run (the match's final scoring)
RERUN_SHARE = 0.03  # extra submissions that come as an operator's rerun (queued after new work)
MEMBERS_PER_CHALLENGE = 40
FAULTS = {  # fault kind -> share of the runs it is aimed at (once each)
    FaultKind.SQS_DUPLICATE_DELIVERY: 0.03,
    FaultKind.STOPPED_EVENT_LOST: 0.02,
    FaultKind.RUN_TASK_THROTTLING: 0.03,
    FaultKind.CRASH_AFTER_RUN_TASK: 0.01,
}
PHASES = (*V6_PHASES, {"phase": "SYSTEM", "startSeed": 61, "numberOfTests": 100, "onSubmission": False})
SAMPLE_SECONDS = 60.0
_NANOID = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class Burst:
    """What is submitted, when, and which faults aim at which run."""

    arrivals: list[dict[str, Any]] = field(default_factory=list)  # submit_to_queue kwargs (+ "at")
    runs: dict[str, str] = field(default_factory=dict)  # run id -> priority class (the phase, or RERUN)
    scripts: dict[str, TaskScript] = field(default_factory=dict)
    rules: list[FaultRule] = field(default_factory=list)
    aimed: Counter[str] = field(default_factory=Counter)


def _member_ids(rng: random.Random, challenge_index: int) -> list[int]:
    """Members by how often they submit: a few heavy submitters and a long tail (weights ~ 1/rank)."""
    return [40_100_000 + challenge_index * 1_000 + i for i in range(MEMBERS_PER_CHALLENGE)]


def build(runs: int, seed: int) -> Burst:
    rng = random.Random(seed)
    burst = Burst()
    # Each submission is two runs (EXAMPLE, PROVISIONAL); SYSTEM and reruns add the rest.
    submissions = math.ceil(runs / (2 * (1 + RERUN_SHARE) + SYSTEM_SHARE))
    ids = list(CHALLENGES)
    weights = [share for _, share in CHALLENGES.values()]
    members = {cid: _member_ids(rng, i) for i, cid in enumerate(ids)}
    member_weights = [1 / (rank + 1) for rank in range(MEMBERS_PER_CHALLENGE)]

    def new_id() -> str:
        return "".join(rng.choice(_NANOID) for _ in range(14))

    def add_runs(submission_id: str, phases: tuple[ScoringPhase, ...], priority: str | None) -> None:
        for phase in phases:
            key = run_id(submission_id, phase)
            burst.runs[key] = priority or phase.value
            burst.scripts[key] = TaskScript(run_seconds=rng.uniform(30, 240))
            for kind, share in FAULTS.items():
                if rng.random() < share:
                    target = submission_id if kind is FaultKind.SQS_DUPLICATE_DELIVERY else key
                    burst.rules.append(FaultRule(kind=kind, target=target, first_n=1))
                    burst.aimed[kind.value] += 1

    on_submission = (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL)
    for _ in range(submissions):
        challenge_id = rng.choices(ids, weights)[0]
        member = rng.choices(members[challenge_id], member_weights)[0]
        submission_id, at = new_id(), rng.uniform(0, BURST_SECONDS)
        burst.arrivals.append(
            {"submission_id": submission_id, "at": at, "challenge_id": challenge_id, "member_id": member}
        )
        add_runs(submission_id, on_submission, None)
        if rng.random() < SYSTEM_SHARE:  # its SYSTEM run, requested a little later (the match's final scoring)
            burst.arrivals.append(
                {
                    "submission_id": submission_id,
                    "at": at + rng.uniform(60, 900),
                    "challenge_id": challenge_id,
                    "member_id": member,
                    "phase": ScoringPhase.SYSTEM,
                }
            )
            add_runs(submission_id, (ScoringPhase.SYSTEM,), None)
        if rng.random() < RERUN_SHARE:
            rerun = new_id()
            burst.arrivals.append(
                {
                    "submission_id": rerun,
                    "at": rng.uniform(0, BURST_SECONDS),
                    "challenge_id": challenge_id,
                    "member_id": member,
                    "rerun": True,
                }
            )
            add_runs(rerun, on_submission, "RERUN")
    return burst


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _stat(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": _percentile(values, 50),
        "p95": _percentile(values, 95),
        "max": max(values) if values else None,
    }


def _sample(world: World, samples: dict[str, int]) -> None:
    """Every minute of virtual time: the fake ECS's tasks not STOPPED, per challenge and in total."""
    now = Counter(task.environment.get("MM_CHALLENGE_ID", "?") for task in world.ecs_fake.running())
    for key, count in (*now.items(), (ALL, sum(now.values()))):
        samples[key] = max(samples.get(key, 0), count)
    world.scheduler.after(SAMPLE_SECONDS, lambda: _sample(world, samples), "sample running tasks")
    world.scheduler._heap[-1].periodic = True  # a sample must not keep the world alive


def _progress(world: World, began: float, total: int) -> None:
    """Every simulated hour: how far the burst is (tasks started of the runs), for a long run's log."""
    started = len(world.ecs_fake.tasks)
    print(
        f"  ... {world.clock.elapsed / 3600:.0f} h simulated, {time.monotonic() - began:.0f} s wall: "
        f"{started}/{total} runs started, {world.ecs_fake.running_now.get(ALL, 0)} running",
        flush=True,
    )
    world.scheduler.after(3600, lambda: _progress(world, began, total), "progress")
    world.scheduler._heap[-1].periodic = True


def run(burst: Burst) -> tuple[World, dict[str, int], float]:
    challenge_configs = {
        cid: {"capacity": {"maxRunningTasks": cap}, "phases": [dict(p) for p in PHASES]}
        for cid, (cap, _) in CHALLENGES.items()
    }
    world = World(
        FaultPlan(rules=burst.rules),
        scripts=burst.scripts,
        platform=Platform.V6,
        challenges=tuple(CHALLENGES),
        challenge_configs=challenge_configs,
        environment_capacity={"maxRunningTasks": ENVIRONMENT_CAP},
        timings=Timings(horizon_seconds=7 * 86_400),
        fault_services=("ecs",),  # the mix has ECS faults only (the rest are decided by the world itself)
    )
    for arrival in burst.arrivals:
        world.submit_to_queue(**arrival)
    samples: dict[str, int] = {}
    world.scheduler.at(world.clock.start, lambda: _sample(world, samples), "sample running tasks", periodic=True)
    began = time.monotonic()
    world.scheduler.at(
        world.clock.start + 3600, lambda: _progress(world, began, len(burst.runs)), "progress", periodic=True
    )
    world.run()
    return world, samples, time.monotonic() - began


def _over_cap(world: World, caps: dict[str, int]) -> int:
    """Starts that took a challenge (or the environment) above its cap, from the exact start/stop log."""
    return sum(1 for _, key, running in world.ecs_fake.running_changes if key in caps and running > caps[key])


def figures(burst: Burst, world: World, samples: dict[str, int], wall: float) -> dict[str, Any]:
    records: dict[str, LifecycleRecord] = world.records()
    caps = {cid: cap for cid, (cap, _) in CHALLENGES.items()} | {ALL: ENVIRONMENT_CAP}
    states = Counter(r.state.value for r in records.values())
    lost = [key for key in burst.runs if key not in records or records[key].state not in FINAL_STATES]
    tasks_per_run = Counter(f"{t.submission_id}#{t.phase}" for t in world.ecs_fake.tasks.values())
    summations_per_run = Counter(
        (str(item["submissionId"]), phase.value)
        for item in world.summations.store.items
        for phase in ScoringPhase
        if item.get(phase.summation_flag) is True
    )
    our_posts = Counter(
        (str(w.body.get("submissionId")), phase.value)
        for w in world.summations.writes
        if w.method == "POST"
        for phase in ScoringPhase
        if w.body.get(phase.summation_flag) is True
    )
    waits: dict[str, list[float]] = {}
    by_challenge: dict[str, list[float]] = {}
    for key, priority in burst.runs.items():
        record = records.get(key)
        if record is None or record.enqueued_at is None or record.admitted_at is None:
            continue
        wait = float(record.admitted_at - record.enqueued_at)
        waits.setdefault(priority, []).append(wait)
        by_challenge.setdefault(record.challenge_id, []).append(wait)
    dead_lettered = sum(1 for r in records.values() if r.state is SubmissionState.DEAD_LETTERED)
    dead_letters = sum(len(queue.dead_letters) for queue in world.queues)
    simulated = world.clock.elapsed
    return {
        "runs": len(burst.runs),
        "submissions": len({a["submission_id"] for a in burst.arrivals}),
        "byState": dict(states.most_common()),
        "faultsAimed": dict(burst.aimed),
        "faultsFired": {kind.value: world.plan.fire_count(kind) for kind in FAULTS},
        "maxRunning": {
            key: {"cap": caps[key], "exact": world.ecs_fake.running_most.get(key, 0), "sampled": samples.get(key, 0)}
            for key in (*CHALLENGES, ALL)
        },
        "startsOverACap": _over_cap(world, caps),
        "lost": len(lost),
        "lostRuns": lost[:10],
        "deadLettered": dead_lettered,
        "messagesInDlqs": dead_letters,
        "runsWithTwoTasks": sum(1 for n in tasks_per_run.values() if n > 1),
        "runsWithTwoSummations": sum(1 for n in summations_per_run.values() if n > 1),
        "runsWithTwoOfOurPosts": sum(1 for n in our_posts.values() if n > 1),
        "waitSecondsByPriority": {
            p: _stat(waits[p]) for p in ("SYSTEM", "PROVISIONAL", "EXAMPLE", "RERUN") if p in waits
        },
        "waitSecondsByChallenge": {cid[-2:]: _stat(by_challenge.get(cid, [])) for cid in CHALLENGES},
        "drainSimulatedSeconds": round(simulated, 1),
        "drainWallSeconds": round(wall, 1),
        "simulatedPerWall": round(simulated / wall, 1) if wall else None,
        "tasksStarted": len(world.ecs_fake.tasks),
        "runTaskCalls": len(world.ecs_fake.run_task_calls),
        "harnessCrashes": len(world.crashes),
        "slotsReconciled": world.metrics.reasons(_metric("SLOTS_RECONCILED")),
        "launchesThrottled": world.metrics.total(_metric("LAUNCHES_THROTTLED")),
    }


def _metric(name: str) -> Any:
    from mm_contracts.metric_names import Metric

    return getattr(Metric, name)


def _print(result: dict[str, Any]) -> None:
    print(f"runs {result['runs']} ({result['submissions']} submissions); final states {result['byState']}")
    print(f"faults aimed {result['faultsAimed']}; fired {result['faultsFired']}")
    for key, row in result["maxRunning"].items():
        name = "environment" if key == ALL else f"challenge ..{key[-2:]}"
        exact, sampled = row["exact"], row["sampled"]
        print(f"  max running at once, {name:<16} {exact:>3} (sampled each minute: {sampled:>3}), cap {row['cap']}")
    print(f"starts that went over a cap (violations): {result['startsOverACap']}")
    print(
        f"runs lost {result['lost']}; dead-lettered {result['deadLettered']} (messages in DLQs "
        f"{result['messagesInDlqs']}); runs with two tasks {result['runsWithTwoTasks']}; runs with two summations "
        f"{result['runsWithTwoSummations']} (two of our POSTs: {result['runsWithTwoOfOurPosts']})"
    )
    for priority, stat in result["waitSecondsByPriority"].items():
        figures_ = f"n={stat['count']:>5} p50 {stat['p50']}s p95 {stat['p95']}s max {stat['max']}s"
        print(f"  wait for a slot, {priority:<12} {figures_}")
    for challenge, stat in result["waitSecondsByChallenge"].items():
        print(f"  wait for a slot, challenge ..{challenge} n={stat['count']:>5} p50 {stat['p50']}s p95 {stat['p95']}s")
    print(
        f"drained in {result['drainSimulatedSeconds']}s simulated ({result['drainSimulatedSeconds'] / 3600:.1f} h), "
        f"{result['drainWallSeconds']}s wall ({result['simulatedPerWall']}x); tasks {result['tasksStarted']} for "
        f"{result['runTaskCalls']} RunTask calls; launches throttled {result['launchesThrottled']}; slots "
        f"reconciled {result['slotsReconciled']}; harness-seen crashes {result['harnessCrashes']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000, help="at least this many runs (default 2000)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object at the end")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    burst = build(args.runs, args.seed)
    caps = ", ".join(str(cap) for cap, _ in CHALLENGES.values())
    print(
        f"capacity burst: {len(burst.runs)} runs over {len(CHALLENGES)} challenges (caps {caps}; environment cap "
        f"{ENVIRONMENT_CAP}), seed {args.seed}",
        flush=True,
    )
    aws_clients.reset_clients()
    fast_transactions.install()  # moto's transaction backup copies whole tables: quadratic in the runs otherwise
    try:
        with mock_aws():
            world, samples, wall = run(burst)
            result = figures(burst, world, samples, wall)
    finally:
        fast_transactions.uninstall()
        aws_clients.reset_clients()
    _print(result)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
