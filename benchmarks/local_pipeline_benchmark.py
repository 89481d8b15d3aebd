"""End-to-end figures of the local pipeline under load: `--generate N` valid submissions (default 1000)
spread over the example environment's active challenges, every one through the real functions.

Prints, never asserts: submissions per second end to end, per-stage latency (p50/p95), and the AWS calls
the functions made per routed submission, by service (counted at the emulator and the fake Fargate).
Run: `.venv/bin/python -m benchmarks.local_pipeline_benchmark [--submissions N]`.

Time compression is off here (real challenge timeouts, 30 s visibility): a queued scorer must not be
mistaken for an overdue one.
"""

from __future__ import annotations

import argparse
import sys
import time

from infrastructure.config import load_environment
from local_pipeline.engine import run_local
from local_pipeline.provision import LocalDeviations
from local_pipeline.report import STAGES, calls_per_submission, function_calls, stage_timings, state_counts
from local_pipeline.scenario import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--env", default="example")
    parser.add_argument("--max-tasks", type=int, default=8)
    args = parser.parse_args(argv)
    config = load_environment(args.env)
    records = generate(config, args.submissions)
    deviations = LocalDeviations(
        queue_visibility_timeout_seconds=30,
        completion_visibility_timeout_seconds=30,
        challenge_timeout_seconds=None,
        sweeper_deadline_advance_seconds=0,
        sweep_interval_seconds=5,
    )
    began = time.monotonic()
    last = [0.0]

    def progress(final: int, total: int, counts: dict[str, int]) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            print(f"  ... {final}/{total} final", flush=True)

    print(f"local pipeline benchmark: {len(records)} generated submissions, environment {config.environment}")
    outcome = run_local(
        config,
        records,
        deadline_seconds=120 + 1.0 * len(records),
        deviations=deviations,
        progress=progress,
        max_running_tasks=args.max_tasks,
    )
    run_seconds = outcome.finished_at - outcome.feeding_started_at
    print(f"wall time {time.monotonic() - began:.1f}s (startup {outcome.feeding_started_at - outcome.started_at:.1f}s)")
    print(f"final states: {state_counts(outcome)}; unaccounted {len(outcome.unaccounted)}; ok {outcome.ok}")
    print(
        f"throughput: {len(records) / run_seconds:.1f} submissions/s end to end ({run_seconds:.1f}s for {len(records)})"
    )
    print(f"{'stage':<10}{'p50 s':>10}{'p95 s':>10}{'max s':>10}{'n':>7}")
    timings = stage_timings(outcome)
    for stage in STAGES:
        t = timings[stage]
        print(f"{stage:<10}{t['p50'] or 0:>10.3f}{t['p95'] or 0:>10.3f}{t['max'] or 0:>10.3f}{t['count']:>7}")
    print(f"AWS calls per routed submission by service (functions only): {calls_per_submission(outcome)}")
    n = max(1, outcome.routed_submissions)
    for name, services in function_calls(outcome).items():
        total = sum(services.values())
        if total:
            per = ", ".join(f"{s} {c / n:.2f}" for s, c in sorted(services.items()))
            print(f"  {name}: {per}")
    print(
        f"RunTask calls {outcome.run_task_calls}, tasks {outcome.tasks_started}; Kafka invocations "
        f"{outcome.feed.invocations}; function errors {sum(w.errors for w in outcome.workers)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
