"""`mm-processor dispatch-system`: after the match, one SYSTEM run of every member's latest submission (decision 109).

    mm-processor dispatch-system CHALLENGE_ID --reason TEXT [--yes] [--dry-run] [--rerun-final] [--wait SECONDS]
    mm-processor dispatch-system CHALLENGE_ID --summary            (an earlier dispatch's progress; changes nothing)

The latest submission of each member comes from the run table (`StatusStore.latest_submissions`, the `byChallenge`
index): the runs the pipeline made when the submissions arrived. Each gets a SYSTEM run, created WAITING with the
priority class SYSTEM (never RERUN) through `CapacityStore.queue_rerun` with the operator's audit entry, under the
challenge's caps and pacing; a member's SYSTEM run that exists already is left (in progress, or final unless
`--rerun-final`), so the command may be repeated safely. One dispatch trigger then starts a sweep that admits them.

The summary (after a dispatch, with `--wait` until every run is final and reported or the time is up, or alone with
`--summary`): members, SYSTEM runs dispatched, by state (waiting, launched, final, dead-lettered), and their reports
(reported, pending, rejected). Exit status: 0 done (and, with --wait, complete); 1 a run refused, or --wait ran out
before every run was final and reported; 2 could not run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from operator_tools.context import (
    EXIT_FAILED,
    EXIT_OK,
    ChangeGate,
    OperatorContext,
    OperatorError,
    add_change_options,
    add_environment_options,
    challenge_id_argument,
    run_guarded,
)
from operator_tools.dispatch import trigger_dispatch
from operator_tools.rerun import (
    RunTarget,
    apply,
    latest_submission_choice,
    latest_submission_runs,
    target_for,
    was_queued,
)

if TYPE_CHECKING:
    from mm_contracts.models.challenge import ChallengeConfig

ACTION = "dispatch-system"
SYSTEM = ScoringPhase.SYSTEM
POLL_SECONDS = 10.0
_WAITING = frozenset({SubmissionState.WAITING, SubmissionState.ADMITTED})
_LAUNCHED = frozenset({SubmissionState.LAUNCHING, SubmissionState.LAUNCHED, SubmissionState.LAUNCH_FAILED})
_REPORTED = frozenset({ReportStatus.REPORTED, ReportStatus.NOT_REQUIRED})


@dataclass
class SystemSummary:
    """Where the SYSTEM runs of a challenge's latest submissions are."""

    challenge_id: str
    members: int = 0
    dispatched: int = 0  # latest submissions with a SYSTEM run
    not_dispatched: int = 0
    waiting: int = 0
    launched: int = 0
    final: int = 0
    dead_lettered: int = 0
    reported: int = 0
    pending: int = 0  # final, report not sent yet
    rejected: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)  # final state -> count

    @property
    def complete(self) -> bool:
        """Every member's latest submission has a SYSTEM run, final, its report sent (or rejected)."""
        return self.not_dispatched == 0 and self.final == self.dispatched and self.pending == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}

    def lines(self) -> list[str]:
        outcomes = ", ".join(f"{state.lower()} {n}" for state, n in sorted(self.by_outcome.items())) or "none"
        return [
            f"SYSTEM runs of challenge {self.challenge_id}: {self.dispatched} of {self.members} members' latest "
            f"submissions dispatched ({self.not_dispatched} not)",
            f"  waiting {self.waiting}, launched {self.launched}, final {self.final} ({outcomes}), "
            f"dead-lettered {self.dead_lettered}",
            f"  reports: reported {self.reported}, pending {self.pending}, rejected {self.rejected}",
            "  complete: every run final and reported" if self.complete else "  not complete yet",
        ]


def system_run(runs: list[LifecycleRecord]) -> LifecycleRecord | None:
    return next((run for run in runs if run.phase is SYSTEM), None)


def _count(summary: SystemSummary, record: LifecycleRecord) -> None:
    summary.dispatched += 1
    if record.state in _WAITING:
        summary.waiting += 1
    elif record.state in _LAUNCHED:
        summary.launched += 1
    elif record.state is SubmissionState.DEAD_LETTERED:
        summary.dead_lettered += 1
    elif record.state in FINAL_STATES:
        summary.final += 1
        summary.by_outcome[record.state.value] = summary.by_outcome.get(record.state.value, 0) + 1
        if record.report_status in _REPORTED:
            summary.reported += 1
        elif record.report_status is ReportStatus.REJECTED:
            summary.rejected += 1
        else:
            summary.pending += 1


def summarize(challenge_id: str, grouped: dict[str, list[LifecycleRecord]]) -> SystemSummary:
    summary = SystemSummary(challenge_id, members=len(grouped))
    for runs in grouped.values():
        record = system_run(runs)
        if record is None:
            summary.not_dispatched += 1
        else:
            _count(summary, record)
    return summary


def read_summary(context: OperatorContext, challenge_id: str) -> SystemSummary:
    return summarize(challenge_id, latest_submission_runs(context.status_store().runs_of_challenge(challenge_id)))


@dataclass(frozen=True)
class DispatchPlan:
    targets: list[RunTarget]
    left: list[str]  # the SYSTEM runs left as they are, with why

    def lines(self) -> list[str]:
        return [*(t.plan_line() for t in self.targets), *self.left]


def plan_dispatch(
    grouped: dict[str, list[LifecycleRecord]], *, rerun_final: bool, left_out: list[str] | None = None
) -> DispatchPlan:
    """A SYSTEM target for each latest submission without one (or with a final one, with `rerun_final`);
    `left_out`: the plan lines of the skipped submissions the choice of the latest left out."""
    targets: list[RunTarget] = []
    left: list[str] = list(left_out or [])
    for runs in grouped.values():
        record = system_run(runs)
        if record is None or (rerun_final and record.state in FINAL_STATES):
            targets.append(target_for(runs, SYSTEM, rerun=False))
        elif record.state in FINAL_STATES:
            left.append(f"{record.run_id}: {record.state.value} -> left (final; --rerun-final to score it again)")
        else:
            left.append(f"{record.run_id}: {record.state.value} -> left (dispatched already, in progress)")
    return DispatchPlan(targets, left)


# ------------------------------------------------------------------ the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "challenge_id",
        type=challenge_id_argument,
        help="the challenge whose members' latest submissions get a SYSTEM run",
    )
    parser.add_argument(
        "--rerun-final", action="store_true", help="also score again a SYSTEM run that is final already"
    )
    parser.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS", help="poll until every run is final and reported"
    )
    parser.add_argument(
        "--summary", action="store_true", help="only the summary of an earlier dispatch (changes nothing)"
    )
    add_environment_options(parser)
    add_change_options(parser)


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: dispatch_system_command(args, OperatorContext.from_args(args)))


def _system_config(context: OperatorContext, challenge_id: str) -> ChallengeConfig:
    from mm_adapters.challenge_config import ChallengeConfigError

    try:
        config = context.config_loader().get(challenge_id)
    except ChallengeConfigError as error:
        raise OperatorError(f"cannot dispatch: {error}", EXIT_FAILED) from None
    if config.phase_config(SYSTEM) is None:
        raise OperatorError(f"challenge {challenge_id} has no SYSTEM phase in its config", EXIT_FAILED)
    return config


def system_run_ids(grouped: dict[str, list[LifecycleRecord]]) -> list[str]:
    """The SYSTEM run id of each latest submission (the runs a dispatch creates or leaves)."""
    return [run_id(submission_id, SYSTEM) for submission_id in grouped]


def with_system_runs(
    grouped: dict[str, list[LifecycleRecord]], found: dict[str, LifecycleRecord]
) -> dict[str, list[LifecycleRecord]]:
    """`grouped` with each submission's SYSTEM run replaced by the one read now (`found`, by run id)."""
    updated: dict[str, list[LifecycleRecord]] = {}
    for submission_id, runs in grouped.items():
        system = found.get(run_id(submission_id, SYSTEM))
        updated[submission_id] = [r for r in runs if r.phase is not SYSTEM] + ([system] if system else [])
    return updated


def poll_summary(
    context: OperatorContext, challenge_id: str, grouped: dict[str, list[LifecycleRecord]]
) -> SystemSummary:
    """The summary with the SYSTEM runs read again (one consistent BatchGetItem of those ids only); the
    members' latest submissions stay as the dispatch read them."""
    found = context.status_store().get_many(system_run_ids(grouped))
    return summarize(challenge_id, with_system_runs(grouped, found))


def wait_for(
    context: OperatorContext,
    challenge_id: str,
    grouped: dict[str, list[LifecycleRecord]],
    seconds: float,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> SystemSummary:
    """The summary, polled until complete or `seconds` are up: each poll reads only the SYSTEM runs of the
    latest submissions the dispatch read (`grouped`), never the whole challenge again."""
    deadline = clock() + seconds
    summary = poll_summary(context, challenge_id, grouped)
    while not summary.complete and clock() < deadline:
        sleep(min(POLL_SECONDS, max(deadline - clock(), 0.0)))
        summary = poll_summary(context, challenge_id, grouped)
    return summary


def _show_summary(context: OperatorContext, summary: SystemSummary, document: dict[str, Any]) -> None:
    def human() -> None:
        for line in summary.lines():
            context.say(line)

    context.emit({**document, "summary": summary.to_json()}, human)


def dispatch_system_command(
    args: argparse.Namespace,
    context: OperatorContext,
    gate: ChangeGate | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    challenge_id = args.challenge_id
    if args.summary:
        _show_summary(context, read_summary(context, challenge_id), {"challengeId": challenge_id})
        return EXIT_OK
    config = _system_config(context, challenge_id)
    grouped, left_out = latest_submission_choice(context.status_store().runs_of_challenge(challenge_id))
    if not grouped:
        raise OperatorError(f"no runs of challenge {challenge_id} in {context.names.status_table}", EXIT_FAILED)
    plan = plan_dispatch(grouped, rerun_final=args.rerun_final, left_out=left_out)
    change = (gate or ChangeGate.from_args(args, context)).approve(ACTION, plan.lines())
    if change is None:
        return EXIT_OK  # the gate said so (under --json: {"dryRun": true, "action", "plan"})
    results = apply(context, plan.targets, {challenge_id: config}, change)
    dispatch = trigger_dispatch(context, request_id=change.request_id) if any(map(was_queued, results)) else None
    for result in results:
        context.say(f"{result.target.run_id}: {result.detail}")
    if dispatch:
        context.say(dispatch)
    summary = (
        wait_for(context, challenge_id, grouped, args.wait, sleep=sleep, clock=clock)
        if args.wait > 0
        else poll_summary(context, challenge_id, grouped)
    )
    document = {
        "requestId": change.request_id,
        "challengeId": challenge_id,
        "runs": [r.to_json() for r in results],
        "left": plan.left,
        "dispatch": dispatch,
    }
    _show_summary(context, summary, document)
    refused = not all(map(was_queued, results))
    return EXIT_FAILED if refused or (args.wait > 0 and not summary.complete) else EXIT_OK


__all__ = [
    "DispatchPlan",
    "SystemSummary",
    "add_arguments",
    "dispatch_system_command",
    "latest_submission_runs",
    "plan_dispatch",
    "poll_summary",
    "read_summary",
    "run",
    "summarize",
]
