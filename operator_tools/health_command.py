"""`mm-processor health [--env ENV] [--json]`: the environment's health (decisions 083, 111).

The checks of `operator_tools.health.check_environment`: credentials, the submissions topic, the caps, each
challenge's config, task definition and subscription, every DLQ empty, no alarm in ALARM, no run stuck LAUNCHING
past the sweeper's stuck-launch threshold and no report PENDING/REPORTING past its deadline (each plus one sweep;
reports the sweeper gave up on are off the index and not listed). A table (or --json: the report); exit 1 when any
check fails, 2 when it could not run (no credentials, another account's). `smoke --health-only` runs the same.
"""

from __future__ import annotations

import argparse

from operator_tools.context import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OperatorContext, add_environment_options
from operator_tools.health import check_environment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_options(parser)


def run(args: argparse.Namespace, context: OperatorContext | None = None, *, now: float | None = None) -> int:
    context = context or OperatorContext.from_args(args)
    report = check_environment(context.plan(), context.clients, now=now)

    def human() -> None:
        width = max((len(check.name) for check in report.checks), default=10)
        for check in report.checks:
            context.say(f"{'ok  ' if check.ok else 'FAIL'} {check.name:<{width}}  {check.detail}")
        failures = len(report.failures)
        context.say(f"{report.environment}: {'healthy' if report.ok else f'{failures} check(s) failed'}")

    context.emit(report.to_dict(), human)
    if not report.credentials_ok:
        return EXIT_USAGE
    return EXIT_OK if report.ok else EXIT_FAILED
