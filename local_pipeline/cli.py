"""`mm-processor`: run the whole pipeline locally, and look up a submission's lifecycle.

    mm-processor local run [--env example [--env dev ...]] [--messages FILE | --generate N [--challenge ID]]
                           [--scorer ID=BEHAVIOUR ...] [--fault ID=KIND[:COUNT][@START-END][,NAME=VALUE...] ...]
                           [--report FILE] [--timeout SECONDS] [--stall SECONDS]
    mm-processor status SUBMISSION_ID|RUN_ID [--table NAME [--capacity-table NAME] | --env ENV] [--json]
    mm-processor smoke --env ENV [--health-only] [--endpoint-url URL] [--region R] [--profile P]
                       [--timeout SECONDS] [--keep] [--json]      (operator_tools, decision 083)

Exit status of `local run`: 0 only when every input record ended in exactly one final state and no
run (submission, phase) got two tasks or two reports; 1 otherwise (the unaccounted records are named); 2
for usage or configuration errors. Several `--env`s run side by side in one emulator, each with its own
resources, stand-in and fake Fargate (decision 090); the exit status is 0 only if every one is OK.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    fault_kind_names,
    generate,
    load_messages,
    parse_fault,
    parse_scorer,
)
from mm_contracts.models.phase import RUN_ID_SEPARATOR, Platform

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
        description="Without --messages or --generate, runs each environment's built-in example set with its "
        "scenario (examples/messages/example-set.jsonl for v5, example-set-v6.jsonl for v6).",
    )
    run.add_argument(
        "--env",
        action="append",
        dest="envs",
        metavar="ENV",
        help="environment config name (default: $MM_ENV or example); repeat it to run several environments side "
        "by side in one emulator, e.g. --env example --env dev (v5 and v6)",
    )
    source = run.add_mutually_exclusive_group()
    source.add_argument("--messages", type=Path, help="one Kafka record value per line, as the producer wrote it")
    source.add_argument("--generate", type=int, metavar="N", help="N synthetic valid submissions (load)")
    run.add_argument(
        "--challenge",
        metavar="ID",
        help="with --generate: every generated submission goes to this challenge (a flood on one challenge: the "
        "report shows each challenge's most tasks running at once against its cap, and the waits)",
    )
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
    run.add_argument(
        "--report",
        type=Path,
        help="write the JSON report here (several environments: {ok, environments: {env: report}})",
    )
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

    status = commands.add_parser("status", help="where is submission X (each of its runs), and why did it fail")
    status.add_argument("submission_id", help="a submission id (every run of it) or one run id <submissionId>#<PHASE>")
    where = status.add_mutually_exclusive_group()
    where.add_argument("--table", help="status table name")
    where.add_argument("--env", help="environment config name (the tables are mm-<env>-runs and mm-<env>-capacity)")
    status.add_argument(
        "--capacity-table",
        help="capacity table name (default: mm-<env>-capacity beside a --table mm-<env>-runs), for a waiting run's "
        "place in its challenge's queue and the challenge's running/waiting counts and caps",
    )
    status.add_argument("--json", action="store_true", help="print the runs' records as JSON")

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
    from local_pipeline.awsenv import LocalAws
    from local_pipeline.report import print_summary, state_counts, to_report

    console = console or _console()
    names = list(dict.fromkeys(getattr(args, "envs", None) or [os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT)]))
    try:
        configs = [load_environment(name) for name in names]
        extra = Scenario(
            scorers=dict(parse_scorer(s) for s in args.scorer), faults=[parse_fault(f) for f in args.fault]
        )
        inputs = [(config, *_records_of(args, config, configs)) for config in configs]
    except (EnvironmentConfigError, ScenarioError) as error:
        console.print(f"[red]error:[/red] {error}")
        return EXIT_USAGE
    if not any(records for _, records, _, _ in inputs):
        console.print("[red]error:[/red] no records to run")
        return EXIT_USAGE
    if (args.timeout is not None and args.timeout <= 0) or args.stall <= 0:
        console.print("[red]error:[/red] --timeout and --stall need a positive number of seconds")
        return EXIT_USAGE
    log_root = args.logs or (args.report.parent / f"{args.report.stem}-logs" if args.report else None)
    runs = [
        (config, records, scenario.merged(extra), source) for config, records, scenario, source in inputs if records
    ]
    for config, records, _, source in runs:
        console.print(f"mm-processor local run: {len(records)} records from {source}, environment {config.environment}")
    if len(runs) == 1:
        config, records, scenario, _ = runs[0]
        outcomes = [_run_one(args, config, records, scenario, log_root, None, _progress_printer(console, len(records)))]
    else:
        # One emulator for all (moto keeps one state per process); every resource name carries its environment.
        with LocalAws(configs[0].region) as shared:
            outcomes = _side_by_side(args, runs, log_root, shared, console)
    report_path: Path | None = args.report
    if report_path is not None:
        reports = {outcome.environment: to_report(outcome) for outcome in outcomes}
        document: dict[str, Any] = (
            next(iter(reports.values()))
            if len(reports) == 1
            else {"ok": all(o.ok for o in outcomes), "environments": reports}
        )
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(document, indent=2) + "\n")
    for outcome in outcomes:
        if args.quiet:
            console.print(json.dumps({"environment": outcome.environment, **state_counts(outcome)}))
        else:
            print_summary(outcome, console, report_path)
    if len(outcomes) > 1:
        verdicts = ", ".join(f"{o.environment} {'OK' if o.ok else 'NOT OK'}" for o in outcomes)
        console.print(f"environments side by side: {verdicts}")
    return EXIT_OK if all(outcome.ok for outcome in outcomes) else EXIT_UNACCOUNTED


def _records_of(args: argparse.Namespace, config: Any, configs: list[Any]) -> tuple[list[Any], Scenario, str]:
    """The records one environment runs: its share of --messages (by topic), N generated, or its example set."""
    from local_pipeline.kafka import record_topic
    from local_pipeline.scenario import example_set_for

    if args.messages is not None:
        records = load_messages(args.messages)
        if len(configs) > 1:
            # The topic decides the platform: each record goes to the first environment that consumes its topic.
            topics = tuple(topic for other in configs for topic in other.accepted_topics)
            owner = {topic: next(c for c in configs if topic in c.accepted_topics) for topic in topics}
            records = [r for r in records if owner[record_topic(r.value, topics)] is config]
        return records, Scenario(), str(args.messages)
    flood = getattr(args, "challenge", None)
    if args.generate is not None:
        if args.generate < 1:
            raise ScenarioError("--generate N needs N >= 1")
        if flood is not None and len(configs) > 1 and not any(c.challenge_id == flood for c in config.challenges):
            return [], Scenario(), f"no generated submissions (challenge {flood} is another environment's)"
        records = generate(config, args.generate, challenge_id=flood)
        where = f" to challenge {flood}" if flood is not None else ""
        return records, Scenario(), f"{args.generate} generated submissions{where}"
    if flood is not None:
        raise ScenarioError("--challenge goes with --generate N")
    records, scenario = example_set_for(config)
    return records, scenario, f"the built-in {config.platforms[0].value} example set"


def _run_one(
    args: argparse.Namespace,
    config: Any,
    records: list[Any],
    scenario: Scenario,
    log_dir: Path | None,
    aws: Any,
    progress: Any,
) -> Any:
    from local_pipeline.engine import LocalPipeline

    with LocalPipeline(
        config, log_dir=log_dir, max_running_tasks=args.max_tasks, partitions=args.partitions, aws=aws
    ) as pipeline:
        return pipeline.run(
            records, scenario, deadline_seconds=args.timeout, stall_seconds=args.stall, progress=progress
        )


def _side_by_side(
    args: argparse.Namespace, runs: list[Any], log_root: Path | None, aws: Any, console: Console
) -> list[Any]:
    """Each environment's pipeline in its own thread, on the one emulator; outcomes in `--env` order."""
    import tempfile
    import threading

    root = log_root or Path(tempfile.mkdtemp(prefix="mm-local-run-"))
    outcomes: dict[int, Any] = {}
    errors: dict[int, BaseException] = {}

    def run(index: int, config: Any, records: list[Any], scenario: Scenario) -> None:
        try:
            outcomes[index] = _run_one(args, config, records, scenario, root / config.environment, aws, None)
        except BaseException as error:  # reported below, with the environment it belongs to
            errors[index] = error

    threads = [
        threading.Thread(target=run, args=(i, c, r, s), name=f"env-{c.environment}", daemon=True)
        for i, (c, r, s, _) in enumerate(runs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, error in sorted(errors.items()):
        console.print(f"[red]error:[/red] environment {runs[index][0].environment}: {type(error).__name__}: {error}")
    if errors:
        raise next(iter(errors.values()))
    return [outcomes[i] for i in sorted(outcomes)]


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
    from mm_adapters import aws
    from mm_adapters.status_store import StatusStore

    console = console or _console()
    table_name = args.table
    capacity_table = getattr(args, "capacity_table", None)
    if not table_name:
        try:
            config = load_environment(args.env or os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT))
        except EnvironmentConfigError as error:
            console.print(f"[red]error:[/red] {error}")
            return EXIT_USAGE
        from infrastructure.wiring import ResourceNames

        names = ResourceNames(config.environment)
        table_name = names.status_table
        capacity_table = capacity_table or names.capacity_table
        os.environ.setdefault("AWS_DEFAULT_REGION", config.region)
    try:
        records = _runs_of(StatusStore(table_name, dynamodb_client=aws.client("dynamodb")), args.submission_id)
    except Exception as error:  # credentials, network, missing table: say which, briefly
        console.print(f"[red]error:[/red] could not read {table_name}: {type(error).__name__}: {error}")
        return EXIT_USAGE
    environment = _environment_of(table_name)
    capacity_table = capacity_table or _capacity_table_beside(table_name)
    capacity = _capacity_of(records, table_name, capacity_table, console)
    if not records:
        console.print(f"no lifecycle record for submission {args.submission_id} in {table_name}")
        for line in _not_found_hints(args.submission_id.partition(RUN_ID_SEPARATOR)[0], environment):
            console.print(line, markup=False, highlight=False)
        return EXIT_UNACCOUNTED
    if args.json:
        runs = [json.loads(record.to_json()) for record in records]
        document: dict[str, Any] = {"submissionId": records[0].submission_id, "runs": runs}
        if capacity:
            document["capacity"] = {run_id: view.to_dict() for run_id, view in capacity.items()}
        console.print_json(json.dumps(document))
        return EXIT_OK
    overview = Table(title=f"submission {records[0].submission_id}: {len(records)} run(s)")
    for column in ("run", "phase", "state", "report", "reason"):
        overview.add_column(column, overflow="fold")
    for record in records:
        report = record.report_status.value if record.report_status else "-"
        overview.add_row(record.run_id, record.phase.value, record.state.value, report, record.reason or "")
    console.print(overview)
    for record in records:
        _print_run(record, environment, console, capacity.get(record.run_id))
    return EXIT_OK


@dataclass(frozen=True)
class CapacityView:
    """A waiting run's place in its challenge's queue, and the counts and caps it waits on (decision 098)."""

    challenge_id: str
    position: int | None  # 1-based place in the challenge's queue (WAITING runs only)
    challenge_running: int
    challenge_waiting: int
    challenge_cap: int | None  # the cap the dispatcher last applied (None: it has not looked yet)
    environment_running: int
    environment_cap: int | None
    phase_running: int | None = None  # the run's phase pool, when the challenge caps its phase
    phase_cap: int | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "challengeId": self.challenge_id,
            "queuePosition": self.position,
            "challenge": {
                "running": self.challenge_running,
                "waiting": self.challenge_waiting,
                "cap": self.challenge_cap,
            },
            "environment": {"running": self.environment_running, "cap": self.environment_cap},
        }
        if self.phase_running is not None:
            document["phase"] = {"running": self.phase_running, "cap": self.phase_cap}
        return document

    def rows(self) -> list[tuple[str, str]]:
        def cap(value: int | None) -> str:
            return "not yet applied" if value is None else str(value)

        rows = []
        if self.position is not None:
            rows.append(("queue position", f"{self.position} of {self.challenge_waiting} waiting in its challenge"))
        rows.append(
            (
                "challenge capacity",
                f"running {self.challenge_running}, waiting {self.challenge_waiting}, cap {cap(self.challenge_cap)}",
            )
        )
        if self.phase_running is not None:
            rows.append(("phase capacity", f"running {self.phase_running}, cap {cap(self.phase_cap)}"))
        rows.append(("environment capacity", f"running {self.environment_running}, cap {cap(self.environment_cap)}"))
        return rows


def _capacity_table_beside(status_table: str) -> str | None:
    """`mm-<env>-runs` -> `mm-<env>-capacity` (the stacks' naming), else None."""
    prefix, suffix = "mm-", "-runs"
    if status_table.startswith(prefix) and status_table.endswith(suffix):
        return f"{status_table[: -len(suffix)]}-capacity"
    return None


def _capacity_of(
    records: list[Any], status_table: str, capacity_table: str | None, console: Console
) -> dict[str, CapacityView]:
    """For each WAITING or ADMITTED run: where it stands in the capacity table. A capacity table that cannot be
    read never fails the command (the lifecycle above is the answer); it is said once."""
    from mm_adapters import aws
    from mm_capacity.store import CapacityStore
    from mm_contracts.models.lifecycle import SubmissionState

    waiting = [r for r in records if r.state in (SubmissionState.WAITING, SubmissionState.ADMITTED)]
    if not waiting:
        return {}
    if capacity_table is None:
        console.print("(capacity not shown: pass --capacity-table for a waiting run's place in its queue)")
        return {}
    try:
        store = CapacityStore(capacity_table, status_table, dynamodb_client=aws.client("dynamodb"))
        snapshot = store.pools()
        views = {}
        for record in waiting:
            pool = snapshot.challenge(record.challenge_id)
            phase_pool = snapshot.phases.get((record.challenge_id, record.phase))
            position = (
                store.queue_position(record.challenge_id, record.wait_order)
                if record.state is SubmissionState.WAITING and record.wait_order
                else None
            )
            views[record.run_id] = CapacityView(
                challenge_id=record.challenge_id,
                position=position,
                challenge_running=pool.used,
                challenge_waiting=pool.waiting,
                challenge_cap=pool.cap,
                environment_running=snapshot.env.used,
                environment_cap=snapshot.env.cap,
                phase_running=phase_pool.used if phase_pool is not None else None,
                phase_cap=phase_pool.cap if phase_pool is not None else None,
            )
        return views
    except Exception as error:  # credentials, a missing table (an environment before capacity): say so, go on
        console.print(f"(capacity not shown: could not read {capacity_table}: {type(error).__name__}: {error})")
        return {}


def _runs_of(store: Any, wanted: str) -> list[Any]:
    """The runs `wanted` names: one run id (`<submissionId>#<PHASE>`), or every run of a submission."""
    from mm_contracts.models.phase import RunKey

    if RUN_ID_SEPARATOR in wanted:
        try:
            RunKey.parse(wanted)
        except ValueError:
            return []
        record = store.get(wanted)
        return [record] if record is not None else []
    runs = list(store.get_runs(wanted))
    return sorted(runs, key=lambda record: record.phase.priority)


def _print_run(record: Any, environment: str, console: Console, capacity: CapacityView | None = None) -> None:
    details = Table(title=f"run {record.run_id} ({record.phase.value})", show_header=False)
    details.add_column("field", style="bold")
    details.add_column("value", overflow="fold")
    for label, value in (
        ("state", record.state.value),
        ("phase", record.phase.value),
        ("platform", record.platform.value),
        ("challenge", record.challenge_id),
        ("reason", record.reason),
        ("task ARN", record.task_arn),
        ("exit code", record.exit_code),
        ("stop code", record.stop_code),
        ("report", record.report_status.value if record.report_status else None),
        ("API response", record.report_response),
        ("launch attempts", record.launch_attempt),
        ("correlation id", record.correlation_id),
        ("wait reason", record.wait_reason),
        ("waiting since", _epoch_iso(record.enqueued_at)),
        ("admitted", _epoch_iso(record.admitted_at)),
        ("created", record.created_at.isoformat()),
        ("updated", record.updated_at.isoformat()),
    ):
        if value not in (None, ""):
            details.add_row(label, str(value))
    for label, value in capacity.rows() if capacity is not None else []:
        details.add_row(label, value)
    console.print(details)
    history = Table(title=f"history of {record.run_id}")
    history.add_column("at")
    history.add_column("state")
    history.add_column("detail", overflow="fold")
    for event in record.history:
        history.add_row(event.at.isoformat(), event.state, event.detail)
    console.print(history)
    hint = _next_step(record, environment)
    if hint:
        console.print(f"next step ({record.phase.value}): {hint}", markup=False, highlight=False)


def _epoch_iso(epoch: int | None) -> str | None:
    from datetime import UTC, datetime

    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def _environment_of(table_name: str) -> str:
    """`mm-<env>-runs` (or the older `mm-<env>-submission-status`) -> `<env>` (the stacks' naming), else a
    placeholder for the hints."""
    prefix = "mm-"
    for suffix in ("-runs", "-submission-status"):
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
    from mm_contracts.models.lifecycle import ReportStatus, SubmissionState

    dlq = f"mm-{environment}-ch-{record.challenge_id}-dlq"
    if record.state is SubmissionState.WAITING:
        return (
            "nothing: the run waits durably for a slot (no queue message, no DLQ) and starts as soon as one frees. "
            "If it waits long, compare the counts above with the caps (docs/operations.md 'Capacity'); raise a cap "
            "at run time with put-parameter of <ssmPrefix>/capacity (by default "
            f"/mm-processor/{environment}/capacity) or of the challenge's config parameter."
        )
    if record.state is SubmissionState.ADMITTED:
        return (
            "nothing: a slot is reserved and the launch message was sent to the challenge queue; if it is still "
            "ADMITTED after deadlineAt, the sweeper sends it again."
        )
    if record.state is SubmissionState.DEAD_LETTERED:
        return (
            f"the message is parked in {dlq}; fix the reason above, then redrive it "
            f"(SQS console 'Start DLQ redrive', or aws sqs start-message-move-task --source-arn <{dlq} ARN>). "
            "A redrive is safe: the launch is claimed exactly once."
        )
    if record.state is SubmissionState.LAUNCH_FAILED:
        return "the launch failed and the message is being retried from its queue; watch for DEAD_LETTERED."
    if record.report_status is ReportStatus.REJECTED:
        if record.platform is Platform.V6:
            return (
                "review-api-v6 rejected the run's terminal review summation (response above); fix the cause "
                "(submission id, scorecard, token scopes create/read/update:review_summation) and write the "
                f"{record.phase.value} summation manually: it will not be retried."
            )
        return (
            "the Topcoder API rejected the outcome report (response above); fix the cause (review type, "
            "submission id, permissions) and post the review manually: it will not be retried."
        )
    if record.report_status in (ReportStatus.PENDING, ReportStatus.REPORTING):
        if record.task_arn is None:  # a run recorded without a task (a v6 skip): its report is invoked, not evented
            return (
                "the skipped run's FAILED summation is not yet reported; the sweeper re-drives it (a \"Run Report "
                f"Due\" invoke of mm-{environment}-completion); if this persists, check that function's log."
            )
        return (
            f"the outcome is recorded but not yet reported; if this persists, the STOPPED event is in "
            f"mm-{environment}-completion-dlq: fix the cause (API down, credentials) and redrive it."
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
