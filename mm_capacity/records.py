"""What the capacity table holds and answers, as values: queue entries, pools, admission limits and results."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mm_capacity.keys import challenge_pool_key
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.phase import ScoringPhase


@dataclass(frozen=True)
class WaitEntry:
    challenge_id: str
    run_id: str
    submission_id: str
    phase: ScoringPhase
    member_id: int
    wait_order: str
    enqueued_at: int
    rerun: bool


class AdmitOutcome(StrEnum):
    ADMITTED = "admitted"
    FULL = "full"  # a pool is at its cap: `full_pool` names it
    GONE = "gone"  # the run is no longer waiting (cancelled, admitted by another dispatcher)


@dataclass(frozen=True)
class AdmitResult:
    outcome: AdmitOutcome
    full_pool: str | None = None  # "ENV", "CHALLENGE#..", "PHASE#.."
    # The ADMITTED run; None if it could not be re-read after the admission committed (it is admitted all the same)
    record: LifecycleRecord | None = None


@dataclass(frozen=True)
class EnqueueResult:
    created: bool  # False: the run already had an item (a duplicate delivery); nothing was written
    wait_order: str | None
    record: LifecycleRecord | None  # the WAITING run, or the existing item of a duplicate


@dataclass(frozen=True)
class PoolState:
    sk: str
    used: int
    cpu_used: int
    waiting: int
    holders: dict[str, int]  # run id -> CPU units held
    cap: int | None
    dispatched_round: int
    paused: bool = False  # a challenge pool paused by an operator: admits nothing (decision 105)
    # The SSM versions of the caps (ENV, CHALLENGE#) and of the challenge's config (CHALLENGE#) the sweeper stamped
    # on the item: the loaders re-read a parameter only when its version moved. None: not stamped yet.
    caps_version: int | None = None
    config_version: int | None = None

    @classmethod
    def empty(cls, sk: str) -> PoolState:
        return cls(sk=sk, used=0, cpu_used=0, waiting=0, holders={}, cap=None, dispatched_round=0)


@dataclass(frozen=True)
class PoolSnapshot:
    env: PoolState
    challenges: dict[str, PoolState]
    phases: dict[tuple[str, ScoringPhase], PoolState]

    def all_pools(self) -> list[PoolState]:
        return [self.env, *self.challenges.values(), *self.phases.values()]

    def challenge(self, challenge_id: str) -> PoolState:
        return self.challenges.get(challenge_id) or PoolState.empty(challenge_pool_key(challenge_id))


@dataclass(frozen=True)
class AdmissionLimits:
    challenge_cap: int
    phase_cap: int | None
    env_cap: int
    env_cpu_cap_units: int | None
    cpu_units: int  # the run's weight
    # The challenge pool's dispatchedRound as the caller's snapshot read it. Known: a higher round of the admitted
    # run is set in the admission transaction itself (no UpdateItem after it). None: raised after it, as before.
    dispatched_round: int | None = None


@dataclass(frozen=True)
class NewRunView:
    """What one BatchGetItem read before a run's first write (decision 114): the run's item (None: not created yet),
    its member's fair round and runs of the run's phase, and the pools it would take a slot in (empty if absent)."""

    record: LifecycleRecord | None
    last_round: int  # the member's `lastRound` (0: none yet)
    member_has_phase_runs: bool  # the member waits for or holds another run of this phase (supersede may act)
    env: PoolState
    challenge: PoolState
    phase: PoolState


class DirectLaunchOutcome(StrEnum):
    CLAIMED = "claimed"  # LAUNCHING attempt 1, holding its slots: the caller calls RunTask
    RUN_EXISTS = "run_exists"  # another delivery created the run first: nothing written
    NOT_NOW = "not_now"  # something waits, a cap is full, the challenge is paused or a race: nothing written


@dataclass(frozen=True)
class DirectLaunchResult:
    outcome: DirectLaunchOutcome
    record: LifecycleRecord | None = None  # CLAIMED: the item as the transaction wrote it
    refused_by: str | None = None  # NOT_NOW: the pool (or "MEMBER", "CONFLICT") whose condition refused it
