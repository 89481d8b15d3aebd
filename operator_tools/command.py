"""`mm-processor smoke`: the health checks, then (unless --health-only) one synthetic submission.

Exit status: 0 everything passed; 1 a check or the submission failed; 2 could not run (unknown environment,
no credentials or another account's, no `smoke` block, an earlier smoke still in flight, the publish refused).
The synthetic submission is skipped when a health check failed: it would fail for the same reason, and a
deploy must not be promoted past a firing alarm or a full DLQ anyway.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ProfileNotFound
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infrastructure.config import EnvironmentConfigError, load_environment
from infrastructure.wiring import WiringPlan
from operator_tools.clients import AwsClients, ClientSource
from operator_tools.health import HealthReport, check_environment
from operator_tools.smoke import DEFAULT_POLL_INTERVAL_SECONDS, SmokeNotConfiguredError, SmokeOutcome, SmokeRun

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_COULD_NOT_RUN = 2


def add_arguments(parser: argparse.ArgumentParser, default_env: str) -> None:
    parser.add_argument("--env", default=default_env, help="environment config name")
    parser.add_argument("--health-only", action="store_true", help="only the health checks (the promotion gate)")
    parser.add_argument("--endpoint-url", help="one endpoint for every AWS service (a local emulator)")
    parser.add_argument("--region", help="AWS region of the clients (default: the environment's)")
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="wait this long for the submission (default: smoke.timeoutSeconds)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="status table read interval (default %(default).0f)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the submission's status item for inspection")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout, for scripts")


def smoke_command(args: argparse.Namespace, console: Console, clients: ClientSource | None = None) -> int:
    try:
        config = load_environment(args.env)
    except EnvironmentConfigError as error:
        return _could_not_run(console, args, str(error))
    if (args.timeout is not None and args.timeout <= 0) or args.poll_interval <= 0:
        return _could_not_run(console, args, "--timeout and --poll-interval need a positive number of seconds")
    if not args.health_only and config.smoke is None:
        return _could_not_run(
            console,
            args,
            f"environment {config.environment} has no `smoke` block (challengeId, submissionId, memberId, url): "
            "add one to its config, or run with --health-only",
        )
    plan = WiringPlan(config)
    clients = clients or AwsClients(
        profile=args.profile, region=args.region or config.region, endpoint_url=args.endpoint_url
    )
    document: dict[str, Any] = {"environment": config.environment}
    try:
        health = check_environment(plan, clients)
    except (ProfileNotFound, BotoCoreError) as error:
        return _could_not_run(console, args, f"AWS session: {type(error).__name__}: {error}")
    document["health"] = health.to_dict()
    if not args.json:
        _print_health(console, health)
    if not health.credentials_ok:
        return _finish(console, args, document, EXIT_COULD_NOT_RUN, "could not run: see the credentials check")
    if args.health_only:
        status = EXIT_OK if health.ok else EXIT_FAILED
        return _finish(console, args, document, status, "healthy" if health.ok else "unhealthy")
    if not health.ok:
        return _finish(console, args, document, EXIT_FAILED, "unhealthy: the synthetic submission was not sent")

    progress = (lambda line: None) if args.json else (lambda line: console.print(line, markup=False, highlight=False))
    try:
        run = SmokeRun(plan, clients, progress=progress)
    except SmokeNotConfiguredError as error:
        return _finish(console, args, document, EXIT_COULD_NOT_RUN, f"could not run: {error}")
    result = run.run(timeout_seconds=args.timeout, poll_interval=args.poll_interval, keep=args.keep)
    document["smoke"] = result.to_dict()
    if not args.json:
        if len(result.runs) > 1:
            for each in result.runs:
                report = f", report {each.report_status}" if each.report_status else ""
                line = f"  run {each.phase}: {each.outcome.value} ({each.state or 'no status item'}{report})"
                console.print(line, markup=False, highlight=False)
        items = "status items" if len(result.runs) > 1 else "status item"
        cleanup = f"{items} deleted" if result.cleaned_up else f"{items} kept"
        console.print(f"smoke {result.outcome.value}: {result.detail} ({cleanup})", markup=False, highlight=False)
    if result.outcome is SmokeOutcome.REFUSED:
        return _finish(console, args, document, EXIT_COULD_NOT_RUN, "could not run the synthetic submission")
    if result.ok:
        return _finish(console, args, document, EXIT_OK, "passed")
    return _finish(console, args, document, EXIT_FAILED, "failed")


def _print_health(console: Console, health: HealthReport) -> None:
    table = Table(title=f"health of {health.environment}")
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail", overflow="fold")
    for check in health.checks:
        # Details hold `[mm-processor <env>]` and JSON: never read as rich markup.
        table.add_row(escape(check.name), "ok" if check.ok else "[red]FAILED[/red]", escape(check.detail))
    console.print(table)


def _finish(console: Console, args: argparse.Namespace, document: dict[str, Any], status: int, summary: str) -> int:
    document.update({"ok": status == EXIT_OK, "exitStatus": status, "summary": summary})
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        console.print(f"mm-processor smoke --env {document['environment']}: {summary}", markup=False, highlight=False)
    return status


def _could_not_run(console: Console, args: argparse.Namespace, message: str) -> int:
    return _finish(console, args, {"environment": args.env}, EXIT_COULD_NOT_RUN, f"could not run: {message}")
