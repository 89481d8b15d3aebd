"""Cost per million submissions from the published figures and the public prices, beside a Step Functions design.

    .venv/bin/python -m benchmarks.cost_model [--figures-dir DIR] [--environment example]

Reads what the other benchmarks published (reports/bench/*.json: the calls per run, invocations, durations, log
bytes of `benchmarks.aws_calls_benchmark`, the cold starts of `benchmarks.cold_start_benchmark`), prices them with
`benchmarks/prices.py` (us-east-1 list prices, each with its source) and publishes `cost.per_million.<part>`,
`cost.per_million.total` and `cost.per_million.step_functions_alternative`. A figure nobody published is replaced
by a labelled assumption, and every assumption is printed and named in the figure's note. Fargate is left out
(the scorer tasks cost the same in both designs). Run it last: `make bench` does. Prints, never asserts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmarks.figures import Figure, load_published, publish
from benchmarks.prices import PRICES, PriceTable

SUBMISSIONS = 1_000_000
FUNCTIONS = ("router", "challenge_processor", "completion", "timeout_sweeper")
# Lambda platform lines (START, END, REPORT) each invocation writes beside the function's own output; the local
# pipeline's log files do not have them.
PLATFORM_LOG_BYTES_PER_INVOCATION = 350
# One Powertools EMF blob (the invocation's metrics) per invocation, when the metric lines were not measured.
ASSUMED_EMF_BYTES_PER_INVOCATION = 600

# What a function costs when its figures were not published: (invocations per run, mean duration ms), assumed.
# The router takes a Kafka batch of up to 100 records; the challenge processor an SQS batch of 5; completion one
# STOPPED event; the sweeper runs every 5 minutes (8,640 sweeps a month shared by the month's runs).
ASSUMED_FUNCTION_USE: dict[str, tuple[float, float]] = {
    "router": (0.01, 300.0),
    "challenge_processor": (0.2, 300.0),
    "completion": (1.0, 150.0),
    "timeout_sweeper": (8_640 / SUBMISSIONS, 1_000.0),
}

# The Step Functions Standard workflow a team would write instead of the challenge processor, completion and sweeper:
#   RunScorer (Task, arn:aws:states:::ecs:runTask.sync, Retry on throttling / start failures, Catch -> ReportFailure)
#   -> CheckExit (Choice on the container's exit code) -> Done (Succeed) | ReportFailure (Task, http:invoke) -> Done
# A success executes 3 states, a failure 4; a retried RunTask one more. No capacity caps (a semaphore would add
# at least 4 transitions and 2 transactional writes per run).
SFN_TRANSITIONS_SUCCESS = 3
SFN_TRANSITIONS_FAILURE = 4
ASSUMED_FAILURE_SHARE = 0.10  # runs whose outcome is reported by the processor (not by the scorer)
ASSUMED_RETRIES_PER_RUN = 0.02  # RunTask retried after throttling or a start failure
ASSUMED_COLD_STARTS_PER_INVOCATION = 0.01


@dataclass
class Inputs:
    """The published figures, and what stood in for the missing ones (printed, and named in the notes)."""

    published: dict[str, Figure]
    assumptions: list[str] = field(default_factory=list)
    used: list[tuple[str, float, str]] = field(default_factory=list)

    def value(self, key: str, assumed: float, why: str, *, known: bool = False) -> float:
        """The published figure, else `assumed` (`known`: a value read from the config, not a guess)."""
        figure = self.published.get(key)
        if figure is not None:
            self.used.append((key, figure.value, "published"))
            return figure.value
        self.used.append((key, assumed, why if known else f"assumed: {why}"))
        if not known:
            self.assumptions.append(key)
        return assumed

    def describe_assumptions(self, shown: int = 6) -> str:
        if not self.assumptions:
            return "every input published"
        names = ", ".join(self.assumptions[:shown]) + (", ..." if len(self.assumptions) > shown else "")
        return f"{len(self.assumptions)} inputs not published, assumed: {names}"


@dataclass(frozen=True)
class FunctionUse:
    name: str
    invocations_per_run: float
    mean_duration_ms: float
    memory_mb: float
    cold_start_ms: float

    def gb_seconds_per_run(self) -> float:
        warm = self.mean_duration_ms / 1000
        init = ASSUMED_COLD_STARTS_PER_INVOCATION * self.cold_start_ms / 1000  # INIT is billed (managed runtimes)
        return self.invocations_per_run * (warm + init) * self.memory_mb / 1024


def deployed_memory_mb(environment: str) -> dict[str, float]:
    """Each function's memory in the environment's config (what the stack deploys)."""
    from infrastructure.config import load_environment

    config = load_environment(environment)
    return {name: float(getattr(config, name).memory_mb) for name in FUNCTIONS}


def function_use(inputs: Inputs, memory: dict[str, float]) -> list[FunctionUse]:
    uses = []
    for name in FUNCTIONS:
        invocations, duration = ASSUMED_FUNCTION_USE[name]
        uses.append(
            FunctionUse(
                name=name,
                invocations_per_run=inputs.value(f"lambda.{name}.invocations_per_run", invocations, "batch sizes"),
                mean_duration_ms=inputs.value(f"lambda.{name}.mean_duration_ms", duration, "a guess"),
                memory_mb=inputs.value(
                    f"lambda.{name}.memory_mb", memory[name], "the environment's config", known=True
                ),
                cold_start_ms=inputs.value(f"cold_start.{name}", 800.0, "the issue's 770-830 ms"),
            )
        )
    return uses


@dataclass(frozen=True)
class Usage:
    """What one run uses, from the figures (or their stand-ins)."""

    functions: list[FunctionUse]
    sns_requests: float
    sqs_requests: float
    write_units: float
    read_units: float
    log_bytes: float  # the functions' own log lines and their EMF metric lines, per run
    events: float
    runs_per_submission: float

    @property
    def invocations(self) -> float:
        return sum(use.invocations_per_run for use in self.functions)


def usage_from(inputs: Inputs, memory: dict[str, float]) -> Usage:
    functions = function_use(inputs, memory)
    invocations = sum(use.invocations_per_run for use in functions)
    emf_bytes = inputs.value(
        "logs.emf_bytes_per_run", ASSUMED_EMF_BYTES_PER_INVOCATION * invocations, "one ~600-byte EMF blob an invocation"
    )
    dynamodb_calls = inputs.value("calls.per_run.dynamodb", 25.0, "the issue's count before issue 13")
    return Usage(
        functions=functions,
        sns_requests=inputs.value("sns.publish_requests_per_run", 0.1, "one PublishBatch per 10 records"),
        sqs_requests=inputs.value(
            "sqs.requests_per_run", 3.0, "SNS's delivery, the mapping's receive and its delete (one each)"
        ),
        write_units=inputs.value("dynamodb.write_units_per_run", 2 * dynamodb_calls, "2 WRU per DynamoDB call"),
        read_units=inputs.value("dynamodb.read_units_per_run", dynamodb_calls, "1 RRU per DynamoDB call"),
        log_bytes=inputs.value("logs.bytes_per_run", 6_000.0, "a guess") + emf_bytes,
        events=inputs.value("events.per_run", 1.0, "one ECS STOPPED event"),
        runs_per_submission=inputs.value("runs.per_submission", 1.0, "one phase per submission"),
    )


def _lambda_requests(usage: Usage, prices: PriceTable) -> float:
    return prices.lambda_requests.of(usage.invocations)


def _lambda_compute(usage: Usage, prices: PriceTable) -> float:
    # The stack deploys arm64 (infrastructure/mm_constructs/functions.py: ARCHITECTURE = ARM_64).
    return prices.lambda_arm_gb_seconds.of(sum(use.gb_seconds_per_run() for use in usage.functions))


def _logs(usage: Usage, prices: PriceTable) -> float:
    platform = PLATFORM_LOG_BYTES_PER_INVOCATION * usage.invocations
    return prices.cloudwatch_logs_ingestion.of(usage.log_bytes + platform)


def _xray(usage: Usage, prices: PriceTable) -> float:
    # Active tracing samples the first request each second and 5 % after: a million runs a month is 0.4 a second,
    # so nearly every invocation is recorded (an upper bound).
    return prices.xray_traces_recorded.of(usage.invocations)


PARTS: dict[str, tuple[str, Callable[[Usage, PriceTable], float]]] = {
    "lambda_requests": ("Lambda requests", _lambda_requests),
    "lambda_compute": ("Lambda compute (arm64 GB-s, cold starts included)", _lambda_compute),
    "sns": ("SNS publish requests", lambda usage, prices: prices.sns_publish_requests.of(usage.sns_requests)),
    "sqs": ("SQS requests (functions, the mapping's polls and deletes)",
            lambda u, p: p.sqs_standard_requests.of(u.sqs_requests)),
    "dynamodb_writes": ("DynamoDB write request units", lambda u, p: p.dynamodb_write_request_units.of(u.write_units)),
    "dynamodb_reads": ("DynamoDB read request units", lambda u, p: p.dynamodb_read_request_units.of(u.read_units)),
    "eventbridge": ("EventBridge (ECS events on the default bus: free)",
                    lambda u, p: p.eventbridge_aws_service_events.of(u.events)),
    "logs": ("CloudWatch Logs ingestion", _logs),
    "xray": ("X-Ray traces (active tracing)", _xray),
}  # fmt: skip


def cost_per_run(usage: Usage, prices: PriceTable = PRICES) -> dict[str, float]:
    """USD per run, by part."""
    return {part: price(usage, prices) for part, (_, price) in PARTS.items()}


def step_functions_alternative(usage: Usage, prices: PriceTable = PRICES) -> tuple[float, str]:
    """USD per run of the same front (router, SNS, SQS, one starter invocation) and a Standard workflow per run."""
    router = next(use for use in usage.functions if use.name == "router")
    processor = next(use for use in usage.functions if use.name == "challenge_processor")
    # The starter calls StartExecution (the execution name makes a redelivery harmless): one invocation per batch,
    # priced at the challenge processor's duration and memory (an upper bound: it does less).
    front = Usage(
        functions=[router, processor],
        sns_requests=usage.sns_requests,
        sqs_requests=usage.sqs_requests,
        write_units=0.0,
        read_units=0.0,
        log_bytes=usage.log_bytes * (router.invocations_per_run + processor.invocations_per_run) / usage.invocations,
        events=0.0,
        runs_per_submission=usage.runs_per_submission,
    )
    front_cost = sum(cost_per_run(front, prices).values())
    transitions = (
        (1 - ASSUMED_FAILURE_SHARE) * SFN_TRANSITIONS_SUCCESS
        + ASSUMED_FAILURE_SHARE * SFN_TRANSITIONS_FAILURE
        + ASSUMED_RETRIES_PER_RUN
    )
    workflow_cost = prices.step_functions_standard_transitions.of(transitions)
    note = (
        f"{transitions:.2f} transitions per run (RunScorer .sync, CheckExit, Done; ReportFailure for "
        f"{ASSUMED_FAILURE_SHARE:.0%}; {ASSUMED_RETRIES_PER_RUN} retries) = ${workflow_cost * SUBMISSIONS:,.2f}"
        f" per million + the front (router, SNS, SQS, starter) ${front_cost * SUBMISSIONS:,.2f}; no capacity caps"
    )
    return front_cost + workflow_cost, note


def figures_from(inputs: Inputs, memory: dict[str, float], prices: PriceTable = PRICES) -> list[Figure]:
    usage = usage_from(inputs, memory)
    scale = SUBMISSIONS * usage.runs_per_submission
    parts = cost_per_run(usage, prices)
    assumed = inputs.describe_assumptions()
    x86 = prices.lambda_x86_gb_seconds.of(sum(use.gb_seconds_per_run() for use in usage.functions)) * scale
    notes = {
        "lambda_compute": f"arm64 as deployed (x86_64: ${x86:,.2f}); durations as published, not Lambda's billed ones",
        "logs": f"the functions' lines and EMF, plus {PLATFORM_LOG_BYTES_PER_INVOCATION} B of platform lines an "
        "invocation",
    }
    figures = [
        Figure(f"cost.per_million.{part}", label, parts[part] * scale, "USD", note=notes.get(part, ""))
        for part, (label, _) in PARTS.items()
    ]
    total = sum(parts.values()) * scale
    # Every pool item a run writes full (decision 125): the same runs, only the capacity writes' item sizes differ.
    full_units = inputs.value(
        "dynamodb.write_units_per_run.pools_full", usage.write_units, "as if the pools were never full"
    )
    full = sum(cost_per_run(replace(usage, write_units=full_units), prices).values()) * scale
    figures.append(
        Figure(
            "cost.per_million.total_pools_full",
            "the same, with every capacity pool item full (the largest caps allowed at 20 RunTask a second)",
            full,
            "USD",
            note=(
                f"DynamoDB writes {full_units:.1f} WRU per run instead of {usage.write_units:.1f}: "
                f"${(full - total):,.2f} more per million (decision 125)"
            ),
        )
    )
    alternative, how = step_functions_alternative(usage, prices)
    figures.append(
        Figure(
            "cost.per_million.total",
            "cost per million submissions (Lambda, SNS, SQS, DynamoDB, EventBridge, logs, X-Ray; no Fargate)",
            total,
            "USD",
            note=f"us-east-1 list prices read {prices.lambda_requests.read_on}; {assumed}",
        )
    )
    figures.append(
        Figure(
            "cost.per_million.step_functions_alternative",
            "the same front + a Step Functions Standard workflow (ecs:runTask.sync) per run",
            alternative * scale,
            "USD",
            note=f"{how}; ours / it = {total / (alternative * scale):.2f}",
        )
    )
    return figures


def print_inputs(inputs: Inputs, prices: PriceTable) -> None:
    print(f"inputs per run ({len(inputs.used) - len(inputs.assumptions)} published, {len(inputs.assumptions)} assumed)")
    for key, value, source in inputs.used:
        print(f"  {key:<44}{value:>14,.4f}   {source}")
    print(f"prices ({prices.region}, read {prices.lambda_requests.read_on})")
    for name, price in prices:
        if name != "region":
            print(f"  {name:<38} ${price.usd:g} per {price.per:,.0f} {price.unit}   {price.source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures-dir", type=Path, default=None, help="read published figures here")
    parser.add_argument("--environment", default="example", help="the config whose function memory is deployed")
    parser.add_argument("--output-dir", type=Path, default=None, help="publish here (default: reports/bench)")
    args = parser.parse_args(argv)
    published = {key: f for key, f in load_published(args.figures_dir).items() if not key.startswith("cost.")}
    inputs = Inputs(published)
    figures = figures_from(inputs, deployed_memory_mb(args.environment))
    print_inputs(inputs, PRICES)
    publish("cost_model", figures, directory=args.output_dir or args.figures_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
