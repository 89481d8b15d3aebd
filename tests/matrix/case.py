"""A fault-matrix case and its expectations: `Case` (the faults, the scripts, the config, the setup) and `Expect`
(the one final state of one submission or run), with the shorthands the case tables use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fault_injection import FaultKind, FaultPlan, FaultRule, FaultWindow
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import Platform, run_id
from tests.fakes.ecs import TaskScript
from tests.matrix.world import World

S1 = "0b7a4c1e-1111-4a2b-9c3d-000000000001"
S2 = "0b7a4c1e-2222-4a2b-9c3d-000000000002"
N1 = "V6matrixSub001"  # a v6 submission: the platform's 14-character nanoid
NE, NP = run_id(N1, "EXAMPLE"), run_id(N1, "PROVISIONAL")  # its two runs on the v6 challenge

SUCCEEDED, FAILED, TIMED_OUT = SubmissionState.SUCCEEDED, SubmissionState.FAILED, SubmissionState.TIMED_OUT
DEAD_LETTERED = SubmissionState.DEAD_LETTERED
EXITED_0 = r"scorer exited 0"
TIMED_OUT_REASON = r"timed out"
OUTCOME_UNKNOWN = r"outcome unknown"


@dataclass(frozen=True)
class Expect:
    """The one final state of one submission. `state` None: the pipeline must keep no item for it."""

    state: SubmissionState | None
    reason: str | None = None  # regex searched in the item's `reason`
    reviews: int = 1  # reviews the API holds for the submission at the end (slow commits included)
    completions: int | None = None  # tasks that ran the scorer to its own end (default: 1 if SUCCEEDED else <= 1)
    report: ReportStatus | None = None
    dead_lettered_message: bool | None = False  # the routed message ends in the challenge DLQ (None: either)
    tasks_started: int | None = None
    # v6 (the key is a run id): summations of the run's phase at the end (the scorer's included), how many of
    # them we wrote, and the testStatus of the one terminal summation (aggregateScore -1, isPassing false).
    summations: int | None = None
    our_summations: int | None = None
    summation_status: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    kinds: tuple[FaultKind, ...]
    rules: tuple[FaultRule, ...]
    expect: dict[str, Expect]
    defect: str = ""  # the defect this case shows when it fails
    via_kafka: bool = False
    scripts: dict[str, TaskScript] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)
    setup: Callable[[World], None] | None = None
    must_fire: bool = True  # every kind of the case fired at least once (no vacuous pass)
    submit: bool = True  # S1 (v6: N1) is submitted (to Kafka or the queue); False: the setup submits everything
    platform: Platform = Platform.V5
    extra_check: Callable[[World], list[str]] | None = None  # what only this case can say went wrong
    # A defect the case shows in the code as it stands, not fixed yet: the case runs as a strict xfail, so it
    # turns the suite red the day the defect is fixed (then delete this) or the case stops showing it.
    open_defect: str = ""

    def plan(self) -> FaultPlan:
        return FaultPlan(rules=list(self.rules))


def rule(kind: FaultKind, target: str | None = S1, **kwargs: object) -> FaultRule:
    if not any(k in kwargs for k in ("first_n", "every", "window")):
        kwargs["first_n"] = 1
    return FaultRule.model_validate({"kind": kind, "target": target, **kwargs})


def window(start: float, end: float) -> FaultWindow:
    return FaultWindow(start=start, end=end)


def ok(**kwargs: object) -> dict[str, Expect]:
    return {S1: Expect(SUCCEEDED, EXITED_0, report=ReportStatus.REPORTED, **kwargs)}  # type: ignore[arg-type]


LONG = TaskScript(run_seconds=900)  # a scorer still running when the retry comes


# ---------------------------------------------------------------- v6 expectations
def v6_scored(**kwargs: object) -> Expect:
    """A v6 run that succeeded: the scorer's own summation is the phase's one; we write none."""
    values: dict[str, object] = {
        "reviews": 0,
        "summations": 1,
        "our_summations": 0,
        "report": ReportStatus.NOT_REQUIRED,
        "tasks_started": 1,
        "completions": 1,
    }
    return Expect(SUCCEEDED, EXITED_0, **{**values, **kwargs})  # type: ignore[arg-type]


def v6_ok(**kwargs: object) -> dict[str, Expect]:
    return {NE: v6_scored(**kwargs), NP: v6_scored(**kwargs)}


def v6_unscored(state: SubmissionState, reason: str, **kwargs: object) -> Expect:
    """A v6 run without a score: exactly one terminal summation of its phase, ours, FAILED."""
    values: dict[str, object] = {
        "reviews": 0,
        "summations": 1,
        "our_summations": 1,
        "summation_status": "FAILED",
        "report": ReportStatus.REPORTED,
    }
    return Expect(state, reason, **{**values, **kwargs})  # type: ignore[arg-type]


EXITED_2 = r"exited with code 2"
FAILS = TaskScript(exit_code=2)


def v6_provisional_fails(**kwargs: object) -> dict[str, Expect]:
    return {NE: v6_scored(), NP: v6_unscored(FAILED, EXITED_2, completions=1, tasks_started=1, **kwargs)}
