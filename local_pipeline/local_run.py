"""`mm-processor local run`: the whole pipeline on this machine, on the embedded AWS emulator (development only).

    mm-processor local run [--env example [--env dev ...]] [--messages FILE | --generate N [--challenge ID]]
                           [--scorer ID=BEHAVIOUR ...] [--fault ID=KIND[:COUNT][@START-END][,NAME=VALUE...] ...]
                           [--report FILE] [--timeout SECONDS] [--stall SECONDS]

The entry point is `operator_tools.cli` (decision 103); it imports this module only for `mm-processor local ...`,
since the harness and its dependencies (moto, rich, the stand-in) are not part of an operator's installation.

Exit status: 0 only when every input record ended in exactly one final state and no run (submission, phase) got
two tasks or two reports; 1 otherwise (the unaccounted records are named); 2 for usage or configuration errors.
Several `--env`s run side by side in one emulator, each with its own resources, stand-in and fake Fargate
(decision 090); the exit status is 0 only if every one is OK.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console

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

EXIT_OK = 0
EXIT_UNACCOUNTED = 1
EXIT_USAGE = 2


def add_local_commands(local: argparse.ArgumentParser) -> None:
    """`local`'s subcommands (today `run`) on the `local` parser of the entry point."""
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


def _console() -> Console:
    """A terminal keeps its own width; piped output (CI logs, `| tee`) gets a width that fits the table."""
    console = Console()
    return console if console.is_terminal else Console(width=150)
