"""What a local run leaves for the report: every record's final state and the figures, collected before the
emulator goes away (`RunOutcome`), and each function's invocation figures (`WorkerStats`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infrastructure.config import EnvironmentConfig
from infrastructure.wiring import WiringPlan
from local_pipeline.awsenv import RequestCounter
from local_pipeline.fargate import ALL_CHALLENGES
from local_pipeline.function_env import function_access_key
from local_pipeline.kafka import FeedStats
from local_pipeline.provision import LocalDeviations
from local_pipeline.tracker import REPORT_FINAL_STATES, RecordResult
from local_pipeline.workers import FunctionPool, FunctionWorker


@dataclass
class WorkerStats:
    name: str
    invocations: int
    errors: int
    cold_starts: int
    init_ms: list[float]
    durations_ms: list[float] = field(default_factory=list)
    # Not in the report (its shape is kept): for the benchmark's account of where the CPU goes.
    instances: int = 1  # instances spawned (the function's concurrency reached)
    busy_most: int = 0  # the most invocations at once
    cpu_seconds: float | None = None  # user + system of its processes (None: not measurable here)


@dataclass
class RunOutcome:
    """Everything the report needs, collected before the emulator goes away."""

    environment: str
    records: list[RecordResult]
    violations: list[str]
    api_violations: list[dict[str, Any]]
    secret_leaks: list[str]
    event_errors: list[str]
    started_at: float
    feeding_started_at: float
    finished_at: float
    deadline_hit: bool  # the hard cap passed
    feed: FeedStats
    aws_calls: dict[str, dict[str, int]]
    workers: list[WorkerStats]
    deviations: LocalDeviations
    log_dir: Path
    dead_letter_counts: dict[str, int]
    completion_dlq_count: int
    tasks_started: int
    run_task_calls: int
    routed_submissions: int
    function_keys: dict[str, str]
    lost_stopped_events: list[str] = field(default_factory=list)  # task ARNs (the lose-stopped-event fault)
    async_invocations: int = 0  # Invoke(Event) calls the fake Lambda accepted (the sweeper's reconciliation)
    stalled: bool = False  # no record changed state for `stall_seconds`
    busy_at_stall: str | None = None  # what was still in flight when the run stalled
    deadline_seconds: float = 0.0  # the hard cap in force
    stall_seconds: float = 0.0
    settle_seconds: float = 0.0  # how long the run waited, quiet, for late commits before reading the API
    # review-api-v6 on the stand-in: every summation as it ended, and the calls by method (decision 090)
    summations: list[dict[str, Any]] = field(default_factory=list)
    summation_calls: dict[str, int] = field(default_factory=dict)
    # Capacity (decision 098): the most tasks not yet STOPPED at any one instant, per challenge and in total
    # (`fargate.ALL_CHALLENGES`), exact, from the fake Fargate; the caps in force at the start (the configured
    # ones: challenge id -> maxRunningTasks, ALL_CHALLENGES -> the environment's); slots still held at the end.
    running_most: dict[str, int] = field(default_factory=dict)
    caps: dict[str, int] = field(default_factory=dict)
    slots_held_at_end: dict[str, int] = field(default_factory=dict)  # pool sort key -> used (non-zero only)
    # Not in the report: the scorer tasks' CPU seconds (forked tasks, decision 116) and each challenge
    # mapping's most pollers at once, for the benchmark.
    task_cpu_seconds: float = 0.0
    pollers_most: dict[str, int] = field(default_factory=dict)
    process_cpu_seconds: dict[str, float] = field(default_factory=dict)  # the engine, emulator processes, zygote

    @property
    def cap_violations(self) -> list[str]:
        """A challenge (or the environment) that ran more tasks at once than its cap allows: never expected."""
        return [
            f"{'the environment' if key == ALL_CHALLENGES else 'challenge ' + key} ran {most} tasks at once, "
            f"cap {self.caps[key]}"
            for key, most in sorted(self.running_most.items())
            if key in self.caps and most > self.caps[key]
        ]

    @property
    def unaccounted(self) -> list[RecordResult]:
        return [r for r in self.records if r.state not in REPORT_FINAL_STATES]

    @property
    def quiescent(self) -> bool:
        """The run ended quiet and settled (not at the stall limit or the hard cap): late commits were seen."""
        return not self.deadline_hit and not self.stalled

    @property
    def ok(self) -> bool:
        return (
            self.quiescent
            and not self.unaccounted
            and not self.violations
            and not self.cap_violations
            and not self.slots_held_at_end
            and not self.api_violations
            and not self.secret_leaks
        )


def worker_stats(
    workers: Mapping[str, FunctionPool | FunctionWorker], durations: dict[str, list[float]]
) -> list[WorkerStats]:
    """Each function's invocations, errors, cold starts and durations (over all its instances)."""
    return [
        WorkerStats(
            name=name,
            invocations=w.invocations,
            errors=w.errors,
            cold_starts=w.cold_starts,
            init_ms=list(w.init_ms),
            durations_ms=list(durations.get(name, [])),
            instances=len(w.instances) if isinstance(w, FunctionPool) else 1,
            busy_most=w.busy_most if isinstance(w, FunctionPool) else 1,
            cpu_seconds=w.cpu_seconds,
        )
        for name, w in workers.items()
    ]


def own_calls(
    counter: RequestCounter, environment: str, functions: Iterable[str], engine_keys: frozenset[str]
) -> dict[str, dict[str, int]]:
    """AWS calls by caller: this environment's functions, and the engine's own keys. On an emulator shared
    with other environments the engine's keys (ESM, fake Fargate, ECS agent) count every environment's."""
    own = {function_access_key(name, environment) for name in functions}
    return {
        caller: services
        for caller, services in counter.by_caller().items()
        if caller in own or not caller.startswith("local-") or caller in engine_keys
    }


def configured_caps(config: EnvironmentConfig, plan: WiringPlan) -> dict[str, int]:
    """The caps as configured (the SSM documents the run started with): per challenge, and the environment's."""
    caps = {c.challenge_id: config.challenge_config(c).capacity.max_running_tasks for c in config.challenges}
    caps[ALL_CHALLENGES] = plan.environment_capacity().max_running_tasks
    return caps
