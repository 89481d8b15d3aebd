"""`mm-processor rerun`: score a submission's runs again, as new runs of the same items (decision 106).

    mm-processor rerun SUBMISSION_ID [--phase P|all] --reason TEXT [--yes] [--dry-run] [--env ENV] [--json]
    mm-processor rerun --challenge C --latest-per-member [--phase P|all] --reason TEXT ...

For each run: read it; the routed message of an existing run of the submission, with the phase set and
`rerun=True` (priority class RERUN: behind new work); the scorer type, timeout and priority rank from the
challenge's deployed config, as the challenge processor computes them; the plan confirmed (`ChangeGate`); then
`CapacityStore.queue_rerun` (once more when the run changed since it was read), and one dispatch trigger so the
sweeper admits the queued runs now. A run that is not final (waiting, launching, running, reporting) is refused,
never stopped: `stop` it first. `--phase all` (the default) reruns every run the submission has; a named phase the
submission has no run of is created (if the challenge has that phase).

Exit status: 0 every run queued or created; 1 none found, or a run refused or changed twice; 2 could not run.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
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

if TYPE_CHECKING:
    from mm_capacity.reruns import RerunResult
    from mm_contracts.models.audit import OperatorChange
    from mm_contracts.models.challenge import ChallengeConfig

ALL_PHASES = "all"
ACTION = "rerun"


@dataclass(frozen=True)
class RunTarget:
    """One run to queue: its (submission, phase), the run as read (None: the phase has no run yet) and the routed
    submission to queue it with."""

    key: RunKey
    record: LifecycleRecord | None
    submission: RoutedSubmission

    @property
    def run_id(self) -> str:
        return self.key.run_id

    def plan_line(self) -> str:
        if self.record is None:
            return f"{self.run_id}: no run yet -> created WAITING"
        state = self.record.state.value
        if self.record.state in FINAL_STATES:
            return f"{self.run_id}: {state} -> queued again (a new run of the same item)"
        return f"{self.run_id}: {state} -> refused (in progress)"


@dataclass(frozen=True)
class TargetResult:
    target: RunTarget
    outcome: str  # a RerunOutcome value, or "skipped"
    state: str | None  # the run's state after it
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"runId": self.target.run_id, "outcome": self.outcome, "state": self.state, "detail": self.detail}


def routed_of(runs: Iterable[LifecycleRecord]) -> RoutedSubmission | None:
    """The routed submission of an existing run (the message the router published), or None when none parses."""
    for run in runs:
        if run.routed_message:
            try:
                return RoutedSubmission.model_validate_json(run.routed_message)
            except ValueError:
                continue
    return None


def target_for(
    runs: list[LifecycleRecord], phase: ScoringPhase, *, rerun: bool, routed: RoutedSubmission | None = None
) -> RunTarget:
    """The target of (the runs' submission, phase): its run if it has one, its routed message with the phase set."""
    source = routed or routed_of(runs)
    if source is None:
        raise OperatorError(f"no readable routed message among the runs of {runs[0].submission_id}", EXIT_FAILED)
    submission = source.model_copy(update={"phase": phase, "rerun": rerun, "skip_reason": None})
    record = next((run for run in runs if run.phase is phase), None)
    return RunTarget(RunKey(source.submission_id, phase), record, submission)


def targets_of_submission(
    runs: list[LifecycleRecord], phase: ScoringPhase | None, config: ChallengeConfig, *, rerun: bool = True
) -> list[RunTarget]:
    """`phase` None (all): every run the submission has; else that phase (refused if the challenge has none)."""
    if phase is None:
        return [target_for(runs, run.phase, rerun=rerun) for run in runs]
    if config.phase_config(phase) is None:
        raise OperatorError(f"challenge {config.challenge_id} has no {phase.value} phase", EXIT_FAILED)
    return [target_for(runs, phase, rerun=rerun)]


def queue_target(
    context: OperatorContext, target: RunTarget, config: ChallengeConfig, change: OperatorChange
) -> RerunResult:
    """`queue_rerun` with the challenge config's scorer type, timeout and rank; read again and retried once when
    the run changed since it was read."""
    from mm_capacity.reruns import RerunOutcome

    phase = target.key.phase
    observed = target.record
    result: RerunResult | None = None
    for _ in range(2):
        result = context.capacity_store().queue_rerun(
            target.submission,
            phase=phase,
            scorer_type=config.scorer_type,
            timeout_seconds=config.phase_timeout(phase),
            priority_rank=config.capacity.rank(phase, rerun=target.submission.rerun),
            change=change,
            observed=observed,
        )
        if result.outcome is not RerunOutcome.CHANGED:
            return result
        observed = context.status_store().get(target.run_id)
    assert result is not None
    return result


def describe(result: RerunResult) -> tuple[str | None, str]:
    """(state now, a sentence) of a queue_rerun result."""
    from mm_capacity.reruns import RerunOutcome

    state = result.record.state.value if result.record is not None else None
    sentences = {
        RerunOutcome.QUEUED: "queued: a new run of the same item, WAITING for a slot",
        RerunOutcome.CREATED: "created WAITING for a slot",
        RerunOutcome.IN_PROGRESS: f"refused: in progress ({state}); stop it first, or wait until it is final",
        RerunOutcome.CHANGED: "refused: it changed twice while being queued; run the command again",
    }
    return state, sentences[result.outcome]


def apply(
    context: OperatorContext, targets: list[RunTarget], configs: dict[str, ChallengeConfig], change: OperatorChange
) -> list[TargetResult]:
    results: list[TargetResult] = []
    for target in targets:
        result = queue_target(context, target, configs[target.submission.challenge_id], change)
        state, detail = describe(result)
        results.append(TargetResult(target, result.outcome.value, state, detail))
    return results


def latest_submission_runs(runs: list[LifecycleRecord]) -> dict[str, list[LifecycleRecord]]:
    """submission id -> its runs, for each member's latest submission among `runs`."""
    return latest_submission_choice(runs)[0]


def latest_submission_choice(runs: list[LifecycleRecord]) -> tuple[dict[str, list[LifecycleRecord]], list[str]]:
    """(`latest_submission_runs`, a plan line for each submission left out of the choice because the pipeline
    skipped it: a skipped submission never stands for a member's latest, so it gets no run)."""
    from mm_adapters.status_store.challenge_index import latest_and_skipped

    chosen, skipped = latest_and_skipped(runs)
    latest = set(chosen.values())
    grouped: dict[str, list[LifecycleRecord]] = {submission_id: [] for submission_id in sorted(latest)}
    for record in runs:
        if record.submission_id in latest:
            grouped[record.submission_id].append(record)
    left_out = [f"submission {s}: skipped by the pipeline -> left out (not a member's latest)" for s in skipped]
    return grouped, left_out


def was_queued(result: TargetResult) -> bool:
    return result.outcome in ("queued", "created")


# ------------------------------------------------------------------ the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submission_id", nargs="?", help="the submission whose runs to score again")
    parser.add_argument(
        "--challenge",
        type=challenge_id_argument,
        help="with --latest-per-member: the challenge whose latest submissions to rerun",
    )
    parser.add_argument(
        "--latest-per-member",
        action="store_true",
        help="rerun the latest submission of every member of --challenge (from the run table)",
    )
    parser.add_argument(
        "--phase",
        default=ALL_PHASES,
        type=str.upper,
        choices=[*(p.value for p in ScoringPhase), ALL_PHASES.upper()],
        help="the phase to rerun (default: all, every run the submission has)",
    )
    add_environment_options(parser)
    add_change_options(parser)


def run(args: argparse.Namespace) -> int:
    return run_guarded(lambda: rerun_command(args, OperatorContext.from_args(args)))


def chosen_phase(args: argparse.Namespace) -> ScoringPhase | None:
    value = str(args.phase).upper()
    return None if value == ALL_PHASES.upper() else ScoringPhase(value)


def _config(context: OperatorContext, challenge_id: str, cache: dict[str, ChallengeConfig]) -> ChallengeConfig:
    from mm_adapters.challenge_config import ChallengeConfigError

    if challenge_id not in cache:
        try:
            cache[challenge_id] = context.config_loader().get(challenge_id)
        except ChallengeConfigError as error:
            raise OperatorError(f"cannot rerun: {error}", EXIT_FAILED) from None
    return cache[challenge_id]


def _submission_runs(
    context: OperatorContext, args: argparse.Namespace
) -> tuple[list[list[LifecycleRecord]], list[str]]:
    """The runs of each submission to rerun, grouped by submission, and the plan lines of the skipped submissions
    left out (with --latest-per-member)."""
    if args.latest_per_member:
        if not args.challenge or args.submission_id:
            raise OperatorError("--latest-per-member takes --challenge C and no submission id")
        grouped, left_out = latest_submission_choice(context.status_store().runs_of_challenge(args.challenge))
        if not grouped:
            raise OperatorError(f"no runs of challenge {args.challenge} in {context.names.status_table}", EXIT_FAILED)
        return list(grouped.values()), left_out
    if not args.submission_id or args.challenge:
        raise OperatorError("give a SUBMISSION_ID, or --challenge C --latest-per-member")
    runs = context.status_store().get_runs(args.submission_id)
    if not runs:
        raise OperatorError(f"no run of submission {args.submission_id} in {context.names.status_table}", EXIT_FAILED)
    return [runs], []


def rerun_command(args: argparse.Namespace, context: OperatorContext, gate: ChangeGate | None = None) -> int:
    phase = chosen_phase(args)
    configs: dict[str, ChallengeConfig] = {}
    targets: list[RunTarget] = []
    submissions, left_out = _submission_runs(context, args)
    for runs in submissions:
        config = _config(context, runs[0].challenge_id, configs)
        targets.extend(targets_of_submission(runs, phase, config))
    gate = gate or ChangeGate.from_args(args, context)
    change = gate.approve(ACTION, [*(t.plan_line() for t in targets), *left_out])
    if change is None:
        return EXIT_OK  # the gate said so (under --json: {"dryRun": true, "action", "plan"})
    results = apply(context, targets, configs, change)
    dispatch = trigger_dispatch(context, request_id=change.request_id) if any(map(was_queued, results)) else None
    document = {
        "requestId": change.request_id,
        "runs": [r.to_json() for r in results],
        "dispatch": dispatch,
        "leftOut": left_out,
    }

    def human() -> None:
        for result in results:
            context.say(f"{result.target.run_id}: {result.detail}")
        if dispatch:
            context.say(dispatch)

    context.emit(document, human)
    return EXIT_OK if all(map(was_queued, results)) else EXIT_FAILED


__all__ = [
    "RunTarget",
    "TargetResult",
    "add_arguments",
    "apply",
    "latest_submission_choice",
    "latest_submission_runs",
    "queue_target",
    "rerun_command",
    "routed_of",
    "run",
    "target_for",
    "targets_of_submission",
]
