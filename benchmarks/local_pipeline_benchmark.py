"""End-to-end figures of the local pipeline under load: `--submissions N` valid submissions (default 1000)
spread over the example environment's active challenges, every one through the real functions.

The main run is under Fargate's own limits (`local_pipeline.capacity_ceiling.at_fargate_ceiling`: RunTask paced at
Fargate's sustained 20 a second, every running-task cap at its burst of 100), because the example environment's
pace of 10 a second alone puts 1,000 runs at 100 s or more: measured under it, the figure is the setting, not the
pipeline (decision 116). A second, shorter run (`--contended-submissions`, 250) keeps the environment's own caps,
so runs wait for slots and the pace, and shows that path beside its own floor. `--capacity environment` runs the
main run under the environment's caps instead (and skips the second).

Prints, never asserts: submissions per second end to end, per-stage latency (p50/p95), the AWS calls
the functions made per routed submission, by service (counted at the emulator and the fake Fargate), and where
the CPU went: seconds per process (the engine, the emulator's processes, each function's instances, the scorer
tasks), so the next engineer sees what to cut. Publishes (`benchmarks.figures`): `local_pipeline.seconds_1000`
(seconds for 1,000 submissions end to end, beside the issue's bound of 60 s; a run of another size is scaled
linearly and says so), `local_pipeline.throughput` (submissions per second), `local_pipeline.pace_bound` (the
main run beside the least its RunTask calls take at its pace) and `local_pipeline.environment_caps` (the
contended run beside its pace's floor). Each figure's note names the caps it ran under.
Run: `.venv/bin/python -m benchmarks.local_pipeline_benchmark [--submissions N] [--capacity environment]`.

Time compression is off here (real challenge timeouts, 30 s visibility): a queued scorer must not be
mistaken for an overdue one.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import dataclass

from benchmarks.figures import Figure, publish
from infrastructure.config import load_environment
from infrastructure.config.environment import EnvironmentConfig
from local_pipeline.capacity_ceiling import at_fargate_ceiling, pace_floor_seconds
from local_pipeline.engine import LocalPipeline
from local_pipeline.outcome import RunOutcome
from local_pipeline.provision import LocalDeviations
from local_pipeline.report import STAGES, calls_per_submission, function_calls, stage_timings, state_counts
from local_pipeline.scenario import generate

ISSUE_BOUND_SECONDS = 60.0  # issue 13: 1,000 submissions end to end in under 60 s on this machine
FIGURE_SUBMISSIONS = 1000
FARGATE_CEILING, ENVIRONMENT_CAPS = "fargate-ceiling", "environment"
# The contended run: enough that runs wait for slots and the pace, short enough for `make bench`.
CONTENDED_SUBMISSIONS = 250


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def print_cpu(outcome: RunOutcome, submissions: int, engine_seconds: float, children_seconds: float) -> None:
    """CPU seconds per process (user + system), and per submission: where the machine's two cores went."""
    rows: list[tuple[str, float, str]] = [
        ("engine (this process: ESMs, fake Fargate, stand-in, observation)", engine_seconds, "")
    ]
    for name, seconds in sorted(outcome.process_cpu_seconds.items()):
        if name != "engine":
            rows.append((name, seconds, "at the report"))
    for w in outcome.workers:
        if w.cpu_seconds is not None:
            detail = f"{w.instances} instance(s), at most {w.busy_most} busy, {w.cold_starts} cold start(s)"
            rows.append((f"function {w.name}", w.cpu_seconds, detail))
    rows.append(("scorer tasks", outcome.task_cpu_seconds, f"{outcome.tasks_started} tasks"))
    print(f"CPU seconds by process (user + system; {submissions} submissions):")
    for name, seconds, detail in rows:
        per = seconds / max(1, submissions) * 1000
        print(f"  {name:<72}{seconds:>8.1f} s {per:>8.1f} ms/submission  {detail}")
    counted = sum(seconds for name, seconds, _ in rows if not name.startswith("engine"))
    print(
        f"  {'all child processes (reaped, whole life)':<72}{children_seconds:>8.1f} s; counted above "
        f"{counted:.1f} s (the rest: start-up and stop after the report)"
    )
    if outcome.pollers_most:
        print(f"challenge mappings' most pollers at once: {outcome.pollers_most}")


def _emulator_cpu(pipeline: LocalPipeline) -> dict[str, float]:
    """moto's CPU seconds per `service.Operation`, when the emulator runs in its own processes (decision 115)."""
    read = getattr(pipeline.aws, "emulator_cpu", None)
    if not callable(read):
        return {}
    try:
        groups = read()
    except Exception:  # a benchmark prints what it can
        return {}
    return {
        f"{service}.{operation}": seconds for ops in groups.values() for (service, operation), seconds in ops.items()
    }


@dataclass(frozen=True)
class Measured:
    """One run of the pipeline and what the benchmark read from it."""

    config: EnvironmentConfig
    outcome: RunOutcome
    submissions: int
    run_seconds: float  # the first record fed to the last one final
    emulator_cpu: dict[str, float]

    @property
    def pace_floor(self) -> float:
        return pace_floor_seconds(self.outcome.run_task_calls, self.config)


def capacity_note(config: EnvironmentConfig) -> str:
    capacity = config.capacity
    caps = sorted({c.capacity.max_running_tasks for c in config.challenges if c.active})
    return (
        f"RunTask pace {capacity.run_task_per_second}/s, environment cap {capacity.max_running_tasks}, "
        f"challenge caps {'/'.join(str(cap) for cap in caps)}"
    )


def publish_figures(main_run: Measured, contended: Measured | None) -> None:
    submissions, outcome, run_seconds = main_run.submissions, main_run.outcome, main_run.run_seconds
    scaled = run_seconds * FIGURE_SUBMISSIONS / max(1, submissions)
    size_note = (
        f"{submissions} submissions measured"
        if submissions == FIGURE_SUBMISSIONS
        else f"{submissions} submissions measured, scaled linearly to {FIGURE_SUBMISSIONS}"
    )
    ok_note = "" if outcome.ok else "; the run was NOT ok (see its report)"
    caps = capacity_note(main_run.config)
    figures = [
        Figure(
            "local_pipeline.seconds_1000",
            "local pipeline: 1,000 submissions end to end",
            round(scaled, 1),
            "s",
            floor=ISSUE_BOUND_SECONDS,
            floor_label="the issue's bound",
            goal_ratio=1.0,
            note=f"{size_note}{ok_note}; {caps}",
        ),
        Figure(
            "local_pipeline.throughput",
            "local pipeline: submissions end to end per second",
            round(submissions / run_seconds, 2),
            "submissions/s",
            note=f"the bound is {FIGURE_SUBMISSIONS / ISSUE_BOUND_SECONDS:.1f}/s; {size_note}{ok_note}",
        ),
        Figure(
            "local_pipeline.pace_bound",
            "local pipeline: the run beside the least its RunTask pace allows",
            round(run_seconds, 1),
            "s",
            floor=round(main_run.pace_floor, 1) or None,  # no RunTask call: no floor
            floor_label=f"{outcome.run_task_calls} RunTask calls at {main_run.config.capacity.run_task_per_second}/s",
            note=f"{submissions} submissions; {caps}",
        ),
    ]
    if contended is not None:
        figures.append(
            Figure(
                "local_pipeline.environment_caps",
                f"local pipeline: {contended.submissions} submissions under environment "
                f"{contended.config.environment}'s own caps",
                round(contended.run_seconds, 1),
                "s",
                floor=round(contended.pace_floor, 1) or None,
                floor_label=f"{contended.outcome.run_task_calls} RunTask calls at "
                f"{contended.config.capacity.run_task_per_second}/s",
                note=f"{capacity_note(contended.config)}{'' if contended.outcome.ok else '; the run was NOT ok'}",
            )
        )
    publish("local_pipeline", figures)


def measure(config: EnvironmentConfig, submissions: int, max_tasks: int) -> Measured:
    """One run of `submissions` generated submissions through the pipeline, with everything it printed."""
    records = generate(config, submissions)
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

    print(
        f"local pipeline benchmark: {len(records)} generated submissions, environment {config.environment}; "
        f"{capacity_note(config)}"
    )
    with LocalPipeline(config, deviations=deviations, max_running_tasks=max_tasks) as pipeline:
        outcome = pipeline.run(records, deadline_seconds=120 + 1.0 * len(records), progress=progress)
        emulator_cpu = _emulator_cpu(pipeline)
    run_seconds = outcome.finished_at - outcome.feeding_started_at
    measured = Measured(config, outcome, len(records), run_seconds, emulator_cpu)
    print(f"wall time {time.monotonic() - began:.1f}s (startup {outcome.feeding_started_at - outcome.started_at:.1f}s)")
    print(f"final states: {state_counts(outcome)}; unaccounted {len(outcome.unaccounted)}; ok {outcome.ok}")
    print(
        f"throughput: {len(records) / run_seconds:.1f} submissions/s end to end "
        f"({run_seconds:.1f}s for {len(records)}); "
        f"the pace's floor {measured.pace_floor:.1f}s ({run_seconds / max(measured.pace_floor, 1e-9):.2f} x)"
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
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--env", default="example")
    parser.add_argument("--max-tasks", type=int, default=8)
    parser.add_argument(
        "--capacity",
        choices=[FARGATE_CEILING, ENVIRONMENT_CAPS],
        default=FARGATE_CEILING,
        help="the main run's caps: Fargate's own limits (default) or the environment's as configured",
    )
    parser.add_argument(
        "--contended-submissions",
        type=int,
        default=CONTENDED_SUBMISSIONS,
        help="a second run of this many under the environment's own caps, where runs wait for slots (0: none)",
    )
    args = parser.parse_args(argv)
    config = load_environment(args.env)
    main_config = at_fargate_ceiling(config) if args.capacity == FARGATE_CEILING else config
    engine_before = _cpu_seconds(resource.getrusage(resource.RUSAGE_SELF))
    children_before = _cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN))
    main_run = measure(main_config, args.submissions, args.max_tasks)
    engine = _cpu_seconds(resource.getrusage(resource.RUSAGE_SELF)) - engine_before
    children = _cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN)) - children_before
    print_cpu(main_run.outcome, main_run.submissions, engine, children)
    if main_run.emulator_cpu:
        top = sorted(main_run.emulator_cpu.items(), key=lambda item: -item[1])[:8]
        print("emulator CPU by operation (moto's own, s): " + ", ".join(f"{op} {sec:.1f}" for op, sec in top))
    contended = None
    if args.contended_submissions > 0 and args.capacity == FARGATE_CEILING:
        print()
        contended = measure(config, args.contended_submissions, args.max_tasks)
    publish_figures(main_run, contended)
    return 0


if __name__ == "__main__":
    sys.exit(main())
