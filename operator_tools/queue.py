"""`mm-processor queue CHALLENGE_ID [--limit N]`: the challenge's waiting queue, in the order it is admitted.

The capacity table's QUEUE#<challengeId> partition is the queue (its sort key, the wait order, is the admission
order: priority rank, member round, enqueue time; decision 097). Each entry: its 1-based position, run, phase,
member, rerun flag, how long it has waited, and why (the run's `waitReason`). Above it: the challenge's running /
waiting / cap, and whether an operator paused it (decision 105). Exit status: 0, 2 could not read.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from mm_capacity.records import WaitEntry
from operator_tools.console import escape, table_for
from operator_tools.context import (
    EXIT_OK,
    OperatorContext,
    OperatorError,
    add_environment_options,
    challenge_id_argument,
)

DEFAULT_LIMIT = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("challenge_id", type=challenge_id_argument, help="the challenge id")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="show the first N waiting runs (default %(default)s)"
    )
    add_environment_options(parser)


def waited(seconds: float) -> str:
    """A duration for a person: 45s, 12m, 3h05m, 2d04h."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total}s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def entry_row(position: int, entry: WaitEntry, wait_reason: str | None, now: float) -> dict[str, Any]:
    return {
        "position": position,
        "runId": entry.run_id,
        "phase": entry.phase.value,
        "memberId": entry.member_id,
        "rerun": entry.rerun,
        "enqueuedAt": entry.enqueued_at,
        "waitedSeconds": max(int(now - entry.enqueued_at), 0),
        "waitReason": wait_reason,
    }


def queue_document(context: OperatorContext, challenge_id: str, limit: int, now: float) -> dict[str, Any]:
    store = context.capacity_store()
    pool = store.pools().challenge(challenge_id)
    controls = store.controls(challenge_id)
    entries = store.queue_head(challenge_id, limit=limit) if limit > 0 else []
    status = context.status_store()
    rows = []
    for position, entry in enumerate(entries, start=1):
        record = status.get(entry.run_id)
        rows.append(entry_row(position, entry, record.wait_reason if record else None, now))
    return {
        "environment": context.config.environment,
        "challengeId": challenge_id,
        "running": pool.used,
        "waiting": pool.waiting,
        "cap": pool.cap,
        "paused": controls.paused,
        "pausedBy": controls.paused_by,
        "pausedAt": controls.paused_at,
        "pauseReason": controls.pause_reason,
        "queue": rows,
    }


def run(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise OperatorError("--limit needs a number of runs, 0 or more")
    context = OperatorContext.from_args(args)
    context.warn_unknown_challenge(args.challenge_id)
    document = queue_document(context, args.challenge_id, args.limit, time.time())
    context.emit(document, lambda: _print(context, document))
    return EXIT_OK


def _print(context: OperatorContext, document: dict[str, Any]) -> None:
    cap = "not yet applied" if document["cap"] is None else document["cap"]
    context.say(
        f"challenge {document['challengeId']}: running {document['running']}, waiting {document['waiting']}, cap {cap}"
    )
    if document["paused"]:
        context.say(
            f"PAUSED by {document['pausedBy']} at {document['pausedAt']}: {document['pauseReason']} "
            f"(nothing is admitted; `mm-processor resume {document['challengeId']}` admits again)"
        )
    if not document["queue"]:
        context.say("no run waiting")
        return
    table = table_for(context.console, f"the first {len(document['queue'])} of {document['waiting']} waiting")
    for column in ("#", "run", "phase", "member", "rerun", "waited", "wait reason"):
        table.add_column(column, overflow="fold")
    for row in document["queue"]:
        table.add_row(
            str(row["position"]),
            row["runId"],
            row["phase"],
            str(row["memberId"]),
            "yes" if row["rerun"] else "",
            waited(row["waitedSeconds"]),
            escape(row["waitReason"] or ""),
        )
    context.console.print(table)
