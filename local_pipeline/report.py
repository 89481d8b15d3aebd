"""The run report: JSON for machines (`--report FILE`) and a terminal summary for people."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from local_pipeline.fargate import ALL_CHALLENGES
from local_pipeline.outcome import RunOutcome
from local_pipeline.tracker import PENDING, REPORT_FINAL_STATES, SCORED, RunResult

STAGES = ("route", "launch", "run", "report", "endToEnd")
_STATE_STYLE = {
    "scored": "green",
    "failed-reported": "yellow",
    "timed-out": "yellow",
    "cancelled": "cyan",
    "skipped": "cyan",
    "rejected": "magenta",
    "dead-lettered": "red",
    "report-rejected": "red",
    PENDING: "bold red",
}
_DETAIL_LIMIT = 40  # above this many records the table lists only the interesting ones


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _stat(values: list[float]) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 4)

    return {
        "count": len(values),
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "max": r(max(values) if values else None),
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def state_counts(outcome: RunOutcome) -> dict[str, int]:
    counts = dict.fromkeys(REPORT_FINAL_STATES, 0)
    for record in outcome.records:
        counts[record.state] = counts.get(record.state, 0) + 1
    return {k: v for k, v in counts.items() if v or k in REPORT_FINAL_STATES}


def stage_timings(outcome: RunOutcome) -> dict[str, dict[str, Any]]:
    return {stage: _stat([r.timings[stage] for r in outcome.records if stage in r.timings]) for stage in STAGES}


def function_calls(outcome: RunOutcome) -> dict[str, dict[str, int]]:
    """AWS calls made by the functions themselves (by function name, then service)."""
    return {name: dict(outcome.aws_calls.get(key, {})) for name, key in outcome.function_keys.items()}


def calls_per_submission(outcome: RunOutcome) -> dict[str, float]:
    totals: dict[str, int] = {}
    for services in function_calls(outcome).values():
        for service, count in services.items():
            totals[service] = totals.get(service, 0) + count
    n = max(1, outcome.routed_submissions)
    return {service: round(count / n, 2) for service, count in sorted(totals.items())}


def run_counts(outcome: RunOutcome) -> dict[str, Any]:
    """Runs (submission, phase) by phase and final state; a duplicate record adds no run."""
    by_phase: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    for record in outcome.records:
        for run in record.runs:
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            states = by_phase.setdefault(run.phase, {})
            states[run.state] = states.get(run.state, 0) + 1
    return {"total": len(seen), "byPhase": {phase: by_phase[phase] for phase in sorted(by_phase)}}


def summation_counts(outcome: RunOutcome) -> dict[str, Any]:
    """The stand-in's review-api-v6 summations: how many, by phase and testStatus, and any run with two."""
    from local_pipeline.results import summation_run_id

    by_phase: dict[str, dict[str, int]] = {}
    per_run: dict[str, int] = {}
    for summation in outcome.summations:
        key = summation_run_id(summation) or "?"
        per_run[key] = per_run.get(key, 0) + 1
        phase = key.rpartition("#")[2] or "?"
        metadata = summation.get("metadata")
        status = str(metadata.get("testStatus") or "?") if isinstance(metadata, dict) else "?"
        statuses = by_phase.setdefault(phase, {})
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "count": len(outcome.summations),
        "byPhase": {phase: by_phase[phase] for phase in sorted(by_phase)},
        "calls": dict(sorted(outcome.summation_calls.items())),
        "runsWithMoreThanOne": sorted(key for key, count in per_run.items() if count > 1),
    }


def _unique_runs(outcome: RunOutcome) -> list[RunResult]:
    seen: dict[str, RunResult] = {}
    for record in outcome.records:
        for run in record.runs:
            seen.setdefault(run.run_id, run)
    return list(seen.values())


def capacity_figures(outcome: RunOutcome) -> dict[str, Any]:
    """Per challenge (and the environment): the cap, the most tasks running at once, how many runs waited for a
    slot and how long (admission - enqueue, whole seconds); and any cap exceeded or slot still held at the end."""
    runs = _unique_runs(outcome)
    keys = sorted({*outcome.caps, *outcome.running_most} - {ALL_CHALLENGES})

    def waits(selected: list[RunResult]) -> dict[str, Any]:
        waited = [float(r.waited_seconds) for r in selected if r.waited_seconds is not None]
        return {"runsAdmitted": len(waited), "runsThatWaited": sum(1 for w in waited if w > 0), **_stat(waited)}

    return {
        "environment": {
            "cap": outcome.caps.get(ALL_CHALLENGES),
            "maxRunning": outcome.running_most.get(ALL_CHALLENGES, 0),
            "waitSeconds": waits(runs),
        },
        "challenges": {
            key: {
                "cap": outcome.caps.get(key),
                "maxRunning": outcome.running_most.get(key, 0),
                "waitSeconds": waits([r for r in runs if r.challenge_id == key]),
            }
            for key in keys
        },
        "capViolations": outcome.cap_violations,
        "slotsHeldAtEnd": outcome.slots_held_at_end,
    }


def throughput(outcome: RunOutcome) -> float:
    seconds = max(1e-6, outcome.finished_at - outcome.feeding_started_at)
    return round(len(outcome.records) / seconds, 2)


def to_report(outcome: RunOutcome) -> dict[str, Any]:
    unaccounted = outcome.unaccounted
    return {
        "environment": outcome.environment,
        "ok": outcome.ok,
        "startedAt": _iso(outcome.started_at),
        "finishedAt": _iso(outcome.finished_at),
        "startupSeconds": round(outcome.feeding_started_at - outcome.started_at, 3),
        "runSeconds": round(outcome.finished_at - outcome.feeding_started_at, 3),
        "deadlineHit": outcome.deadline_hit,
        "stalled": outcome.stalled,
        "busyAtStall": outcome.busy_at_stall,
        "limits": {
            "hardCapSeconds": round(outcome.deadline_seconds, 1),
            "stallSeconds": round(outcome.stall_seconds, 1),
            "settleSeconds": round(outcome.settle_seconds, 1),
        },
        "totals": {
            "records": len(outcome.records),
            "byState": state_counts(outcome),
            "unaccounted": len(unaccounted),
            "submissionsRouted": outcome.routed_submissions,
            "tasksStarted": outcome.tasks_started,
            "runTaskCalls": outcome.run_task_calls,
            "runs": run_counts(outcome),
            "v6Summations": summation_counts(outcome),
            "recordsPerSecond": throughput(outcome),
        },
        "unaccounted": [
            {"position": r.position, "submissionId": r.submission_id, "reason": r.reason} for r in unaccounted
        ],
        "violations": outcome.violations,
        "apiViolations": outcome.api_violations,
        "secretLeaks": outcome.secret_leaks,
        "eventErrors": outcome.event_errors,
        "lostStoppedEvents": outcome.lost_stopped_events,
        "reconcileInvocations": outcome.async_invocations,
        "timings": stage_timings(outcome),
        "capacity": capacity_figures(outcome),
        "kafka": {
            "invocations": outcome.feed.invocations,
            "functionErrors": outcome.feed.function_errors,
            "partialFailures": outcome.feed.partial_failures,
            "retries": outcome.feed.retries,
            "bisections": outcome.feed.bisections,
            "onFailureBatches": outcome.feed.on_failure_batches,
        },
        "deadLetters": {"byChallenge": outcome.dead_letter_counts, "completionDlq": outcome.completion_dlq_count},
        "awsCalls": {
            "byFunction": function_calls(outcome),
            "perRoutedSubmission": calls_per_submission(outcome),
            "byCaller": outcome.aws_calls,
        },
        "functions": [
            {
                "name": w.name,
                "invocations": w.invocations,
                "errors": w.errors,
                "coldStarts": w.cold_starts,
                "initMs": [round(v, 1) for v in w.init_ms],
                "durationMs": _stat(w.durations_ms),
            }
            for w in outcome.workers
        ],
        "localDeviations": outcome.deviations.to_dict(),
        "logs": str(outcome.log_dir),
        "records": [r.to_dict() for r in outcome.records],
    }


def write_report(outcome: RunOutcome, path: Path) -> dict[str, Any]:
    report = to_report(outcome)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _short(value: str | None, keep: int = 8) -> str:
    if not value:
        return "-"
    return value if len(value) <= keep else value[:keep] + "…"


def _print_capacity(outcome: RunOutcome, console: Console) -> None:
    """Each challenge's most tasks at once against its cap, and how long runs waited for a slot."""
    figures = capacity_figures(outcome)
    table = Table(title="capacity: most tasks running at once vs cap; waits for a slot (s)")
    for column in ("challenge", "max running", "cap", "admitted", "waited", "wait p50", "wait p95", "wait max"):
        table.add_column(column, justify="left" if column == "challenge" else "right")
    rows = [*figures["challenges"].items(), ("environment", figures["environment"])]
    for name, row in rows:
        wait = row["waitSeconds"]
        over = row["cap"] is not None and row["maxRunning"] > row["cap"]
        table.add_row(
            name,
            f"[bold red]{row['maxRunning']}[/bold red]" if over else str(row["maxRunning"]),
            "-" if row["cap"] is None else str(row["cap"]),
            str(wait["runsAdmitted"]),
            str(wait["runsThatWaited"]),
            *("-" if wait[k] is None else f"{wait[k]:g}" for k in ("p50", "p95", "max")),
        )
    console.print(table)


def _print_records(outcome: RunOutcome, console: Console) -> None:
    """Every record (above `_DETAIL_LIMIT` records, only those not scored) with its state and reason."""
    records = outcome.records
    shown = records if len(records) <= _DETAIL_LIMIT else [r for r in records if r.state != SCORED]
    table = Table(title=f"mm-processor local run: {outcome.environment}")
    # Fixed columns keep their width (the full submission id is what `mm-processor status` takes);
    # the reason takes what is left and is cut with an ellipsis.
    table.add_column("#", justify="right", no_wrap=True, min_width=3)
    table.add_column("submission", no_wrap=True, min_width=36)
    table.add_column("state", no_wrap=True, min_width=15)
    table.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=max(30, console.width - 80))
    table.add_column("reports", justify="right", no_wrap=True, min_width=7)  # v5 reviews or v6 summations
    for r in shown:
        table.add_row(
            str(r.position), _short(r.submission_id, keep=36), _styled(r.state), r.reason, str(len(r.reviews))
        )
    console.print(table)
    if len(shown) < len(records):
        console.print(f"({len(records) - len(shown)} scored records not listed; see the JSON report)")


def _styled(state: str) -> str:
    style = _STATE_STYLE.get(state, "")
    return f"[{style}]{state}[/{style}]" if style else state


def _print_counts(outcome: RunOutcome, console: Console) -> dict[str, Any]:
    """Records per final state, then runs per phase and state; returns the run counts."""
    counts = Table(title="records per final state")
    counts.add_column("state")
    counts.add_column("records", justify="right")
    for state, count in state_counts(outcome).items():
        counts.add_row(_styled(state), str(count))
    console.print(counts)
    runs = run_counts(outcome)
    if runs["total"]:
        by_phase = Table(title="runs (submission, phase) per final state")
        by_phase.add_column("phase")
        by_phase.add_column("runs", justify="right")
        by_phase.add_column("states")
        for phase, states in runs["byPhase"].items():
            summary = ", ".join(f"{state} {count}" for state, count in sorted(states.items()))
            by_phase.add_row(phase, str(sum(states.values())), summary)
        console.print(by_phase)
    return runs


def _print_summations(outcome: RunOutcome, console: Console) -> None:
    summations = summation_counts(outcome)
    if not (summations["count"] or summations["calls"]):
        return
    statuses = "; ".join(
        f"{phase}: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
        for phase, counts in summations["byPhase"].items()
    )
    calls = ", ".join(f"{method} {n}" for method, n in summations["calls"].items())
    twice = summations["runsWithMoreThanOne"]
    console.print(
        f"review-api-v6 summations: {summations['count']} ({statuses or 'none'}); calls: {calls or 'none'}; "
        + (f"[bold red]runs with more than one: {', '.join(twice)}[/bold red]" if twice else "one per run")
    )


def _print_problems(outcome: RunOutcome, console: Console) -> None:
    """Violations (exactly-once, caps, secrets, events, slots held, the API contract) and unaccounted records."""
    held = ", ".join(f"{pool} {used}" for pool, used in outcome.slots_held_at_end.items())
    problems = outcome.violations + outcome.cap_violations + outcome.secret_leaks + outcome.event_errors
    for problem in problems + ([f"capacity slots still held at the end: {held}"] if held else []):
        console.print(f"[bold red]violation:[/bold red] {problem}")
    for api in outcome.api_violations:
        console.print(f"[bold red]API contract violation:[/bold red] {api['method']} {api['path']}: {api['errors']}")
    unaccounted = outcome.unaccounted
    if not unaccounted:
        return
    why = (
        f"the hard cap ({outcome.deadline_seconds:.0f}s) passed"
        if outcome.deadline_hit
        else f"no record changed state for {outcome.stall_seconds:.0f}s"
        if outcome.stalled
        else "the run ended"
    )
    console.print(f"[bold red]{len(unaccounted)} record(s) unaccounted when {why}:[/bold red]")
    for r in unaccounted:
        console.print(f"  record {r.position} (submission {r.submission_id or '-'}): {r.reason}")


def print_summary(outcome: RunOutcome, console: Console, report_path: Path | None = None) -> None:
    records = outcome.records
    _print_records(outcome, console)
    runs = _print_counts(outcome, console)
    _print_summations(outcome, console)
    _print_capacity(outcome, console)
    end_to_end = stage_timings(outcome)["endToEnd"]
    console.print(
        f"{len(records)} records in {outcome.finished_at - outcome.feeding_started_at:.1f}s "
        f"({throughput(outcome)} records/s; startup {outcome.feeding_started_at - outcome.started_at:.1f}s); "
        f"end to end p50 {end_to_end['p50']}s p95 {end_to_end['p95']}s; "
        f"{outcome.tasks_started} tasks for {runs['total']} runs of {outcome.routed_submissions} routed submissions"
    )
    _print_problems(outcome, console)
    console.print(f"logs: {outcome.log_dir}" + (f"; report: {report_path}" if report_path else ""))
    if not outcome.unaccounted and not outcome.quiescent:
        console.print(
            "[bold red]every record is final, but the pipeline never went quiet[/bold red] (a queue, a task or an "
            "API request still busy when the run stopped): a late duplicate could have been missed"
            + (f"; still busy: {outcome.busy_at_stall}" if outcome.busy_at_stall else "")
        )
    verdict = "[bold green]OK[/bold green]" if outcome.ok else "[bold red]NOT OK[/bold red]"
    console.print(
        f"{verdict}: every record in exactly one final state, no run with two tasks or reports"
        if outcome.ok
        else f"{verdict}"
    )
