"""Burst: at least 2,000 submissions through the local pipeline at once, with the faults of an operator's bad day
(issue 7; decision 079). Prints, never asserts.

The mix (fixed seed): scorers that succeed, fail, raise, crash and run past their timeout; launch faults
(RunTask `failures[]`, throttling, a 5xx after the task started); lost and duplicated STOPPED events; duplicate
SQS deliveries; duplicate Kafka records; and bad records the router must reject. Every record has an expected
final state. Printed: records, unaccounted, duplicate tasks, duplicate reports, wrong final states (by
expected -> actual), throughput and wall time, and the run's limits.

Run: `.venv/bin/python -m benchmarks.burst [--submissions 2000]` (about 10 minutes on a 2-core machine);
`make bench` runs it through benchmarks/run_all.py.

Time is compressed (decision 064) so a scorer past its timeout is stopped within a run, but less than in
`make run` (the sweeper looks 20 s ahead, not 27, so a timeout is acted on ~10 s after launch; the reconcile
and event graces are ~100 s, not ~8 s): under a burst a task may wait for a free runner and a STOPPED event for
the completion worker, and neither must be mistaken for an overdue task or a lost event.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass

from infrastructure.config import EnvironmentConfig, load_environment
from local_pipeline.engine import RunOutcome, run_local
from local_pipeline.provision import LocalDeviations
from local_pipeline.report import state_counts, throughput
from local_pipeline.scenario import FaultSpec, InputRecord, Scenario, generate

# Shares of the valid submissions (the rest succeed), and of extra records.
SCORER_MIX = {"fail": 0.06, "error": 0.02, "crash": 0.03, "run-long": 0.03}
LAUNCH_FAULTS = {"run-task-failures": 0.03, "run-task-throttling": 0.02, "run-task-5xx-after-start": 0.01}
EVENT_FAULTS = {"stopped-event-lost": 0.02, "stopped-event-duplicate": 0.02, "sqs-duplicate-delivery": 0.01}
DUPLICATE_RECORDS = 0.02  # the same Kafka value again later in the stream
BAD_RECORDS = 0.02  # not JSON, a non-UUID id, an unknown challenge
EXPECTED_BY_BEHAVIOUR = {
    "succeed": "scored",
    "fail": "failed-reported",
    "error": "failed-reported",
    "crash": "failed-reported",
    "run-long": "timed-out",
}


@dataclass
class Burst:
    records: list[InputRecord]
    scenario: Scenario
    expected: dict[int, str]  # position -> final state
    faults: Counter[str]
    behaviours: Counter[str]


def _bad_records(config: EnvironmentConfig, count: int, rng: random.Random) -> list[bytes]:
    active = next(c for c in config.challenges if c.active)
    values = []
    for index in range(count):
        kind = index % 3
        if kind == 0:
            values.append(b"this is not JSON {" + str(index).encode())
        elif kind == 1:
            payload = json.loads(generate(config, 1, seed=rng.randrange(1 << 30))[0].value)
            payload["payload"]["id"] = f"not-a-uuid-{index}"
            payload["payload"]["challengeId"] = active.challenge_id
            values.append(json.dumps(payload).encode())
        else:
            payload = json.loads(generate(config, 1, seed=rng.randrange(1 << 30))[0].value)
            payload["payload"]["challengeId"] = "99999999-9999-4999-8999-999999999999"
            values.append(json.dumps(payload).encode())
    return values


def build(config: EnvironmentConfig, submissions: int, seed: int = 2026) -> Burst:
    rng = random.Random(seed)
    valid = generate(config, submissions, seed=seed)
    scorers: dict[str, str] = {}
    faults: list[FaultSpec] = []
    fault_counts: Counter[str] = Counter()
    behaviours: Counter[str] = Counter()
    expected_by_value: dict[bytes, str] = {}
    for record in valid:
        submission_id = json.loads(record.value)["payload"]["id"]
        behaviour = "succeed"
        roll = rng.random()
        for name, share in SCORER_MIX.items():
            if roll < share:
                behaviour = name
                break
            roll -= share
        if behaviour != "succeed":
            scorers[submission_id] = behaviour
        behaviours[behaviour] += 1
        for name, share in {**LAUNCH_FAULTS, **EVENT_FAULTS}.items():
            if rng.random() < share:
                # launch faults fire once (the retry launches); event faults on this submission's events
                count = 1 if name in LAUNCH_FAULTS or name == "sqs-duplicate-delivery" else None
                faults.append(FaultSpec(submission_id, name, count))
                fault_counts[name] += 1
        expected_by_value[record.value] = EXPECTED_BY_BEHAVIOUR[behaviour]
    values = [r.value for r in valid]
    duplicates = [rng.choice(values) for _ in range(int(submissions * DUPLICATE_RECORDS))]
    bad = _bad_records(config, int(submissions * BAD_RECORDS), rng)
    # Duplicates come after their original (a later batch); bad records anywhere.
    tail = duplicates + bad
    rng.shuffle(tail)
    stream = values + tail
    records = [InputRecord(position, value) for position, value in enumerate(stream)]
    expected: dict[int, str] = {}
    seen: set[bytes] = set()
    for record in records:
        if record.value in expected_by_value:
            expected[record.position] = "skipped" if record.value in seen else expected_by_value[record.value]
            seen.add(record.value)
        else:
            expected[record.position] = "rejected"
    fault_counts["duplicate-kafka-records"] = len(duplicates)
    fault_counts["bad-records"] = len(bad)
    return Burst(records, Scenario(scorers=scorers, faults=faults), expected, fault_counts, behaviours)


def figures(burst: Burst, outcome: RunOutcome, wall_seconds: float) -> dict[str, object]:
    wrong = Counter(
        f"{burst.expected[r.position]} -> {r.state}" for r in outcome.records if burst.expected[r.position] != r.state
    )
    primary = [r for r in outcome.records if r.submission_id and r.duplicate_of is None]
    return {
        "records": len(outcome.records),
        "unaccounted": len(outcome.unaccounted),
        # per run (submission, phase): a v6 submission has one task and one report per phase
        "duplicateTasks": sum(1 for r in primary for run in r.runs if run.task_count > 1),
        "duplicateReports": sum(1 for r in primary for run in r.runs if len(run.reviews) > 1),
        "wrongFinalStates": sum(wrong.values()),
        "wrongByKind": dict(wrong.most_common()),
        "byState": state_counts(outcome),
        "recordsPerSecond": throughput(outcome),
        "runSeconds": round(outcome.finished_at - outcome.feeding_started_at, 1),
        "wallSeconds": round(wall_seconds, 1),
        "tasksStarted": outcome.tasks_started,
        "runTaskCalls": outcome.run_task_calls,
        "lostStoppedEvents": len(outcome.lost_stopped_events),
        "deadlineHit": outcome.deadline_hit,
        "stalled": outcome.stalled,
        "busyAtStall": outcome.busy_at_stall,
        "limits": {
            "hardCapSeconds": outcome.deadline_seconds,
            "stallSeconds": outcome.stall_seconds,
            "settleSeconds": outcome.settle_seconds,
        },
        "violations": outcome.violations[:20],
        "ok": outcome.ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--env", default="example")
    parser.add_argument("--max-tasks", type=int, default=16)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object at the end")
    args = parser.parse_args(argv)
    config = load_environment(args.env)
    burst = build(config, args.submissions, seed=args.seed)
    # Under a burst the completion worker has a backlog: a STOPPED event may wait longer than the compressed
    # grace of `make run` (~8 s) before it is processed, and the sweeper would reconcile (and re-send) events
    # that are only queued. The graces here (~100 s through the 20 s advance) keep that to lost events.
    deviations = LocalDeviations(
        sweeper_deadline_advance_seconds=20.0, reconcile_grace_seconds=120, sweeper_event_grace_seconds=120
    )
    print(
        f"burst: {len(burst.records)} records ({args.submissions} submissions), environment {config.environment}; "
        f"scorers {dict(burst.behaviours)}; faults {dict(burst.faults)}",
        flush=True,
    )
    began = time.monotonic()
    last = [0.0]

    def progress(final: int, total: int, counts: dict[str, int]) -> None:
        if time.monotonic() - last[0] >= 15:
            last[0] = time.monotonic()
            print(f"  ... {final}/{total} final after {time.monotonic() - began:.0f}s", flush=True)

    outcome = run_local(
        config,
        burst.records,
        burst.scenario,
        deviations=deviations,
        progress=progress,
        max_running_tasks=args.max_tasks,
    )
    result = figures(burst, outcome, time.monotonic() - began)
    print(f"records {result['records']}; unaccounted {result['unaccounted']}")
    print(
        f"duplicate tasks {result['duplicateTasks']}; duplicate reports {result['duplicateReports']}; "
        f"wrong final states {result['wrongFinalStates']} {result['wrongByKind']}"
    )
    print(f"final states {result['byState']}")
    print(
        f"throughput {result['recordsPerSecond']} records/s ({result['runSeconds']}s from the first feed); "
        f"wall time {result['wallSeconds']}s; tasks {result['tasksStarted']} for {result['runTaskCalls']} RunTask "
        f"calls; lost STOPPED events {result['lostStoppedEvents']}"
    )
    print(
        f"deadline hit {result['deadlineHit']}; stalled {result['stalled']} (busy: {result['busyAtStall']}); "
        f"limits {result['limits']}; "
        f"ok {result['ok']}"
    )
    for violation in result["violations"]:  # type: ignore[attr-defined]
        print(f"  violation: {violation}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
