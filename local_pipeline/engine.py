"""The local pipeline engine: the whole system on one machine, on the embedded AWS emulator.

    records --(MSK events)--> router worker --SNS--> per-challenge queues --(SQS ESM)--> challenge workers
        --RunTask--> fake Fargate (a real scorer process) --STOPPED event--> EventBridge rule --> SQS
        --> completion worker --> Topcoder stand-in;   sweeper worker on a schedule --StopTask--> fake Fargate
        (and, for a STOPPED event never processed: DescribeTasks, then Invoke(Event) --> fake Lambda --> the
        completion rule target's queue --> completion worker)

The engine plays the AWS services that moto cannot run: the event source mappings (Kafka and SQS), the
rule's Lambda target, the schedule, Lambda's asynchronous Invoke, and Fargate. Everything the functions do
goes through their real handlers in their own processes, against resources created from the wiring plan.

This module is the lifecycle (start and stop the emulator, the stand-in, the fakes and the workers; apply a
scenario; run records to their final states, or serve until stopped). Its rooms (decision 102):
`event_sources` (AWS's side: the mappings, the rule target, the schedule), `results` (reading what the pipeline
left), `function_env` (each worker's environment), `record_ids` (an input record's ids, read by the router's
own decoding), `task_definitions` (the scorer task definitions the fake Fargate holds), `outcome` (the report's
data), `limits` (when a run ends). It stays above 400 lines because the lifecycle of each part and the run loop
that follows them share the same handles (`_started()`); everything else the engine used to do has its room.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fault_injection import BOTOCORE_KINDS, FAULT_PLAN_ENV, HTTP_KINDS, FaultKind, FaultPlan
from infrastructure.config import EnvironmentConfig
from infrastructure.wiring import WiringPlan
from local_pipeline.awsenv import EcsRoute, LocalAws
from local_pipeline.event_sources import ENGINE_FAULTS, ESM_KEY, EventSources
from local_pipeline.fakes import ECS_AGENT_KEY, FARGATE_KEY, start_fake_fargate, start_fake_lambda
from local_pipeline.fargate import TASK_FAULTS, FakeFargate
from local_pipeline.function_env import function_access_key, function_environment, worker_spec
from local_pipeline.kafka import FeedStats, KafkaMessage, assign_to_topics
from local_pipeline.lambda_endpoint import FakeLambda
from local_pipeline.limits import (
    DEADLINE,
    DEFAULT_STALL_SECONDS,
    SETTLE_FLOOR_SECONDS,
    SETTLE_MARGIN_SECONDS,
    STALLED,
    RunWatch,
    default_hard_cap_seconds,
)
from local_pipeline.outcome import RunOutcome, WorkerStats, configured_caps, own_calls, worker_stats
from local_pipeline.provision import LocalDeviations, LocalResources, TopcoderEndpoints, provision
from local_pipeline.record_ids import submission_of
from local_pipeline.results import ResultReader, review_api_url, summation_calls, v6_summations
from local_pipeline.scenario import SCORER_SCRIPT, InputRecord, Scenario
from local_pipeline.tracker import Observations, RecordResult, classify, violations
from local_pipeline.workers import (
    FunctionPool,
    FunctionWorker,
    Invocation,
    WorkerSpec,
    process_cpu_seconds,
    start_all,
    stop_all,
)
from mm_contracts.settings import RouterSettings
from topcoder_standin import TopcoderStandIn

__all__ = ["LocalPipeline", "RunOutcome", "WorkerStats", "run_local"]

ProgressCallback = Callable[[int, int, dict[str, int]], None]

_ENGINE_KEYS = frozenset({ESM_KEY, FARGATE_KEY, ECS_AGENT_KEY, "local-engine"})
_OBSERVE_INTERVAL = 0.25


@dataclass(frozen=True)
class Feeding:
    """Records on their way in: the Kafka messages (every topic, in input order), the feed's account, and an
    event set once every record (and any re-delivery) was fed."""

    messages: list[KafkaMessage]
    stats: FeedStats
    done: threading.Event
    started_at: float


def _progress_signature(results: list[RecordResult], feed: FeedStats) -> tuple[Any, ...]:
    """Changes whenever any record moves (state, reason, lifecycle, report, tasks, reviews) or the feed does."""
    return (
        feed.invocations,
        feed.retries,
        tuple((r.state, r.reason, r.lifecycle_state, r.report_status, r.task_count, len(r.reviews)) for r in results),
    )


def _report_progress(progress: ProgressCallback, results: list[RecordResult]) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
    progress(sum(1 for r in results if r.final), len(results), counts)


class LocalPipeline:
    """Start with `with LocalPipeline(config) as pipeline:`, then `pipeline.run(records, scenario)` (records to
    their final states and a `RunOutcome`), or `pipeline.serve()` (everything up until `stop_serving()`)."""

    def __init__(
        self,
        config: EnvironmentConfig,
        *,
        deviations: LocalDeviations | None = None,
        log_dir: Path | None = None,
        scorer_command: tuple[str, ...] | None = None,
        max_running_tasks: int = 8,
        partitions: int = 1,
        aws: LocalAws | None = None,
    ) -> None:
        self.config = config
        self.plan = WiringPlan(config)
        self.deviations = deviations or LocalDeviations()
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="mm-local-run-"))
        self.scorer_command = scorer_command or (sys.executable, str(SCORER_SCRIPT))
        self.max_running_tasks = max_running_tasks
        self.partitions = partitions
        # An emulator passed in is shared with other environments (`local run --env a --env b`) and outlives
        # this pipeline: every resource name carries the environment, so nothing is shared but the server.
        self.aws = aws or LocalAws(config.region)
        self._owns_aws = aws is None
        self.standin: TopcoderStandIn | None = None
        self.fargate: FakeFargate | None = None
        self.lambda_endpoint: FakeLambda | None = None
        self.resources: LocalResources | None = None
        self.sources: EventSources | None = None
        self.reader: ResultReader | None = None
        self.workers: dict[str, FunctionPool] = {}  # each function's instances, up to its concurrency
        self.worker_specs: dict[str, WorkerSpec] = {}
        self.twins: dict[str, FunctionWorker] = {}  # second challenge-processor instances (SQS duplicates)
        self._token = ""
        self._durations: dict[str, list[float]] = {}
        self._durations_lock = threading.Lock()
        self._serving = threading.Event()
        self.started_at = 0.0
        self.fault_plan = FaultPlan()
        self._worker_plan_installed = False
        self.busy_at_stall: str | None = None
        self._sweeps_now: list[threading.Thread] = []  # sweeps an asynchronous Invoke of the sweeper started

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalPipeline:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """The emulator (unless shared), the stand-in, the resources, the fake Fargate and Lambda, the workers."""
        self.started_at = time.time()
        if self.log_dir.exists():
            shutil.rmtree(self.log_dir, ignore_errors=True)
        (self.log_dir / "functions").mkdir(parents=True, exist_ok=True)
        if self._owns_aws:
            self.aws.start()
        self.standin = TopcoderStandIn().start()
        self._token = self.standin.issue_token("mm-processor-local")
        self.resources = provision(
            self.plan,
            self.aws,
            TopcoderEndpoints(self.standin.base_url, self.standin.token_url, self._token, review_api_url(self.standin)),
            self.deviations,
        )
        self.fargate = start_fake_fargate(
            self.aws,
            self.config,
            self.standin,
            self.resources,
            scorer_command=self.scorer_command,
            log_dir=self.log_dir,
            max_running_tasks=self.max_running_tasks,
            secret_values=lambda: [self._token],
        )
        # The operator tool's one --endpoint-url reaches the tasks here too (`mm-processor stop`, decision 107).
        self.aws.route_ecs_tasks(EcsRoute(self.fargate.endpoint, self.fargate.cluster_arn))
        self.lambda_endpoint = start_fake_lambda(self.aws, self.plan, self.resources)
        self.reader = ResultReader(self.aws, self.resources, self.standin, self.fargate)
        self.sources = EventSources(
            aws=self.aws,
            config=self.config,
            plan=self.plan,
            deviations=self.deviations,
            resources=self.resources,
            invoke=self.invoke,
            twins=self.twins,
            instances=lambda name: self.workers[name].size if name in self.workers else 1,
        )
        for spec in self.resources.functions.values():
            env = function_environment(
                spec, self.aws, self.fargate.endpoint, self.config.environment, self.lambda_endpoint.endpoint
            )
            self.worker_specs[spec.name] = worker_spec(
                spec, env, plan=self.plan, deviations=self.deviations, log_dir=self.log_dir
            )
            self.workers[spec.name] = FunctionPool(self.worker_specs[spec.name], spec.concurrency)
        start_all(self.workers.values())
        self._serve_sweeper_invocations(self.lambda_endpoint)

    def _serve_sweeper_invocations(self, endpoint: FakeLambda) -> None:
        """An asynchronous Invoke of the sweeper (the operator's dispatch trigger, decision 109) runs one sweep now,
        in its worker (one at a time, as its reserved concurrency of 1 has it), beside the schedule's. Reached on the
        fake Lambda's endpoint and, for a client with one endpoint for every service, on the emulator's."""
        name = self.plan.names.sweeper_function

        def sweep_now(payload: bytes) -> None:
            event = json.loads(payload or b"{}")
            thread = threading.Thread(target=self._sweep_once, args=(name, event), name="sweep-now", daemon=True)
            self._sweeps_now.append(thread)
            thread.start()

        endpoint.register(name, sweep_now)
        self.aws.route_lambda_invocations(endpoint)

    def _sweep_once(self, name: str, event: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the pipeline stopping under it: the schedule's sweep is the net
            self.invoke(name, event)

    def stop(self) -> None:
        self._serving.set()
        if self.sources is not None:
            self.sources.stop()
        if self.fargate is not None:
            self.aws.unroute_ecs_tasks(EcsRoute(self.fargate.endpoint, self.fargate.cluster_arn))
            self.fargate.stop()
        stop_all([*self.workers.values(), *self.twins.values()])
        for thread in self._sweeps_now:
            thread.join(timeout=5)
        if self.lambda_endpoint is not None:
            self.aws.unroute_lambda_invocations(self.lambda_endpoint)
            self.lambda_endpoint.stop()
        if self.standin is not None:
            self.standin.stop()
        if self._owns_aws:
            self.aws.stop()

    def _started(self) -> tuple[LocalResources, TopcoderStandIn, FakeFargate, EventSources, ResultReader]:
        assert self.resources is not None, "start() first"
        assert self.standin is not None
        assert self.fargate is not None
        assert self.sources is not None
        assert self.reader is not None
        return self.resources, self.standin, self.fargate, self.sources, self.reader

    # ------------------------------------------------------------------ invoking
    def invoke(self, function_name: str, event: dict[str, Any], *, queued_at: float | None = None) -> Invocation:
        """One invocation of a function's worker, timed (the report's per-function durations); `queued_at`: when
        the event entered its queue, if it came through one (`FunctionPool.invoke`)."""
        result = self.workers[function_name].invoke(event, queued_at=queued_at)
        with self._durations_lock:
            self._durations.setdefault(function_name, []).append(result.duration_ms)
        return result

    def start_event_sources(self) -> None:
        """AWS's side after the router (each challenge queue's mapping, the completion rule's target, the sweeper's
        schedule), polling until the pipeline stops: what a caller publishing to SNS itself needs."""
        self._started()[3].start()

    @property
    def router_settings(self) -> RouterSettings:
        return self._started()[3].router_settings

    def feed(self, records: list[InputRecord]) -> Feeding:
        """Seed the stand-in with every submission the router will route, then feed the records to the router
        on their topics (one event source mapping per platform topic, decision 084), in a thread."""
        _, standin, _, sources, _ = self._started()
        by_topic = assign_to_topics(records, tuple(s.topic for s in self.plan.kafka_sources()), self.partitions)
        messages = sorted((m for ms in by_topic.values() for m in ms), key=lambda m: m.position)
        for message in messages:
            found = submission_of(message, sources.router_settings, self.config.challenges)
            if found is not None:
                standin.add_submission(*found)
        stats = FeedStats()  # one account of the Kafka side, whichever topic a record came on
        started_at = time.time()
        return Feeding(messages, stats, sources.feed_kafka(by_topic, stats), started_at)

    def serve(self, records: list[InputRecord] | None = None, scenario: Scenario | None = None) -> None:
        """Everything up and serving (the scenario applied, AWS's side polling, `records` fed) until
        `stop_serving()`, `stop()` or Ctrl-C: for poking at a running pipeline (`--endpoint-url` of the
        emulator, `self.aws.endpoint`)."""
        if self.resources is None:
            self.start()
        self._serving.clear()
        self.apply_scenario(scenario or Scenario())
        self.start_event_sources()
        if records:
            self.feed(records)
        with contextlib.suppress(KeyboardInterrupt):
            while not self._serving.wait(timeout=1.0):
                pass

    def stop_serving(self) -> None:
        """Let `serve()` return (the pipeline keeps its state until `stop()`)."""
        self._serving.set()

    # ------------------------------------------------------------------ scenario
    def apply_scenario(self, scenario: Scenario) -> FaultPlan:
        """Scorer behaviours to the fake Fargate; the scenario's faults as ONE `fault_injection.FaultPlan`
        (windows from now, the start of the feed), each kind to whoever injects it (decision 079): AWS kinds
        and the crash after a review POST to the workers (`MM_FAULT_PLAN`, installed on the handlers'
        clients), Topcoder kinds to the stand-in, task and STOPPED-event kinds to the fake Fargate, and the
        delivery kinds (SQS duplicates, Kafka re-delivery) to the engine's event source mappings."""
        _, standin, fargate, sources, _ = self._started()
        for target, behaviour in scenario.scorers.items():
            fargate.set_behaviour(target, behaviour)
        rules = [fault.to_rule() for fault in scenario.faults]
        epoch = time.time()
        plan = FaultPlan(rules=rules, epoch=epoch)

        def only(kinds: Any) -> FaultPlan:
            return FaultPlan(rules=[r for r in rules if r.kind in kinds], epoch=epoch)

        fargate.use_plan(only(TASK_FAULTS))
        standin.use_fault_plan(only(HTTP_KINDS - {FaultKind.CRASH_AFTER_REVIEW_POST}), on_rotate=self._rotate_token)
        worker_plan = only(BOTOCORE_KINDS | {FaultKind.CRASH_AFTER_REVIEW_POST})
        if worker_plan.rules or self._worker_plan_installed:
            for worker in self.workers.values():
                worker.configure(worker_plan.to_env())
            self._worker_plan_installed = bool(worker_plan.rules)
        # "The first N calls" is counted in each worker process: such a plan keeps one instance per function.
        counted = any(rule.first_n is not None for rule in worker_plan.rules)
        for pool in self.workers.values():
            pool.limit_instances(1 if counted else None)
        sources.delivery_plan = only(ENGINE_FAULTS)
        if sources.delivery_plan.has(FaultKind.SQS_DUPLICATE_DELIVERY):
            self._start_twins()
        self.fault_plan = plan
        return plan

    @property
    def delivery_plan(self) -> FaultPlan:
        """The kinds the engine's event source mappings play (SQS duplicates, Kafka re-delivery)."""
        return self.sources.delivery_plan if self.sources is not None else FaultPlan()

    def _rotate_token(self, token: str) -> None:
        """topcoder-401-rotated: the operator puts the new token into the static parameter."""
        assert self.resources is not None
        self._token = token
        self.aws.client("ssm", ECS_AGENT_KEY).put_parameter(
            Name=self.resources.token_parameter_name, Value=token, Type="SecureString", Overwrite=True
        )

    def _start_twins(self) -> None:
        """A second instance of each challenge processor, so a duplicate SQS delivery runs at the same time."""
        missing = [
            FunctionWorker(self.worker_specs[c.function_name])
            for c in (self.resources.challenges.values() if self.resources else [])
            if c.function_name not in self.twins
        ]
        for worker in missing:
            self.twins[worker.spec.function_name] = worker
        start_all(missing)
        env = self.workers[next(iter(self.twins))].spec.env if self.twins else {}
        for worker in missing:
            worker.configure({k: v for k, v in env.items() if k == FAULT_PLAN_ENV})

    # ------------------------------------------------------------------ run
    def settle_seconds(self) -> float:
        """How long a quiet pipeline is watched before the report is read: the slowest configured late landing
        (an API commit delay, a delayed STOPPED event) plus a margin, and never less than the floor."""
        slowest = max(
            self.standin.slowest_delay if self.standin is not None else 0.0,
            self.fargate.slowest_event_delay if self.fargate is not None else 0.0,
        )
        return max(SETTLE_FLOOR_SECONDS, slowest + SETTLE_MARGIN_SECONDS) if slowest else SETTLE_FLOOR_SECONDS

    def _observations(self) -> Observations:
        return Observations(
            expected_phases={
                c.challenge_id: tuple(p.phase for p in self.config.challenge_config(c).submission_phases)
                for c in self.config.challenges
            },
        )

    def _look(self, feeding: Feeding, obs: Observations, pending: set[str] | None, drain_limit: int = 100) -> Any:
        """One look at everything the pipeline left, then every record's state."""
        reader = self._started()[4]
        # The failure bucket is listed while the feed put a batch there not seen yet (always at the last look).
        failure_batches = feeding.stats.on_failure_batches if pending is not None else None
        reader.observe(obs, time.time(), pending, drain_limit, failure_batches)
        reader.observe_api_and_tasks(obs)
        return classify(feeding.messages, obs, feeding_done=feeding.done.is_set())

    def _follow(
        self, feeding: Feeding, obs: Observations, watch: RunWatch, progress: ProgressCallback | None
    ) -> tuple[list[RecordResult], str, float]:
        """Look until the run ends (quiet and settled, the hard cap, or a stall): (results, ending, settle)."""
        reader = self._started()[4]
        results: list[RecordResult] = []
        interval = min(1.0, _OBSERVE_INTERVAL + 0.0005 * len(feeding.messages))  # big runs: fewer, larger looks
        settle = self.settle_seconds()
        while True:
            pending = {str(r.submission_id) for r in results if r.submission_id and not r.final} if results else None
            results = self._look(feeding, obs, pending)
            if progress is not None:
                _report_progress(progress, results)
            # Quiescent: every record final, nothing in flight (queues, tasks, API requests, delayed events).
            # A backlog that drains (the completion worker working through queued duplicate events after every
            # record is final) is progress too: its depth is part of the signature, so it is not taken for a stall.
            all_final = all(r.final for r in results)
            busy = reader.busy() if feeding.done.is_set() and all_final else "records not final"
            if busy is None:
                settle = self.settle_seconds()
            ending = watch.look((_progress_signature(results, feeding.stats), busy), busy, settle, time.time())
            if ending is not None:
                if ending == STALLED:
                    self.busy_at_stall = busy
                return results, ending, settle
            time.sleep(interval)

    def run(
        self,
        records: list[InputRecord],
        scenario: Scenario | None = None,
        *,
        deadline_seconds: float | None = None,
        stall_seconds: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunOutcome:
        """Feed `records` and follow them until every one is final and the pipeline is quiescent (then a settle
        period), or until no record changed state for `stall_seconds` (default DEFAULT_STALL_SECONDS), or the
        hard cap `deadline_seconds` (default `default_hard_cap_seconds(len(records))`) from the first feed."""
        _, _, _, sources, _ = self._started()
        self.apply_scenario(scenario or Scenario())
        feeding_started = time.time()
        self.start_event_sources()
        feeding = self.feed(records)
        obs = self._observations()
        obs.first_invoked_at = feeding.stats.first_invoked_at
        hard_cap = deadline_seconds if deadline_seconds is not None else default_hard_cap_seconds(len(feeding.messages))
        stall_limit = stall_seconds if stall_seconds is not None else DEFAULT_STALL_SECONDS
        watch = RunWatch(started_at=feeding_started, hard_cap_seconds=hard_cap, stall_seconds=stall_limit)
        _, ending, settle = self._follow(feeding, obs, watch, progress)
        finished = time.time()
        sources.stop()
        # Last look: anything that landed while the threads wound down, then the API and the tasks.
        results = self._look(feeding, obs, None, drain_limit=1_000_000)
        outcome = self._outcome(results, obs, feeding, ending=ending, started=feeding_started, finished=finished)
        outcome.deadline_seconds, outcome.stall_seconds, outcome.settle_seconds = hard_cap, stall_limit, settle
        return outcome

    def configured_caps(self) -> dict[str, int]:
        """The caps as configured (the SSM documents the run started with): per challenge, and the environment's."""
        return configured_caps(self.config, self.plan)

    def _outcome(
        self,
        results: list[RecordResult],
        obs: Observations,
        feeding: Feeding,
        *,
        ending: str,
        started: float,
        finished: float,
    ) -> RunOutcome:
        """Everything the report needs, read before the emulator goes away."""
        resources, standin, fargate, _, reader = self._started()
        quiet = ending not in (DEADLINE, STALLED)
        return RunOutcome(
            environment=self.config.environment,
            records=results,
            violations=violations(results),
            api_violations=[
                {"method": r.method, "path": r.path, "status": r.status, "errors": r.errors}
                for r in standin.violations()
            ],
            secret_leaks=list(fargate.leaks),
            event_errors=list(fargate.event_errors),
            started_at=self.started_at,
            feeding_started_at=started,
            finished_at=finished,
            deadline_hit=ending == DEADLINE,
            feed=feeding.stats,
            aws_calls=own_calls(self.aws.counter, self.config.environment, self.workers, _ENGINE_KEYS),
            workers=worker_stats(self.workers, self._durations),
            deviations=self.deviations,
            log_dir=self.log_dir,
            dead_letter_counts=dict(reader.dead_letter_counts),
            completion_dlq_count=reader.completion_dlq_count(),
            tasks_started=len(fargate.tasks),
            run_task_calls=fargate.run_task_calls,
            routed_submissions=len({str(r.get("submissionId")) for r in obs.routed.values()}),
            function_keys={name: function_access_key(name, self.config.environment) for name in resources.functions},
            lost_stopped_events=list(fargate.lost_events),
            async_invocations=len(self.lambda_endpoint.invocations) if self.lambda_endpoint else 0,
            stalled=ending == STALLED,
            busy_at_stall=self.busy_at_stall if ending == STALLED else None,
            summations=v6_summations(standin),
            summation_calls=summation_calls(standin),
            running_most=dict(fargate.running.most),
            caps=configured_caps(self.config, self.plan),
            slots_held_at_end=reader.slots_held() if quiet else {},
            task_cpu_seconds=fargate.task_cpu_seconds,
            process_cpu_seconds=self._process_cpu_seconds(),
            pollers_most=dict(self.sources.pollers_most) if self.sources is not None else {},
        )

    def _process_cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of the processes beside the workers: this one, the emulator's, the task zygote."""
        pids = {"engine": os.getpid()}
        emulator_pids = getattr(self.aws, "pids", None)  # an emulator in its own processes (decision 115)
        if isinstance(emulator_pids, dict):
            pids.update({f"emulator {group}": pid for group, pid in emulator_pids.items()})
        if self.fargate is not None:
            pids.update({f"task zygote {i}": pid for i, pid in enumerate(self.fargate.runner.zygote_pids())})
        seconds = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        return {name: value for name, value in seconds.items() if value is not None}


def run_local(
    config: EnvironmentConfig,
    records: list[InputRecord],
    scenario: Scenario | None = None,
    *,
    deadline_seconds: float | None = None,
    stall_seconds: float | None = None,
    deviations: LocalDeviations | None = None,
    log_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    max_running_tasks: int = 8,
    partitions: int = 1,
) -> RunOutcome:
    with LocalPipeline(
        config,
        deviations=deviations,
        log_dir=log_dir,
        max_running_tasks=max_running_tasks,
        partitions=partitions,
    ) as pipeline:
        return pipeline.run(
            records, scenario, deadline_seconds=deadline_seconds, stall_seconds=stall_seconds, progress=progress
        )
