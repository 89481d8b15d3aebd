"""AWS calls per run (issue 13, decision 114): every call the functions make for one run (submission, phase), by
function and operation, beside its floor; and what the cost model needs per run (invocations, durations, memory,
SQS and SNS requests, DynamoDB capacity units, log bytes, EventBridge events).

In process, in the fault matrix's world: the real handlers on moto (DynamoDB, SSM), fake ECS/SQS/SNS and Topcoder
APIs, one virtual clock at the deployed timings (config cache 300 s, caps cache 60 s, sweep every 300 s), calls
counted with botocore's event system (`tests/integration/capacity/call_counter.py`). Deterministic and fast; the
local pipeline (being made concurrent in the same session) counts the same calls at its emulator by service only.
Warm: the calls of each function's first (cold) invocation are subtracted, and so are its runs.

Prints, never asserts. Run: `.venv/bin/python -m benchmarks.aws_calls_benchmark [--submissions 50] [--v6 10]
[--contended 20]` (the last: a challenge cap of 2 that binds, what a run that waits costs, beside the floor).
"""

from __future__ import annotations

import argparse
import contextvars
import io
import logging
import math
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

from benchmarks.figures import Figure, publish
from mm_capacity.keys import POOL_PARTITION
from mm_contracts.dynamodb_item_size import item_bytes, write_units
from mm_contracts.models.capacity import largest_cap_at_pace, pool_item_bytes_bound
from mm_contracts.names import CAPACITY_TABLE_PARTITION_KEY

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")  # the log bytes are a figure: keep the INFO lines

FUNCTIONS = ("router", "challenge", "completion", "sweeper")
COST_NAMES = {
    "router": "router",
    "challenge": "challenge_processor",
    "completion": "completion",
    "sweeper": "timeout_sweeper",
}
STATUS_WRITE_OPS = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")
# The floors (decision 114), per run of an uncontended challenge.
RUN_STATUS_WRITES_FLOOR = 3  # run created LAUNCHING holding its slots (one transaction), task recorded, outcome
REPORT_STATUS_WRITES_FLOOR = 1  # report marked (its claim rides on the outcome write): a run that needs a report
CAPACITY_WRITES_FLOOR = 2  # RunTask pace token, slot released (the slot is taken in the run's creating write)
REQUIRED_READS_FLOOR = 2  # the new run's one read (its member's fair round), the release's one read of who waits
KB = 1024
CONTENDED = ".contended"  # the label of the figures of a world whose challenge cap binds
SWEEPS_PER_MONTH = 30 * 24 * 12  # the sweeper's deployed schedule: every 5 minutes
COST_MODEL_RUNS_PER_MONTH = 1_000_000  # what the cost model (117) prices
# Every pool item a run writes, full: the largest cap a deploy or `caps set` allows at Fargate's sustained 20 RunTask
# a second (decision 125; `largest_cap_at_pace(20)`).
FULL_POOL_PACE = 20
FULL_POOL_HOLDERS = largest_cap_at_pace(FULL_POOL_PACE)


class _Meter:
    """What one world run cost, attributed to the function whose handler ran: calls, items written per table,
    log bytes, invocations (the first of each is cold) and their wall time."""

    def __init__(self, status_table: str) -> None:
        self.current = contextvars.ContextVar("function", default="setup")
        self.cold = contextvars.ContextVar("cold", default=False)
        self.status_table = status_table
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.cold_calls: Counter[tuple[str, str, str]] = Counter()
        self.status_writes: Counter[str] = Counter()
        self.item_writes: Counter[tuple[str, str, bool]] = Counter()  # (function, table kind, transactional)
        self.item_reads: Counter[str] = Counter()
        self.invocations: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self.log_bytes: Counter[str] = Counter()
        self.sweeps = 0
        self.status_item_bytes = 0.0
        # Write units of the challenge and completion functions' writes, from each item's size before and after the
        # write (decision 125); and the same writes with every pool item full (`FULL_POOL_HOLDERS` holders).
        self.sizer: Callable[[str, dict[str, Any]], tuple[int, bool]] | None = None
        self.write_units: Counter[str] = Counter()
        self.write_units_pools_full: Counter[str] = Counter()
        self._sized: list[tuple[str, dict[str, Any], bool, int, bool]] = []  # table, key, transactional, before, pool

    def on_call(self, service: str) -> Callable[..., None]:
        def count(model: Any, **_: Any) -> None:
            key = (self.current.get(), service, model.name)
            (self.cold_calls if self.cold.get() else self.calls)[key] += 1

        return count

    def on_dynamodb_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.cold.get():
            return
        if model.name in ("TransactWriteItems", *STATUS_WRITE_OPS):
            self._sized = []
            self._count_writes(model.name, params)
        elif model.name == "GetItem":
            self.item_reads[self._kind(params["TableName"])] += 1
        elif model.name == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                self.item_reads[self._kind(table)] += len(request.get("Keys", []))
        elif model.name == "Query":
            self.item_reads["query"] += 1

    def _count_writes(self, operation: str, params: dict[str, Any]) -> None:
        function = self.current.get()
        if operation != "TransactWriteItems":
            self.item_writes[(function, self._kind(params["TableName"]), False)] += 1
            self.status_writes[function] += params["TableName"] == self.status_table
            self._size_before(params["TableName"], params.get("Key") or params.get("Item") or {}, False)
            return
        # A ConditionCheck reads the status item, it writes nothing there; it is still billed as a write unit.
        items = [(kind, body) for item in params.get("TransactItems", []) for kind, body in item.items()]
        for _, body in items:
            self.item_writes[(function, self._kind(body["TableName"]), True)] += 1
            self._size_before(body["TableName"], body.get("Key") or body.get("Item") or {}, True)
        if any(body["TableName"] == self.status_table and kind != "ConditionCheck" for kind, body in items):
            self.status_writes[function] += 1

    def _size_before(self, table: str, key_or_item: dict[str, Any], transactional: bool) -> None:
        if self.sizer is None or self.current.get() not in ("challenge", "completion"):
            return
        before, pool = self.sizer(table, key_or_item)
        self._sized.append((table, key_or_item, transactional, before, pool))

    def on_dynamodb_response(self, **_: Any) -> None:
        """After a write (its condition met or not): each item's units, from the larger of its sizes before and
        after (a failed condition is billed by the item's size too)."""
        sized, self._sized = self._sized, []
        if self.sizer is None:
            return
        function = self.current.get()
        for table, key_or_item, transactional, before, pool in sized:
            after, _still_a_pool = self.sizer(table, key_or_item)
            units = write_units(max(before, after), transactional=transactional)
            self.write_units[function] += units
            full = pool_item_bytes_bound(FULL_POOL_HOLDERS) if pool else max(before, after)
            self.write_units_pools_full[function] += write_units(full, transactional=transactional)

    def _kind(self, table: str) -> str:
        return "status" if table == self.status_table else "capacity"

    def attribute(self, target: Any, name: str, function: str) -> None:
        original = getattr(target, name)

        def attributed(*args: Any, **kwargs: Any) -> Any:
            first = self.invocations[function] == 0
            self.invocations[function] += 1
            token, cold = self.current.set(function), self.cold.set(first)
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if not first:
                    self.seconds[function] = self.seconds.get(function, 0.0) + time.perf_counter() - began
                self.current.reset(token)
                self.cold.reset(cold)

        setattr(target, name, attributed)


class _CountingStream(io.TextIOBase):
    """stdout while the world runs: the functions' log lines (Powertools writes JSON to stdout), counted and dropped."""

    def __init__(self, meter: _Meter) -> None:
        self._meter = meter

    def write(self, text: str) -> int:
        if not self._meter.cold.get():
            self._meter.log_bytes[self._meter.current.get()] += len(text.encode())
        return len(text)


def _run_world(
    submissions: int,
    *,
    v6: bool,
    spacing: float,
    kafka_batch: int,
    report: Callable[[_Meter, Any], list[Figure]],
    challenge_cap: int = 1000,
) -> list[Figure]:
    """The world run (its function output counted, not shown), then `report(meter, world)` while moto still holds
    its tables."""
    from moto import mock_aws

    from fault_injection import FaultPlan
    from mm_adapters import aws as aws_clients
    from mm_contracts.models.phase import Platform
    from tests.matrix.deployment import STATUS_TABLE
    from tests.matrix.world import World

    aws_clients.reset_clients()
    meter = _Meter(STATUS_TABLE)
    with mock_aws():
        # Caps that never bind: the floor of an uncontended run (a contended one adds an admitted run's message).
        world = World(
            FaultPlan(),
            platform=Platform.V6 if v6 else Platform.V5,
            config={"capacity": {"maxRunningTasks": challenge_cap}},
            environment_capacity={"maxRunningTasks": 1000, "runTaskPerSecond": 100},
        )
        stream = _CountingStream(meter)
        swapped = _log_handlers_to(stream)
        try:
            with redirect_stdout(stream):
                _measure(world, meter, submissions, v6=v6, spacing=spacing, kafka_batch=kafka_batch)
        finally:
            for handler, original in swapped:
                handler.setStream(original)
        meter.status_item_bytes = _mean_item_bytes(world)
        return report(meter, world)


def _measure(world: Any, meter: _Meter, submissions: int, *, v6: bool, spacing: float, kafka_batch: int) -> None:
    world.measured_submissions = submissions
    for client in (world.ddb, world.ssm, world.ecs, world.sns):
        service = client.meta.service_model.service_name
        client.meta.events.register("before-call.*.*", meter.on_call(service), unique_id=f"bench-{service}")
    world.ddb.meta.events.register("before-parameter-build.dynamodb.*", meter.on_dynamodb_params)
    world.ddb.meta.events.register("after-call.dynamodb.*", meter.on_dynamodb_response)
    meter.sizer = _item_sizer(world)
    _count_fake_calls(world, meter)
    meter.attribute(world, "_invoke_challenge", "challenge")
    meter.attribute(world, "invoke_completion_async", "completion")
    meter.attribute(world, "kafka_batch", "router")
    meter.attribute(world.sweeper, "sweep", "sweeper")
    # A cold warm-up submission first (its calls are the cold ones), then the measured ones in Kafka batches.
    world.submit_to_kafka([_submission_id(0, v6)])
    # Then one sweep: a deployed environment's pool items carry the config and caps versions the sweeper stamps
    # (decision 121); the warm functions read SSM only when a version changes. The sweep is per sweep, not per run.
    world.run()
    world.sweeper.sweep()
    for start in range(0, submissions, kafka_batch):
        ids = [_submission_id(i + 1, v6) for i in range(start, min(start + kafka_batch, submissions))]
        world.submit_to_kafka(ids, at=60.0 + start * spacing)
    world.run()
    for _ in range(3):  # scheduled sweeps after the runs: the first is cold, the others what an idle sweep costs
        world.sweeper.sweep()


def _log_handlers_to(stream: Any) -> list[tuple[logging.StreamHandler[Any], Any]]:
    """Every logging handler writing to stdout (Powertools binds its stream when a logger is built), pointed at
    `stream`; returns (handler, its stream) to restore."""
    swapped = []
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)] + [logging.getLogger()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
                swapped.append((handler, handler.setStream(stream)))
    return swapped


def _count_fake_calls(world: Any, meter: _Meter) -> None:
    """The fakes that are not botocore clients: SQS sends, the token provider, the Topcoder APIs, Lambda invokes."""

    def wrap(target: Any, name: str, service: str, operation: str) -> None:
        original = getattr(target, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            key = (meter.current.get(), service, operation)
            (meter.cold_calls if meter.cold.get() else meter.calls)[key] += 1
            return original(*args, **kwargs)

        setattr(target, name, counted)

    for operation in ("send_message", "send_message_batch", "get_queue_url"):
        wrap(world.sqs, operation, "sqs", operation)
    original_get_token = world.tokens.get_token

    def get_token(force_refresh: bool = False) -> str:
        if force_refresh:  # a fetch from the token endpoint; otherwise the provider's cache answers
            key = (meter.current.get(), "token", "fetch")
            (meter.cold_calls if meter.cold.get() else meter.calls)[key] += 1
        return str(original_get_token(force_refresh))

    world.tokens.get_token = get_token
    wrap(world.api, "send", "report", "v5")
    wrap(world.summations, "send", "report", "v6")
    wrap(world, "invoke", "lambda", "Invoke")
    processor_lambda = world.sides[world.challenge_ids[0]].processor._lambda_client
    wrap(processor_lambda, "invoke", "lambda", "Invoke")


def _submission_id(index: int, v6: bool) -> str:
    if v6:
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
        return "".join(alphabet[(index * 7919 + k * 104729) % 64] for k in range(14))
    return str(uuid.UUID(int=0x5EED0000 + index))


def _mean_item_bytes(world: Any) -> float:
    """The status items' mean size at the end, as DynamoDB sizes an item (attribute names + values: strings in
    UTF-8, numbers ~1 byte per 2 digits + 1, 3 bytes per list or map plus 1 per element), for the write units."""
    items = world.admin_ddb.scan(TableName=world.store._table).get("Items", [])
    sizes = [item_bytes(item) for item in items]
    return sum(sizes) / len(sizes) if sizes else 0.0


def _item_sizer(world: Any) -> Callable[[str, dict[str, Any]], tuple[int, bool]]:
    """(bytes, is a capacity pool item) of the item a write names by its key (or its whole item, for a Put), read
    with the world's own unmetered client: 0 when it does not exist."""
    key_names: dict[str, list[str]] = {}

    def size(table: str, key_or_item: dict[str, Any]) -> tuple[int, bool]:
        if table not in key_names:
            schema = world.admin_ddb.describe_table(TableName=table)["Table"]["KeySchema"]
            key_names[table] = [element["AttributeName"] for element in schema]
        key = {name: key_or_item[name] for name in key_names[table]}
        found = world.admin_ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        pool = table != world.store._table and key.get(CAPACITY_TABLE_PARTITION_KEY) == {"S": POOL_PARTITION}
        return (item_bytes(found) if found else 0), pool

    return size


def _figures(meter: _Meter, world: Any, label: str) -> list[Figure]:
    runs = max(1, len(world.records()) - _cold_runs(world))
    tasks = len(world.ecs_fake.tasks)
    submissions = world.measured_submissions

    def warm_runs(function: str | None) -> int:
        # A completion invocation handles one run's event: its cold one handled one of the warm-up runs, not
        # every one of them (a v6 warm-up submission has two), so its warm calls are per its own warm runs.
        if function == "completion":
            return max(1, len(world.records()) - 1)
        return runs

    def per_run(function: str | None, service: str, operation: str | None = None) -> float:
        total = sum(
            count
            for (fn, svc, op), count in meter.calls.items()
            if fn != "setup"
            and (function is None or fn == function)
            and svc == service
            and (operation is None or op == operation)
        )
        return total / warm_runs(function)

    functions = ("challenge", "completion")  # the per-run functions; the router's and the sweeper's apart
    dynamodb = sum(per_run(fn, "dynamodb") for fn in functions)
    status_writes = sum(meter.status_writes[fn] / warm_runs(fn) for fn in functions)
    reports = _reports_needed(world, runs)
    status_floor = RUN_STATUS_WRITES_FLOOR + REPORT_STATUS_WRITES_FLOOR * reports
    figures = [
        Figure(
            f"calls.per_run.dynamodb{label}",
            "DynamoDB calls per run (challenge + completion)",
            dynamodb,
            "calls",
            status_floor + CAPACITY_WRITES_FLOOR + REQUIRED_READS_FLOOR,
            "status writes exactly-once needs + pace and release + the fair round's and the release's reads (114)",
            1.0,
        ),
        Figure(
            f"calls.per_run.status_writes{label}",
            "status-table writes per run",
            status_writes,
            "writes",
            status_floor,
            "created LAUNCHING with its slots, task recorded, outcome (+ report claim in it, report marked where "
            "a report is due) (114)",
            1.0,
        ),
        Figure(
            f"calls.per_run.ecs_runtask{label}",
            "RunTask per run",
            per_run("challenge", "ecs", "RunTask"),
            "calls",
            1.0,
            "one task per run",
            1.0,
        ),
        Figure(
            f"calls.per_run.ssm{label}",
            "SSM calls per run, warm",
            # The per-run functions only, as for DynamoDB; the sweeper's per-sweep reads are `sweeper.calls_per_sweep`.
            sum(per_run(fn, "ssm") for fn in ("router", *functions)),
            "calls",
            0.0,
            "0 on a warm function (cached by the SSM version stamped on the pool items, decision 121)",
            1.0,
            note="a re-read only when a version stamped on the pool items changes (121); the sweeper reads per sweep",
        ),
        Figure(
            f"calls.per_run.token{label}",
            "token fetches per run, warm",
            per_run(None, "token"),
            "calls",
            0.0,
            "0 on a warm function (cached until the JWT's exp - 60 s)",
            1.0,
        ),
        Figure(
            f"calls.per_run.sns{label}",
            "SNS requests per run (router PublishBatch)",
            per_run("router", "sns"),
            "calls",
            math.ceil(submissions / 10) / runs,
            "one PublishBatch per 10 records",
            1.0,
        ),
        Figure(
            f"calls.per_run.sqs{label}",
            "SQS requests per run by the functions",
            per_run(None, "sqs"),
            "calls",
            0.0,
            "none when nothing waits (an admitted run's message when it does)",
            1.0,
        ),
        Figure(
            f"calls.per_run.report{label}",
            "Topcoder report calls per run",
            per_run(None, "report"),
            "calls",
            reports,
            "one per run that needs a report",
            1.0,
        ),
        Figure(
            f"calls.per_run.lambda_invoke{label}",
            "Lambda invokes per run",
            per_run(None, "lambda"),
            "calls",
            0.0,
            "none for a run with a task (its STOPPED event is the trigger)",
            1.0,
        ),
    ]
    if label == CONTENDED:
        # What a run that meets a queue costs (enqueue, admit and claim apart, an admitted run's message): beside
        # the uncontended floor, never against it.
        return [
            Figure(
                f"calls.per_run.dynamodb{label}",
                "DynamoDB calls per run, challenge cap binding",
                dynamodb,
                "calls",
                note="most runs wait: enqueue, admit, claim apart, and the admitted run's message (114)",
            ),
            Figure(
                f"calls.per_run.status_writes{label}",
                "status-table writes per run, challenge cap binding",
                status_writes,
                "writes",
                note="a run that waits: enqueue, admit, claim, task recorded, outcome, report marked (114)",
            ),
        ]
    if label:
        return figures
    figures += _cost_figures(meter, world, runs, tasks)
    sweeps = max(1, meter.invocations["sweeper"])
    for service in ("dynamodb", "ecs", "ssm", "lambda"):
        total = sum(
            c for (fn, svc, _), c in (meter.calls + meter.cold_calls).items() if fn == "sweeper" and svc == service
        )
        figures.append(
            Figure(
                f"sweeper.calls_per_sweep.{service}",
                f"sweeper {service} calls per sweep",
                total / sweeps,
                "calls",
                note="per scheduled sweep (every 5 min deployed: 288 a day, shared by every run of the interval)",
            )
        )
    return figures


def _cold_runs(world: Any) -> int:
    return 2 if world.platform.value == "v6" else 1  # the warm-up submission's runs


def _reports_needed(world: Any, runs: int) -> float:
    from mm_contracts.models.lifecycle import ReportStatus

    needed = [r for r in world.records().values() if r.report_status not in (None, ReportStatus.NOT_REQUIRED)]
    return max(0, len(needed) - _cold_runs(world)) / runs


def _cost_figures(meter: _Meter, world: Any, runs: int, tasks: int) -> list[Figure]:
    from infrastructure.config.sizing import SIZING_DEFAULTS

    figures = []
    for function in FUNCTIONS:
        name = COST_NAMES[function]
        warm = max(0, meter.invocations[function] - 1)
        mean_ms = 1000 * meter.seconds.get(function, 0.0) / warm if warm else 0.0
        invocations, note = warm / runs, ""
        if function == "sweeper":
            # Per sweep, not per run: the deployed schedule's share of a month at the cost model's million runs.
            invocations = SWEEPS_PER_MONTH / COST_MODEL_RUNS_PER_MONTH
            note = f"{SWEEPS_PER_MONTH:,} sweeps a month (every 5 min) shared by {COST_MODEL_RUNS_PER_MONTH:,} runs"
        figures += [
            Figure(
                f"lambda.{name}.invocations_per_run",
                f"{name} invocations per run",
                invocations,
                "invocations",
                note=note,
            ),
            Figure(
                f"lambda.{name}.mean_duration_ms",
                f"{name} mean warm duration (in process, moto; the sweeper's: per sweep)",
                mean_ms,
                "ms",
                note="in-process against moto on this machine: an estimate, not Lambda's billed duration",
            ),
            Figure(
                f"lambda.{name}.memory_mb",
                f"{name} memory",
                SIZING_DEFAULTS[name].memory_mb,
                "MB",
                note="infrastructure/config/sizing.py defaults",
            ),
        ]
    batches = max(0, meter.invocations["challenge"] - 1)
    routed = runs if world.platform.value == "v5" else runs / 2
    function_sqs = sum(c for (fn, svc, _), c in meter.calls.items() if svc == "sqs" and fn != "setup")
    # SNS delivers each routed message (one SendMessage to the queue); the event source mapping receives each batch
    # and deletes its messages (one ReceiveMessage + one DeleteMessageBatch per batch); idle long polls excluded.
    sqs = (routed + function_sqs + 2 * batches) / runs
    sns = sum(c for (fn, svc, _), c in meter.calls.items() if svc == "sns") / runs
    item_kb = max(1, math.ceil(meter.status_item_bytes / KB))
    units = sum(meter.write_units[fn] for fn in ("challenge", "completion"))
    units_pools_full = sum(meter.write_units_pools_full[fn] for fn in ("challenge", "completion"))
    # What the cost model assumed before decision 125 (each status item at its mean size, each capacity item 1 KB).
    assumed_units = 0.0
    for (fn, kind, transactional), count in meter.item_writes.items():
        if fn in ("challenge", "completion"):
            assumed_units += count * (item_kb if kind == "status" else 1) * (2 if transactional else 1)
    read_units = sum(meter.item_reads.values())  # consistent reads of items < 4 KB: 1 RCU each (a Query page too)
    log_bytes = sum(meter.log_bytes[fn] for fn in ("challenge", "completion", "router"))
    return [
        *figures,
        Figure(
            "sqs.requests_per_run",
            "SQS requests per run",
            sqs,
            "requests",
            note="SNS deliveries + the functions' sends + ReceiveMessage and DeleteMessageBatch per batch of 5",
        ),
        Figure("sns.publish_requests_per_run", "SNS publish requests per run", sns, "requests"),
        Figure(
            "dynamodb.write_units_per_run",
            "DynamoDB write units per run (each write sized)",
            units / runs,
            "WRU",
            note=(
                "each item written sized before and after its write by DynamoDB's rules (the larger counts; "
                f"transactions x2); {assumed_units / runs:.1f} with status items ~{item_kb} KB and capacity items 1 KB"
            ),
        ),
        Figure(
            "dynamodb.write_units_per_run.pools_full",
            "DynamoDB write units per run, every pool item full",
            units_pools_full / runs,
            "WRU",
            note=(
                f"the same writes with each capacity pool item at {FULL_POOL_HOLDERS} holders "
                f"({pool_item_bytes_bound(FULL_POOL_HOLDERS):,} bytes: the largest cap allowed at "
                f"{FULL_POOL_PACE} RunTask a second, decision 125)"
            ),
        ),
        Figure(
            "dynamodb.read_units_per_run",
            "DynamoDB read units per run (estimate)",
            read_units / runs,
            "RRU",
            note="items read (GetItem, BatchGetItem keys) + Query pages, strongly consistent, each < 4 KB",
        ),
        Figure(
            "logs.bytes_per_run",
            "log bytes per run (router, challenge, completion)",
            log_bytes / runs,
            "bytes",
            note="the functions' JSON log lines at INFO; EMF metric lines not included (a fake sink here)",
        ),
        Figure(
            "events.per_run",
            "EventBridge events matched per run",
            len(world.stopped_events) / max(1, tasks),
            "events",
            note="the STOPPED event of its task; the sweeper's schedule is one event per sweep",
        ),
    ]


def _print_table(meter: _Meter, world: Any) -> None:
    runs = max(1, len(world.records()) - _cold_runs(world))
    print(
        f"{len(world.records())} runs ({runs} measured), {len(world.ecs_fake.tasks)} tasks, "
        f"{meter.invocations['sweeper']} sweeps, virtual {world.clock.elapsed:.0f} s"
    )
    print(f"{'function':<11}{'service':<10}{'operation':<22}{'calls':>7}{'per run':>9}")
    for (fn, svc, op), count in sorted(meter.calls.items()):
        if fn != "setup":
            print(f"{fn:<11}{svc:<10}{op:<22}{count:>7}{count / runs:>9.2f}")
    print(
        "cold (first invocation of each function, not counted above):",
        dict(Counter({f"{fn}:{svc}:{op}": c for (fn, svc, op), c in meter.cold_calls.items() if fn != "setup"})),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, default=50, help="v5 submissions (one run each)")
    parser.add_argument("--v6", type=int, default=10, help="v6 submissions (two runs each); 0: none")
    parser.add_argument("--spacing", type=float, default=2.0, help="virtual seconds between submissions")
    parser.add_argument("--contended", type=int, default=20, help="v5 submissions under a challenge cap of 2; 0: none")
    args = parser.parse_args(argv)
    began = time.monotonic()

    def report(label: str, title: str) -> Callable[[_Meter, Any], list[Figure]]:
        def tabulate(meter: _Meter, world: Any) -> list[Figure]:
            print(title)
            _print_table(meter, world)
            return _figures(meter, world, label)

        return tabulate

    title = f"v5: {args.submissions} submissions on one challenge (caps that never bind), in process"
    figures = _run_world(args.submissions, v6=False, spacing=args.spacing, kafka_batch=10, report=report("", title))
    if args.v6:
        title = f"\nv6: {args.v6} submissions, EXAMPLE + PROVISIONAL each"
        figures += _run_world(args.v6, v6=True, spacing=args.spacing, kafka_batch=10, report=report(".v6", title))
    if args.contended:
        title = f"\nv5 contended: {args.contended} submissions, challenge cap 2 (most runs wait)"
        report_contended = report(CONTENDED, title)
        figures += _run_world(
            args.contended, v6=False, spacing=args.spacing, kafka_batch=10, report=report_contended, challenge_cap=2
        )
    figures += pool_item_figures()
    print(f"\nwall time {time.monotonic() - began:.1f} s")
    publish("aws_calls", figures)
    return 0


def pool_item_figures() -> list[Figure]:
    """The environment's pool item, full, taken and released at the pace: the write units a second it needs beside
    the 1,000 one DynamoDB item takes (decision 125), for the example environment and the local pipeline's run at
    Fargate's ceiling (caps of 100 at 20 a second)."""
    from infrastructure.config import load_environment
    from local_pipeline.capacity_ceiling import FARGATE_LAUNCH_BURST, FARGATE_SUSTAINED_LAUNCHES_PER_SECOND
    from mm_contracts.dynamodb_item_size import PARTITION_WRITE_UNITS_PER_SECOND
    from mm_contracts.models.capacity import EnvironmentCapacity

    example = load_environment("example").capacity
    cases = {
        "example": (example.max_running_tasks, example.run_task_per_second),
        "fargate_ceiling": (FARGATE_LAUNCH_BURST, FARGATE_SUSTAINED_LAUNCHES_PER_SECOND),
    }
    figures = []
    for name, (cap, pace) in cases.items():
        caps = EnvironmentCapacity(max_running_tasks=cap, run_task_per_second=pace)
        figures.append(
            Figure(
                f"dynamodb.pool_item_write_units_per_second.{name}",
                f"environment pool item's write units a second, full ({name.replace('_', ' ')})",
                caps.pool_write_units_per_second(),
                "WRU/s",
                floor=PARTITION_WRITE_UNITS_PER_SECOND,
                floor_label="what one DynamoDB item takes a second",
                note=(
                    f"cap {cap} at {pace} RunTask a second: an item of up to {pool_item_bytes_bound(cap):,} bytes, "
                    f"taken and released in transactions; the largest cap at this pace is "
                    f"{largest_cap_at_pace(pace)} (decision 125)"
                ),
            )
        )
    return figures


if __name__ == "__main__":
    sys.exit(main())
