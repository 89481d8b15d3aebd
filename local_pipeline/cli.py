"""`mm-processor`: run the whole pipeline locally, and look up a submission's lifecycle.

    mm-processor local run [--env example] [--messages FILE | --generate N] [--scorer ID=BEHAVIOUR ...]
                           [--fault ID=KIND[:COUNT][@START-END][,NAME=VALUE...] ...] [--report FILE]
                           [--timeout SECONDS] [--stall SECONDS]
    mm-processor status SUBMISSION_ID [--table NAME | --env ENV] [--json]
    mm-processor smoke --env ENV [--health-only] [--endpoint-url URL] [--region R] [--profile P]
                       [--timeout SECONDS] [--keep] [--json]      (operator_tools, decision 083)

Exit status of `local run`: 0 only when every input record ended in exactly one final state and no
submission got two tasks or two reports; 1 otherwise (the unaccounted records are named); 2 for usage
or configuration errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from infrastructure.config import DEFAULT_ENVIRONMENT, EnvironmentConfigError, load_environment
from local_pipeline.limits import (
    DEFAULT_STALL_SECONDS,
    HARD_CAP_BASE_SECONDS,
    HARD_CAP_SECONDS_PER_RECORD,
)
from local_pipeline.scenario import (
    FAULT_SYNTAX,
    SCORER_BEHAVIOURS,
    Scenario,
    ScenarioError,
    example_set,
    fault_kind_names,
    generate,
    load_messages,
    parse_fault,
    parse_scorer,
)

EXIT_OK = 0
EXIT_UNACCOUNTED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mm-processor", description="mm-processor operator and developer tools")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the pipeline on this machine, on the embedded AWS emulator")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    run = local_commands.add_parser(
        "run",
        help="feed Kafka records through the real functions and report each record's final state",
        description="Without --messages or --generate, runs the built-in example set "
        "(examples/messages/example-set.jsonl) with its scenario.",
    )
    run.add_argument("--env", default=os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT), help="environment config name")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--messages", type=Path, help="one Kafka record value per line, as the producer wrote it")
    source.add_argument("--generate", type=int, metavar="N", help="N synthetic valid submissions (load)")
    run.add_argument(
        "--scorer",
        action="append",
        default=[],
        metavar="ID=BEHAVIOUR",
        help=f"scorer behaviour for a challenge or submission id: {', '.join(SCORER_BEHAVIOURS)}",
    )
    run.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar=FAULT_SYNTAX,
        help="inject a fault from the fault_injection layer for a challenge or submission id (* = every call): "
        "on every matching call, the first COUNT, or only inside the window START-END seconds after the feed "
        "starts; NAME=VALUE sets a rule parameter (delay_seconds, commit_delay_seconds, after_seconds, "
        f"retry_after, method, path). KIND is one of: {', '.join(fault_kind_names())} (capacity, throttle and "
        "lose-stopped-event are the older names of run-task-failures, run-task-throttling and "
        "stopped-event-lost). See docs/local-pipeline.md",
    )
    run.add_argument("--report", type=Path, help="write the JSON report here")
    run.add_argument("--logs", type=Path, help="function and task logs (default: beside the report, or a temp dir)")
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="hard cap in seconds on the whole run (default: "
        f"{HARD_CAP_BASE_SECONDS:.0f} + {HARD_CAP_SECONDS_PER_RECORD:g} per record); the run also fails earlier "
        "when it stalls (see --stall)",
    )
    run.add_argument(
        "--stall",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_STALL_SECONDS,
        help="fail when no record changed state for this long (default %(default).0f); a run that keeps "
        "progressing continues up to --timeout, however slow this machine is",
    )
    run.add_argument("--partitions", type=int, default=1, help="Kafka partitions to spread the records over")
    run.add_argument("--max-tasks", type=int, default=8, help="scorer processes running at once")
    run.add_argument("--quiet", action="store_true", help="no record table, only the totals")

    status = commands.add_parser("status", help="where is submission X, and why did it fail")
    status.add_argument("submission_id")
    where = status.add_mutually_exclusive_group()
    where.add_argument("--table", help="status table name")
    where.add_argument("--env", help="environment config name (the table is mm-<env>-submission-status)")
    status.add_argument("--json", action="store_true", help="print the record as JSON")

    from operator_tools.command import add_arguments as add_smoke_arguments

    smoke = commands.add_parser(
        "smoke",
        help="after a deploy: the environment's health, then one synthetic submission (exit 0 only if all passed)",
    )
    add_smoke_arguments(smoke, os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "status":
        return status_command(args)
    if args.command == "smoke":
        from operator_tools.command import smoke_command

        return smoke_command(args, _console())
    return run_command(args)


def _console() -> Console:
    """A terminal keeps its own width; piped output (CI logs, `| tee`) gets a width that fits the table."""
    console = Console()
    return console if console.is_terminal else Console(width=150)


# ---------------------------------------------------------------------- local run
def run_command(args: argparse.Namespace, console: Console | None = None) -> int:
    from local_pipeline.engine import run_local
    from local_pipeline.report import print_summary, write_report

    console = console or _console()
    try:
        config = load_environment(args.env)
        scenario = Scenario()
        if args.messages is not None:
            records = load_messages(args.messages)
            source = str(args.messages)
        elif args.generate is not None:
            if args.generate < 1:
                raise ScenarioError("--generate N needs N >= 1")
            records = generate(config, args.generate)
            source = f"{args.generate} generated submissions"
        else:
            records, scenario = example_set()
            source = "the built-in example set"
        extra = Scenario(
            scorers=dict(parse_scorer(s) for s in args.scorer), faults=[parse_fault(f) for f in args.fault]
        )
        scenario = scenario.merged(extra)
    except (EnvironmentConfigError, ScenarioError) as error:
        console.print(f"[red]error:[/red] {error}")
        return EXIT_USAGE
    if not records:
        console.print("[red]error:[/red] no records to run")
        return EXIT_USAGE
    if (args.timeout is not None and args.timeout <= 0) or args.stall <= 0:
        console.print("[red]error:[/red] --timeout and --stall need a positive number of seconds")
        return EXIT_USAGE
    log_dir = args.logs or (args.report.parent / f"{args.report.stem}-logs" if args.report else None)
    console.print(f"mm-processor local run: {len(records)} records from {source}, environment {config.environment}")
    progress = _progress_printer(console, len(records))
    outcome = run_local(
        config,
        records,
        scenario,
        deadline_seconds=args.timeout,
        stall_seconds=args.stall,
        log_dir=log_dir,
        progress=progress,
        max_running_tasks=args.max_tasks,
        partitions=args.partitions,
    )
    report_path: Path | None = args.report
    if report_path is not None:
        write_report(outcome, report_path)
    if args.quiet:
        from local_pipeline.report import state_counts

        console.print(json.dumps(state_counts(outcome)))
    else:
        print_summary(outcome, console, report_path)
    return EXIT_OK if outcome.ok else EXIT_UNACCOUNTED


def _progress_printer(console: Console, total: int) -> Any:
    """A progress line at most every 2 s (and only for runs long enough to need one)."""
    state = {"last": 0.0}

    def show(final: int, count: int, counts: dict[str, int]) -> None:
        now = time.monotonic()
        if total < 20 or now - state["last"] < 2.0:
            return
        state["last"] = now
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        console.print(f"  {final}/{count} records final ({summary})")

    return show


# ---------------------------------------------------------------------- status
def status_command(args: argparse.Namespace, console: Console | None = None) -> int:
    from mm_shared import aws
    from mm_shared.status_store import StatusStore

    console = console or _console()
    table_name = args.table
    if not table_name:
        try:
            config = load_environment(args.env or os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT))
        except EnvironmentConfigError as error:
            console.print(f"[red]error:[/red] {error}")
            return EXIT_USAGE
        from infrastructure.wiring import ResourceNames

        table_name = ResourceNames(config.environment).status_table
        os.environ.setdefault("AWS_DEFAULT_REGION", config.region)
    try:
        record = StatusStore(table_name, dynamodb_client=aws.client("dynamodb")).get(args.submission_id)
    except Exception as error:  # credentials, network, missing table: say which, briefly
        console.print(f"[red]error:[/red] could not read {table_name}: {type(error).__name__}: {error}")
        return EXIT_USAGE
    environment = _environment_of(table_name)
    if record is None:
        console.print(f"no lifecycle record for submission {args.submission_id} in {table_name}")
        for line in _not_found_hints(args.submission_id, environment):
            console.print(line, markup=False, highlight=False)
        return EXIT_UNACCOUNTED
    if args.json:
        console.print_json(record.to_json())
        return EXIT_OK
    details = Table(title=f"submission {record.submission_id}", show_header=False)
    details.add_column("field", style="bold")
    details.add_column("value", overflow="fold")
    for label, value in (
        ("state", record.state.value),
        ("challenge", record.challenge_id),
        ("reason", record.reason),
        ("task ARN", record.task_arn),
        ("exit code", record.exit_code),
        ("stop code", record.stop_code),
        ("report", record.report_status.value if record.report_status else None),
        ("API response", record.report_response),
        ("launch attempts", record.launch_attempt),
        ("correlation id", record.correlation_id),
        ("created", record.created_at.isoformat()),
        ("updated", record.updated_at.isoformat()),
    ):
        if value not in (None, ""):
            details.add_row(label, str(value))
    console.print(details)
    history = Table(title="history")
    history.add_column("at")
    history.add_column("state")
    history.add_column("detail", overflow="fold")
    for event in record.history:
        history.add_row(event.at.isoformat(), event.state, event.detail)
    console.print(history)
    hint = _next_step(record, environment)
    if hint:
        console.print(f"next step: {hint}", markup=False, highlight=False)
    return EXIT_OK


def _environment_of(table_name: str) -> str:
    """`mm-<env>-submission-status` -> `<env>` (the stacks' naming), else a placeholder for the hints."""
    prefix, suffix = "mm-", "-submission-status"
    if table_name.startswith(prefix) and table_name.endswith(suffix):
        return table_name[len(prefix) : -len(suffix)]
    return "<env>"


def _not_found_hints(submission_id: str, environment: str) -> list[str]:
    """What "no record" means: the status table starts at the challenge processor, so look upstream."""
    return [
        "The status table starts when a challenge processor first receives the submission. No record means:",
        f"  - the router skipped or rejected it: its reason is in the audit queue mm-{environment}-router-audit and",
        f"    in the router's log; CloudWatch Logs Insights on /aws/lambda/mm-{environment}-router:",
        "      fields @timestamp, message, reason, detail, correlation_id",
        f'      | filter submission_id = "{submission_id}" | sort @timestamp desc',
        f"  - or it is still waiting in its challenge queue mm-{environment}-ch-<challengeId> (see the dashboard",
        f"    mm-{environment}-pipeline), or in the router's failure bucket mm-{environment}-router-failures-*;",
        "  - or the Kafka record never reached the router (check the MSK offset lag alarm).",
    ]


def _next_step(record: Any, environment: str) -> str | None:
    """The operator action a state calls for, if any."""
    from mm_shared.models.lifecycle import ReportStatus, SubmissionState

    dlq = f"mm-{environment}-ch-{record.challenge_id}-dlq"
    if record.state is SubmissionState.DEAD_LETTERED:
        return (
            f"the message is parked in {dlq}; fix the reason above, then redrive it "
            f"(SQS console 'Start DLQ redrive', or aws sqs start-message-move-task --source-arn <{dlq} ARN>). "
            "A redrive is safe: the launch is claimed exactly once."
        )
    if record.state is SubmissionState.LAUNCH_FAILED:
        return "the launch failed and the message is being retried from its queue; watch for DEAD_LETTERED."
    if record.report_status is ReportStatus.REJECTED:
        return (
            "the Topcoder API rejected the outcome report (response above); fix the cause (review type, "
            "submission id, permissions) and post the review manually: it will not be retried."
        )
    if record.report_status in (ReportStatus.PENDING, ReportStatus.REPORTING):
        return (
            f"the outcome is recorded but not yet reported; if this persists, the STOPPED event is in "
            f"mm-{environment}-completion-dlq: fix the cause (API down, credentials) and redrive it."
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
