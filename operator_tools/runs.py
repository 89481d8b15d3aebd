"""`mm-processor runs CHALLENGE_ID [--state S ...] [--phase P] [--limit N]`: a challenge's runs by state.

Counts per state first (every run of the challenge, whatever the filters), then the runs the filters keep, newest
first: run id, member, state, report, reason, updated. Reads the status table's `byChallenge` index
(`StatusStore.runs_of_challenge`, decision 108), then each run's item consistently. Exit status: 0 (also for a
challenge without runs: an answer, not an error), 2 could not read.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import ScoringPhase
from operator_tools.console import escape, table_for
from operator_tools.context import EXIT_OK, OperatorContext, add_environment_options, challenge_id_argument

DEFAULT_LIMIT = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("challenge_id", type=challenge_id_argument, help="the challenge id")
    parser.add_argument(
        "--state",
        action="append",
        type=SubmissionState,
        choices=list(SubmissionState),
        metavar="STATE",
        help="only runs in this state (repeatable): " + ", ".join(state.value for state in SubmissionState),
    )
    parser.add_argument(
        "--phase", type=ScoringPhase, choices=list(ScoringPhase), metavar="PHASE", help="only runs of this phase"
    )
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="show at most N runs, newest first (default %(default)s)"
    )
    add_environment_options(parser)


def select(
    records: list[LifecycleRecord],
    states: list[SubmissionState] | None,
    phase: ScoringPhase | None,
    limit: int,
) -> list[LifecycleRecord]:
    """The runs the filters keep, newest (last updated) first, at most `limit`."""
    kept = [
        record
        for record in records
        if (not states or record.state in states) and (phase is None or record.phase is phase)
    ]
    kept.sort(key=lambda record: record.updated_at, reverse=True)
    return kept[: max(limit, 0)]


def state_counts(records: list[LifecycleRecord]) -> dict[str, int]:
    counts = Counter(record.state.value for record in records)
    return {state.value: counts[state.value] for state in SubmissionState if counts[state.value]}


def row_of(record: LifecycleRecord) -> dict[str, Any]:
    return {
        "runId": record.run_id,
        "phase": record.phase.value,
        "memberId": record.member_id,
        "state": record.state.value,
        "report": record.report_status.value if record.report_status else None,
        "reason": record.reason,
        "updatedAt": record.updated_at.isoformat(),
    }


def run(args: argparse.Namespace) -> int:
    context = OperatorContext.from_args(args)
    context.warn_unknown_challenge(args.challenge_id)
    records = context.status_store().runs_of_challenge(args.challenge_id)
    shown = select(records, args.state, args.phase, args.limit)
    document = {
        "environment": context.config.environment,
        "challengeId": args.challenge_id,
        "total": len(records),
        "counts": state_counts(records),
        "runs": [row_of(record) for record in shown],
    }
    context.emit(document, lambda: _print(context, document, len(shown)))
    return EXIT_OK


def _print(context: OperatorContext, document: dict[str, Any], shown: int) -> None:
    total = document["total"]
    if not total:
        context.say(f"no runs of challenge {document['challengeId']} in {context.names.status_table}")
        return
    counts = ", ".join(f"{state} {count}" for state, count in document["counts"].items())
    context.say(f"challenge {document['challengeId']}: {total} run(s): {counts}")
    table = table_for(context.console, f"{shown} of {total} run(s), newest first")
    for column in ("run", "member", "state", "report", "reason", "updated"):
        table.add_column(column, overflow="fold")
    for row in document["runs"]:
        table.add_row(
            row["runId"],
            str(row["memberId"] or "-"),
            row["state"],
            row["report"] or "-",
            escape(row["reason"] or ""),
            row["updatedAt"],
        )
    context.console.print(table)
