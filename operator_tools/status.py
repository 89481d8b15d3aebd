"""`mm-processor status SUBMISSION_ID|RUN_ID`: where is submission X (each of its runs), and why did it fail.

Reads the run table (the environment's `mm-<env>-runs` of `--env`/`$MM_ENV`, or `--table`) and, for a WAITING or
ADMITTED run, the capacity table beside it (decision 098); prints each run's record, history and the operator's next
step (`status_hints.py`), or `--json`. The AWS session takes `--profile`, `--region`, `--endpoint-url`; with
`--table` and no `--env` no environment is loaded and the session's own region applies.
Exit status: 0 found, 1 no record (with where to look upstream), 2 could not read (unknown environment,
credentials, a missing table).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mm_contracts.models.phase import RUN_ID_SEPARATOR
from operator_tools.clients import AwsClients, ClientSource
from operator_tools.console import Output, make_console, table_for
from operator_tools.context import OperatorContext, OperatorError, add_environment_options
from operator_tools.status_hints import capacity_table_beside, environment_of, next_step, not_found_hints

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_COULD_NOT_READ = 2


def add_arguments(status: argparse.ArgumentParser) -> None:
    status.add_argument("submission_id", help="a submission id (every run of it) or one run id <submissionId>#<PHASE>")
    add_environment_options(status)
    status.add_argument("--table", help="status table name (default: the environment's, mm-<env>-runs)")
    status.add_argument(
        "--capacity-table",
        help="capacity table name (default: the environment's; mm-<env>-capacity beside a --table mm-<env>-runs), "
        "for a waiting run's place in its challenge's queue and the challenge's running/waiting counts and caps",
    )


@dataclass(frozen=True)
class Tables:
    """The run table to read, and the capacity table beside it (None: not known)."""

    status: str
    capacity: str | None


def run(args: argparse.Namespace, console: Output | None = None) -> int:
    return status_command(args, console)


def status_command(args: argparse.Namespace, console: Output | None = None) -> int:
    from mm_adapters.status_store import StatusStore

    console = console or make_console()
    try:
        tables, clients = _tables_and_clients(args, console)
    except OperatorError as error:
        console.print(f"[red]error:[/red] {error}")
        return EXIT_COULD_NOT_READ
    dynamodb = clients.client("dynamodb")
    try:
        records = runs_of(StatusStore(tables.status, dynamodb_client=dynamodb), args.submission_id)
    except Exception as error:  # credentials, network, missing table: say which, briefly
        console.print(f"[red]error:[/red] could not read {tables.status}: {type(error).__name__}: {error}")
        return EXIT_COULD_NOT_READ
    environment = environment_of(tables.status)
    capacity = capacity_of(records, tables.status, tables.capacity, console, dynamodb)
    if not records:
        console.print(f"no lifecycle record for submission {args.submission_id} in {tables.status}")
        for line in not_found_hints(args.submission_id.partition(RUN_ID_SEPARATOR)[0], environment):
            console.print(line, markup=False, highlight=False)
        return EXIT_NOT_FOUND
    if args.json:
        _print_json(records, capacity, console)
    else:
        _print_runs(records, environment, capacity, console)
    return EXIT_OK


def _tables_and_clients(args: argparse.Namespace, console: Output) -> tuple[Tables, ClientSource]:
    """`--table` (and `--capacity-table`) without `--env`: those tables, in the session's region (`--region`, else
    the profile's or AWS_REGION), no environment config loaded (a stale $MM_ENV cannot stop the read). Otherwise
    the tables of the environment (`--env`, default `$MM_ENV`), in its region unless `--region` says otherwise."""
    capacity_table = getattr(args, "capacity_table", None)
    if args.table and not getattr(args, "env", None):
        clients = AwsClients(
            profile=getattr(args, "profile", None),
            region=getattr(args, "region", None),
            endpoint_url=getattr(args, "endpoint_url", None),
        )
        return Tables(args.table, capacity_table or capacity_table_beside(args.table)), clients
    context = OperatorContext.from_args(args, console)
    if args.table:
        return Tables(args.table, capacity_table or capacity_table_beside(args.table)), context.clients
    return Tables(context.names.status_table, capacity_table or context.names.capacity_table), context.clients


def _print_json(records: list[Any], capacity: dict[str, CapacityView], console: Output) -> None:
    runs = [json.loads(record.to_json()) for record in records]
    document: dict[str, Any] = {"submissionId": records[0].submission_id, "runs": runs}
    if capacity:
        document["capacity"] = {run_id: view.to_dict() for run_id, view in capacity.items()}
    console.print_json(json.dumps(document))


def _print_runs(records: list[Any], environment: str, capacity: dict[str, CapacityView], console: Output) -> None:
    overview = table_for(console, f"submission {records[0].submission_id}: {len(records)} run(s)")
    for column in ("run", "phase", "state", "report", "reason"):
        overview.add_column(column, overflow="fold")
    for record in records:
        report = record.report_status.value if record.report_status else "-"
        overview.add_row(record.run_id, record.phase.value, record.state.value, report, record.reason or "")
    console.print(overview)
    for record in records:
        print_run(record, environment, console, capacity.get(record.run_id))


@dataclass(frozen=True)
class CapacityView:
    """A waiting run's place in its challenge's queue, and the counts and caps it waits on (decision 098)."""

    challenge_id: str
    position: int | None  # 1-based place in the challenge's queue (WAITING runs only)
    challenge_running: int
    challenge_waiting: int
    challenge_cap: int | None  # the cap the dispatcher last applied (None: it has not looked yet)
    environment_running: int
    environment_cap: int | None
    phase_running: int | None = None  # the run's phase pool, when the challenge caps its phase
    phase_cap: int | None = None

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "challengeId": self.challenge_id,
            "queuePosition": self.position,
            "challenge": {
                "running": self.challenge_running,
                "waiting": self.challenge_waiting,
                "cap": self.challenge_cap,
            },
            "environment": {"running": self.environment_running, "cap": self.environment_cap},
        }
        if self.phase_running is not None:
            document["phase"] = {"running": self.phase_running, "cap": self.phase_cap}
        return document

    def rows(self) -> list[tuple[str, str]]:
        def cap(value: int | None) -> str:
            return "not yet applied" if value is None else str(value)

        rows = []
        if self.position is not None:
            rows.append(("queue position", f"{self.position} of {self.challenge_waiting} waiting in its challenge"))
        rows.append(
            (
                "challenge capacity",
                f"running {self.challenge_running}, waiting {self.challenge_waiting}, cap {cap(self.challenge_cap)}",
            )
        )
        if self.phase_running is not None:
            rows.append(("phase capacity", f"running {self.phase_running}, cap {cap(self.phase_cap)}"))
        rows.append(("environment capacity", f"running {self.environment_running}, cap {cap(self.environment_cap)}"))
        return rows


def capacity_of(
    records: list[Any], status_table: str, capacity_table: str | None, console: Output, dynamodb: Any = None
) -> dict[str, CapacityView]:
    """For each WAITING or ADMITTED run: where it stands in the capacity table. A capacity table that cannot be
    read never fails the command (the lifecycle above is the answer); it is said once."""
    from mm_contracts.models.lifecycle import SubmissionState

    waiting = [r for r in records if r.state in (SubmissionState.WAITING, SubmissionState.ADMITTED)]
    if not waiting:
        return {}
    if capacity_table is None:
        console.print("(capacity not shown: pass --capacity-table for a waiting run's place in its queue)")
        return {}
    try:
        return _capacity_views(waiting, status_table, capacity_table, dynamodb)
    except Exception as error:  # credentials, a missing table (an environment before capacity): say so, go on
        console.print(f"(capacity not shown: could not read {capacity_table}: {type(error).__name__}: {error})")
        return {}


def _capacity_views(
    waiting: list[Any], status_table: str, capacity_table: str, dynamodb: Any
) -> dict[str, CapacityView]:
    from mm_capacity.store import CapacityStore
    from mm_contracts.models.lifecycle import SubmissionState

    store = CapacityStore(capacity_table, status_table, dynamodb_client=dynamodb)
    snapshot = store.pools()
    views = {}
    for record in waiting:
        pool = snapshot.challenge(record.challenge_id)
        phase_pool = snapshot.phases.get((record.challenge_id, record.phase))
        position = (
            store.queue_position(record.challenge_id, record.wait_order)
            if record.state is SubmissionState.WAITING and record.wait_order
            else None
        )
        views[record.run_id] = CapacityView(
            challenge_id=record.challenge_id,
            position=position,
            challenge_running=pool.used,
            challenge_waiting=pool.waiting,
            challenge_cap=pool.cap,
            environment_running=snapshot.env.used,
            environment_cap=snapshot.env.cap,
            phase_running=phase_pool.used if phase_pool is not None else None,
            phase_cap=phase_pool.cap if phase_pool is not None else None,
        )
    return views


def runs_of(store: Any, wanted: str) -> list[Any]:
    """The runs `wanted` names: one run id (`<submissionId>#<PHASE>`), or every run of a submission."""
    from mm_contracts.models.phase import RunKey

    if RUN_ID_SEPARATOR in wanted:
        try:
            RunKey.parse(wanted)
        except ValueError:
            return []
        record = store.get(wanted)
        return [record] if record is not None else []
    runs = list(store.get_runs(wanted))
    return sorted(runs, key=lambda record: record.phase.priority)


def _run_fields(record: Any) -> list[tuple[str, Any]]:
    return [
        ("state", record.state.value),
        ("phase", record.phase.value),
        ("platform", record.platform.value),
        ("challenge", record.challenge_id),
        ("reason", record.reason),
        ("task ARN", record.task_arn),
        ("exit code", record.exit_code),
        ("stop code", record.stop_code),
        ("report", record.report_status.value if record.report_status else None),
        ("API response", record.report_response),
        ("launch attempts", record.launch_attempt),
        ("correlation id", record.correlation_id),
        ("wait reason", record.wait_reason),
        *_capacity_times(record),
        ("created", record.created_at.isoformat()),
        ("updated", record.updated_at.isoformat()),
    ]


def print_run(record: Any, environment: str, console: Output, capacity: CapacityView | None = None) -> None:
    """One run: its fields (and capacity), its history, and the operator's next step if it needs one."""
    details = table_for(console, f"run {record.run_id} ({record.phase.value})", show_header=False)
    details.add_column("field", style="bold")
    details.add_column("value", overflow="fold")
    for label, value in _run_fields(record):
        if value not in (None, ""):
            details.add_row(label, str(value))
    for label, text in capacity.rows() if capacity is not None else []:
        details.add_row(label, text)
    console.print(details)
    history = table_for(console, f"history of {record.run_id}")
    history.add_column("at")
    history.add_column("state")
    history.add_column("detail", overflow="fold")
    for event in record.history:
        history.add_row(event.at.isoformat(), event.state, event.detail)
    console.print(history)
    hint = next_step(record, environment)
    if hint:
        console.print(f"next step ({record.phase.value}): {hint}", markup=False, highlight=False)


def _capacity_times(record: Any) -> list[tuple[str, Any]]:
    """When the run entered capacity and when its slot was reserved. Every run that enters capacity gets
    `enqueued_at`, a direct launch too (in the second it is admitted), so only a WAITING run is "waiting since" it;
    an admitted run says how long it waited, which is 0 s for a direct launch."""
    entered = "waiting since" if record.state.value == "WAITING" else "entered capacity"
    admitted = _epoch_iso(record.admitted_at)
    if admitted is not None and record.enqueued_at is not None:
        admitted = f"{admitted} (after {max(record.admitted_at - record.enqueued_at, 0)} s waiting)"
    return [(entered, _epoch_iso(record.enqueued_at)), ("admitted", admitted)]


def _epoch_iso(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC).isoformat()
