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

from infrastructure.config import EnvironmentConfig, EnvironmentConfigError, load_environment
from infrastructure.wiring import WiringPlan
from operator_tools.clients import AwsClients, ClientSource
from operator_tools.console import Output, escape, table_for
from operator_tools.health import HealthReport, check_environment
from operator_tools.smoke import (
    DEFAULT_POLL_INTERVAL_SECONDS,
    SmokeNotConfiguredError,
    SmokeOutcome,
    SmokeResult,
    SmokeRun,
)

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


def smoke_command(args: argparse.Namespace, console: Output, clients: ClientSource | None = None) -> int:
    try:
        config = _checked_config(args)
    except _CouldNotRun as refusal:
        return _could_not_run(console, args, str(refusal))
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
    verdict = _health_verdict(args, health)
    if verdict is not None:
        return _finish(console, args, document, *verdict)
    return _synthetic_submission(args, console, plan, clients, document)


class _CouldNotRun(Exception):
    """The command cannot run as asked (said in the summary, exit 2)."""


def _checked_config(args: argparse.Namespace) -> EnvironmentConfig:
    """The environment's config, once the arguments make sense for it."""
    try:
        config = load_environment(args.env)
    except EnvironmentConfigError as error:
        raise _CouldNotRun(str(error)) from None
    if (args.timeout is not None and args.timeout <= 0) or args.poll_interval <= 0:
        raise _CouldNotRun("--timeout and --poll-interval need a positive number of seconds")
    if not args.health_only and config.smoke is None:
        raise _CouldNotRun(
            f"environment {config.environment} has no `smoke` block (challengeId, submissionId, memberId, url): "
            "add one to its config, or run with --health-only"
        )
    return config


def _health_verdict(args: argparse.Namespace, health: HealthReport) -> tuple[int, str] | None:
    """Where the health checks end the command (exit status, summary); None: go on to the submission."""
    if not health.credentials_ok:
        return EXIT_COULD_NOT_RUN, "could not run: see the credentials check"
    if args.health_only:
        return (EXIT_OK, "healthy") if health.ok else (EXIT_FAILED, "unhealthy")
    if not health.ok:
        return EXIT_FAILED, "unhealthy: the synthetic submission was not sent"
    return None


def _synthetic_submission(
    args: argparse.Namespace, console: Output, plan: WiringPlan, clients: ClientSource, document: dict[str, Any]
) -> int:
    progress = (lambda line: None) if args.json else (lambda line: console.print(line, markup=False, highlight=False))
    try:
        run = SmokeRun(plan, clients, progress=progress)
    except SmokeNotConfiguredError as error:
        return _finish(console, args, document, EXIT_COULD_NOT_RUN, f"could not run: {error}")
    result = run.run(timeout_seconds=args.timeout, poll_interval=args.poll_interval, keep=args.keep)
    document["smoke"] = result.to_dict()
    if not args.json:
        _print_result(console, result)
    if result.outcome is SmokeOutcome.REFUSED:
        return _finish(console, args, document, EXIT_COULD_NOT_RUN, "could not run the synthetic submission")
    if result.ok:
        return _finish(console, args, document, EXIT_OK, "passed")
    return _finish(console, args, document, EXIT_FAILED, "failed")


def _print_result(console: Output, result: SmokeResult) -> None:
    if len(result.runs) > 1:
        for each in result.runs:
            report = f", report {each.report_status}" if each.report_status else ""
            line = f"  run {each.phase}: {each.outcome.value} ({each.state or 'no status item'}{report})"
            console.print(line, markup=False, highlight=False)
    items = "status items" if len(result.runs) > 1 else "status item"
    cleanup = f"{items} deleted" if result.cleaned_up else f"{items} kept"
    console.print(f"smoke {result.outcome.value}: {result.detail} ({cleanup})", markup=False, highlight=False)


def _print_health(console: Output, health: HealthReport) -> None:
    table = table_for(console, f"health of {health.environment}")
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail", overflow="fold")
    for check in health.checks:
        # Details hold `[mm-processor <env>]` and JSON: never read as rich markup.
        table.add_row(escape(check.name), "ok" if check.ok else "[red]FAILED[/red]", escape(check.detail))
    console.print(table)


def _finish(console: Output, args: argparse.Namespace, document: dict[str, Any], status: int, summary: str) -> int:
    document.update({"ok": status == EXIT_OK, "exitStatus": status, "summary": summary})
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        console.print(f"mm-processor smoke --env {document['environment']}: {summary}", markup=False, highlight=False)
    return status


def _could_not_run(console: Output, args: argparse.Namespace, message: str) -> int:
    return _finish(console, args, {"environment": args.env}, EXIT_COULD_NOT_RUN, f"could not run: {message}")
