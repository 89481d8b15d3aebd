"""`mm-processor audit CHALLENGE_ID [--limit N]`: a challenge's operator changes, newest first (decision 107).

The challenge-scoped changes (pause, resume, set-caps; `ENV` for the environment's caps) are kept in the capacity
table's audit log of the challenge (`CapacityStore.challenge_changes`, decision 105): who, when, what, why, the
request id, and what changed. Run-scoped changes (rerun, dispatch, stop, redrive) are in each run's history
(`mm-processor status RUN_ID`). Exit status: 0, 2 could not read.
"""

from __future__ import annotations

import argparse

from operator_tools.console import escape, table_for
from operator_tools.context import (
    EXIT_OK,
    OperatorContext,
    OperatorError,
    add_environment_options,
    challenge_id_argument,
)

DEFAULT_LIMIT = 50
ENV_AUDIT_ID = "ENV"  # caps.ENV_AUDIT_ID: the log of the environment's caps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "challenge_id", type=audit_id_argument, help="the challenge id (ENV: changes of the environment's caps)"
    )
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="at most N changes (default %(default)s)")
    add_environment_options(parser)


def audit_id_argument(value: str) -> str:
    """`ENV` (the environment's caps' log), else a challenge id in its canonical form."""
    return ENV_AUDIT_ID if value.strip().upper() == ENV_AUDIT_ID else challenge_id_argument(value)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise OperatorError("--limit needs a number of changes, 1 or more")
    context = OperatorContext.from_args(args)
    if args.challenge_id != ENV_AUDIT_ID:
        context.warn_unknown_challenge(args.challenge_id)
    changes = context.capacity_store().challenge_changes(args.challenge_id, limit=args.limit)
    document = {
        "environment": context.config.environment,
        "challengeId": args.challenge_id,
        "changes": [{**change.to_wire(), "detail": detail} for change, detail in changes],
    }

    def human() -> None:
        if not changes:
            context.say(f"no operator change recorded for {args.challenge_id}")
            return
        table = table_for(context.console, f"operator changes of {args.challenge_id}, newest first")
        for column in ("at", "action", "by", "reason", "request", "detail"):
            table.add_column(column, overflow="fold")
        for change, detail in changes:
            table.add_row(
                change.at.isoformat(),
                change.action,
                escape(change.actor),
                escape(change.reason),
                change.request_id,
                escape(detail),
            )
        context.console.print(table)

    context.emit(document, human)
    return EXIT_OK
