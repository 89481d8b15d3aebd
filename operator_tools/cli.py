"""`mm-processor`: the operator's command (decisions 103, 107), installed by `[project.scripts]`.

    mm-processor status SUBMISSION_ID|RUN_ID      where is submission X (each of its runs), and why
    mm-processor runs CHALLENGE_ID [--state S]    a challenge's runs by state
    mm-processor queue CHALLENGE_ID               its waiting queue, in order, with positions
    mm-processor stop RUN_ID --reason TEXT        stop a run's task
    mm-processor pause|resume CHALLENGE_ID ...    stop / start admitting a challenge's runs
    mm-processor caps show|set ...                the environment's and a challenge's caps
    mm-processor audit CHALLENGE_ID               the challenge's operator changes
    mm-processor rerun | dispatch-system | dlq | health | smoke | local ...

Every command takes `--env` (default `$MM_ENV`), `--profile`, `--region`, `--endpoint-url` and `--json`
(`operator_tools.context`); every change takes `--yes`, `--dry-run` and `--reason`. The commands need the runtime
dependencies only (rich is optional: `operator_tools.console`). `local` belongs to the development environment:
its subcommands come from `local_pipeline`, imported only when `mm-processor local ...` is what was asked for, so
`mm-processor --help` and the operator commands never load the harness. Exit status: 0 ok; 1 not found, refused,
failed; 2 usage or could not run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_UNACCOUNTED = 1  # `local run`: a record unaccounted for; `status`: no record; `smoke`: a check failed
EXIT_USAGE = 2

LOCAL_COMMAND = "local"
SMOKE_COMMAND = "smoke"


@dataclass(frozen=True)
class Command:
    """One subcommand: its module exposes `add_arguments(parser)` and `run(args) -> int` (or the two functions
    `arguments` and `entry` name, for a module serving two commands)."""

    name: str
    module: str
    help: str
    arguments: str = "add_arguments"
    entry: str = "run"


# The one table of commands (`local` and `smoke` are wired by hand below: a harness, an older signature).
COMMANDS: tuple[Command, ...] = (
    Command("status", "operator_tools.status", "where is submission X (each of its runs), and why did it fail"),
    Command("runs", "operator_tools.runs", "a challenge's runs by state (counts per state, then the runs)"),
    Command("queue", "operator_tools.queue", "a challenge's waiting queue in order, with positions and caps"),
    Command("stop", "operator_tools.stop", "stop a launched run's task (it ends 'stopped by an operator')"),
    Command("pause", "operator_tools.pause", "stop admitting a challenge's runs (new ones wait; none is lost)"),
    Command(
        "resume",
        "operator_tools.pause",
        "admit a paused challenge's runs again (and dispatch its queue now)",
        arguments="add_resume_arguments",
        entry="run_resume",
    ),
    Command("caps", "operator_tools.caps", "show or change the environment's or a challenge's caps"),
    Command("audit", "operator_tools.audit_log", "a challenge's operator changes (pause, resume, caps), newest first"),
    Command("rerun", "operator_tools.rerun", "rerun a submission (a phase or all), or every member's latest"),
    Command(
        "dispatch-system",
        "operator_tools.dispatch_system",
        "after the match: SYSTEM scoring of a challenge's latest submissions, with a completion summary",
    ),
    Command("dlq", "operator_tools.dlq", "inspect and redrive the dead-letter queues"),
    Command("health", "operator_tools.health_command", "the environment's health: configs, wiring, DLQs, alarms"),
)


class LocalPipelineUnavailable(Exception):
    """`mm-processor local` asked for where the development environment (local_pipeline) is not installed."""


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    from infrastructure.config import DEFAULT_ENVIRONMENT
    from operator_tools import smoke_command

    parser = argparse.ArgumentParser(prog="mm-processor", description="mm-processor operator and developer tools")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser(
        LOCAL_COMMAND, help="the pipeline on this machine, on the embedded AWS emulator (development environment)"
    )
    if list(argv[:1]) == [LOCAL_COMMAND]:
        _add_local_commands(local)

    for command in COMMANDS:
        module = importlib.import_module(command.module)
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        getattr(module, command.arguments)(sub)
        sub.set_defaults(run=getattr(module, command.entry))
    smoke = commands.add_parser(
        SMOKE_COMMAND,
        help="after a deploy: the environment's health, then one synthetic submission (exit 0 only if all passed)",
    )
    smoke_command.add_arguments(smoke, os.environ.get("MM_ENV", DEFAULT_ENVIRONMENT))
    return parser


def _add_local_commands(local: argparse.ArgumentParser) -> None:
    try:
        from local_pipeline.local_run import add_local_commands
    except ImportError as error:
        raise LocalPipelineUnavailable(
            f"`mm-processor local` needs the development environment (make install): {error}"
        ) from error
    add_local_commands(local)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = _parser(arguments)
    except LocalPipelineUnavailable as error:
        print(f"mm-processor: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(arguments)
    if args.command == SMOKE_COMMAND:
        from operator_tools.console import make_console
        from operator_tools.smoke_command import smoke_command

        return smoke_command(args, make_console())
    if args.command == LOCAL_COMMAND:
        from local_pipeline.local_run import run_command

        return run_command(args)
    from operator_tools.context import run_guarded

    result: int = run_guarded(lambda: args.run(args))
    return result


if __name__ == "__main__":
    sys.exit(main())
