"""`mm-processor`: the operator's command (decision 103), installed by `[project.scripts]`.

    mm-processor status SUBMISSION_ID|RUN_ID [--table NAME [--capacity-table NAME] | --env ENV] [--json]
    mm-processor smoke --env ENV [--health-only] [--endpoint-url URL] [--region R] [--profile P]
                       [--timeout SECONDS] [--keep] [--json]      (decision 083)
    mm-processor local run ...                                     (development only: local_pipeline/local_run.py)

`status` and `smoke` need the runtime dependencies only (rich is optional: `operator_tools.console`). `local`
belongs to the development environment: its subcommands come from `local_pipeline`, imported only when
`mm-processor local ...` is what was asked for, so `mm-processor --help` and the operator commands never load the
harness. Exit status: each command's own (0 ok; 1 not found / failed / unaccounted; 2 usage or could not run).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_UNACCOUNTED = 1  # `local run`: a record unaccounted for; `status`: no record; `smoke`: a check failed
EXIT_USAGE = 2

LOCAL_COMMAND = "local"


class LocalPipelineUnavailable(Exception):
    """`mm-processor local` asked for where the development environment (local_pipeline) is not installed."""


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    from infrastructure.config import DEFAULT_ENVIRONMENT
    from operator_tools import smoke_command, status

    parser = argparse.ArgumentParser(prog="mm-processor", description="mm-processor operator and developer tools")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser(
        LOCAL_COMMAND, help="the pipeline on this machine, on the embedded AWS emulator (development environment)"
    )
    if list(argv[:1]) == [LOCAL_COMMAND]:
        _add_local_commands(local)

    status.add_arguments(
        commands.add_parser("status", help="where is submission X (each of its runs), and why did it fail")
    )
    smoke = commands.add_parser(
        "smoke",
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
    if args.command == "status":
        from operator_tools.status import status_command

        return status_command(args)
    if args.command == "smoke":
        from operator_tools.console import make_console
        from operator_tools.smoke_command import smoke_command

        return smoke_command(args, make_console())
    from local_pipeline.local_run import run_command

    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
