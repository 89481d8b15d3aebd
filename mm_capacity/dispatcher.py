"""Which waiting runs get the free slots (decision 094): fair across challenges, members and priorities.

Within a challenge the queue's sort key already orders runs by priority rank, then the member's fair round, then
enqueue time, so the head of the queue is the next run. Across challenges (env-wide dispatch) the challenge with
waiting runs and room under its own cap that uses the smallest share of its cap goes next (ties: the older head),
so one challenge's flood cannot take the environment from another.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from mm_capacity.config import CapacityConfigError
from mm_capacity.dispatch_turns import MAX_PASSES
from mm_capacity.keys import wait_order_round
from mm_capacity.store import (
    ENV_POOL,
    AdmissionLimits,
    AdmitOutcome,
    CapacityStore,
    PoolSnapshot,
    WaitEntry,
    challenge_pool_key,
    phase_pool_key,
)
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import LogSink

CONFIG_BLOCK = "CONFIG"  # `blocked_by` when the environment's caps are unreadable: nothing is admitted
TURN_HELD = "TURN"  # `blocked_by` when another dispatcher holds the env-wide turn and passes for this one (124)
_HEAD_PAGE = 25  # the first page of a challenge's queue; each further page doubles, up to _MAX_PAGE
_MAX_PAGE = 400  # entries are ~200 bytes: a page stays far below a Query's 1 MB, so a short page is the end


@dataclass(frozen=True)
class Admitted:
    entry: WaitEntry
    record: LifecycleRecord


@dataclass(frozen=True)
class DispatchResult:
    admitted: tuple[Admitted, ...]
    self_admitted: Admitted | None
    blocked_by: str | None  # the pool (or CONFIG) that stopped this dispatch; None: the queues ran dry first


def admitted_message_body(admitted: Admitted) -> str:
    """What the challenge queue receives for an admitted run: its stored routed message, fixed to its phase.

    The processor then claims and launches exactly that run (the message names its phase).
    """
    record = admitted.record
    if not record.routed_message:
        raise ValueError(f"run {record.run_id} has no routed message to send")
    submission = RoutedSubmission.model_validate(json.loads(record.routed_message))
    return submission.model_copy(update={"phase": record.phase}).to_json()


@dataclass
class _Progress:
    """What one dispatch has done so far (kept when it stops early)."""

    env_used: int
    env_cpu: int
    taken: int = 0  # slots taken in this dispatch (an admitted run that could not be re-read counts too)
    admitted: list[Admitted] = field(default_factory=list)
    self_admitted: Admitted | None = None
    blocked_by: str | None = None


def _error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


@dataclass
class _Lane:
    """One challenge's queue during a dispatch: its config, what it uses, and the head entries read so far."""

    challenge_id: str
    config: ChallengeConfig
    used: int
    phase_used: dict[ScoringPhase, int]
    dispatched_round: int = 0  # the pool's fair-queuing virtual time, raised as this dispatch admits
    entries: list[WaitEntry] = field(default_factory=list)  # the queue read so far, in order
    cursor: int = 0  # entries before it are taken, gone or blocked by their phase's cap for this whole dispatch
    pages: int = 0
    read_to_end: bool = False
    skipped: set[str] = field(default_factory=set)  # admitted or gone
    full_phases: set[ScoringPhase] = field(default_factory=set)
    done: bool = False

    @property
    def cap(self) -> int:
        return self.config.capacity.max_running_tasks

    def phase_cap(self, phase: ScoringPhase) -> int | None:
        return self.config.capacity.max_running_tasks_per_phase.get(phase)

    def phase_has_room(self, phase: ScoringPhase) -> bool:
        cap = self.phase_cap(phase)
        return phase not in self.full_phases and (cap is None or self.phase_used.get(phase, 0) < cap)


class Dispatcher:
    """Admits waiting runs into free slots and sends each admitted run's message to its challenge queue.

    `challenge_settings(challenge_id)` returns None when a challenge's config is unusable: its runs keep waiting.
    `metrics(metric, challenge_id)` counts RunsAdmitted per challenge and CapacityConfigErrors (challenge None).
    """

    def __init__(
        self,
        store: CapacityStore,
        *,
        environment_capacity: Callable[[], EnvironmentCapacity],
        challenge_settings: Callable[[str], ChallengeConfig | None],
        send: Callable[[Admitted], None],
        logger: LogSink,
        metrics: Callable[[Metric, str | None], None] | None = None,
        max_admissions: int = 50,
        observe_snapshot: Callable[[PoolSnapshot], None] | None = None,
    ) -> None:
        self._store = store
        self._environment_capacity = environment_capacity
        self._challenge_settings = challenge_settings
        self._send = send
        self._logger = logger
        self._metrics = metrics or (lambda metric, dimension: None)
        self._max_admissions = max_admissions
        self._observe_snapshot = observe_snapshot or (lambda snapshot: None)

    def dispatch(
        self,
        *,
        challenge_id: str | None = None,
        prefer_run_id: str | None = None,
        prefer_record: LifecycleRecord | None = None,
    ) -> DispatchResult:
        """Admit waiting runs while slots are free: `challenge_id` given, only that challenge's queue (the
        challenge processor); None, every challenge's, fairly (completion, sweeper). The admitted run whose id is
        `prefer_run_id` is not sent but returned as `self_admitted`: the caller launches it under its own message;
        `prefer_record`, its WAITING item as the caller holds it, spares reading it back once admitted.
        The pools are read first: the versions stamped on them tell the caps and config loaders (`observe_snapshot`)
        whether their cache is current, before the caps are read."""
        snapshot = self._store.pools()
        self._observe_snapshot(snapshot)
        try:
            environment = self._environment_capacity()
        except CapacityConfigError as error:
            # Never admit without a known cap: everything keeps waiting (nothing is lost) until it is readable.
            self._logger.error(
                "capacity config unusable: nothing admitted",
                extra={"parameter": error.parameter_name, "reason": error.reason.value, "detail": error.detail},
            )
            self._metrics(Metric.CAPACITY_CONFIG_ERRORS, None)
            return DispatchResult((), None, CONFIG_BLOCK)
        progress = _Progress(env_used=snapshot.env.used, env_cpu=snapshot.env.cpu_used)
        try:
            lanes = self._lanes(snapshot, challenge_id)
            self._admit_while_room(progress, lanes, environment, prefer_run_id, prefer_record)
        except Exception as error:
            if not progress.admitted:
                raise
            # The runs admitted so far hold their slots: reporting them (and the caller's own) matters more
            # than the rest of this pass; the next dispatch, or the sweeper's, admits the others.
            self._logger.error(
                "dispatch stopped early; the runs admitted so far are returned",
                extra={"admitted": len(progress.admitted), "error": _error_text(error)},
            )
        return DispatchResult(tuple(progress.admitted), progress.self_admitted, progress.blocked_by)

    def dispatch_in_turn(self) -> DispatchResult:
        """Env-wide, one dispatcher at a time (decision 124): nothing but the pools' Query while no challenge has a
        waiting run; otherwise ask for the turn and, holding it, pass (`dispatch`), again for each batch of asks
        that came during a pass, at most `MAX_PASSES` times. Finding the turn held, leave the pass to its holder."""
        snapshot = self._store.pools()
        self._observe_snapshot(snapshot)
        if not any(pool.waiting > 0 for pool in snapshot.challenges.values()):
            return DispatchResult((), None, None)
        turn = self._store.ask_dispatch_turn()
        if turn is None:
            return DispatchResult((), None, TURN_HELD)
        admitted: list[Admitted] = []
        blocked_by: str | None = None
        try:
            for number in range(1, MAX_PASSES + 1):
                result = self.dispatch()
                admitted.extend(result.admitted)
                blocked_by = result.blocked_by
                turn = self._store.hand_back_dispatch_turn(turn, whatever=number == MAX_PASSES)
                if turn is None:
                    break
        except Exception:
            if turn is not None:  # not left held until it runs out: the next ask takes it at once
                with contextlib.suppress(Exception):
                    self._store.hand_back_dispatch_turn(turn, whatever=True)
            if not admitted:
                raise
            self._logger.error(
                "dispatch turn stopped early; the runs admitted so far are returned",
                extra={"admitted": len(admitted)},
            )
        return DispatchResult(tuple(admitted), None, blocked_by)

    def _admit_while_room(
        self,
        progress: _Progress,
        lanes: list[_Lane],
        environment: EnvironmentCapacity,
        prefer_run_id: str | None,
        prefer_record: LifecycleRecord | None = None,
    ) -> None:
        while progress.taken < self._max_admissions and self._admit_next(
            progress, lanes, environment, prefer_run_id, prefer_record
        ):
            pass

    def _admit_next(
        self,
        progress: _Progress,
        lanes: list[_Lane],
        environment: EnvironmentCapacity,
        prefer_run_id: str | None,
        prefer_record: LifecycleRecord | None = None,
    ) -> bool:
        """One step: pick the fairest lane and try its next run. False: nothing more can be admitted now."""
        if progress.env_used >= environment.max_running_tasks:
            progress.blocked_by = ENV_POOL
            return False
        lane = self._next_lane(lanes)
        if lane is None:
            return False
        if lane.used >= lane.cap:
            lane.done, progress.blocked_by = True, challenge_pool_key(lane.challenge_id)
            return True
        entry = self._next_entry(lane)
        if entry is None:
            lane.done = True
            return True
        cpu = lane.config.cpu or environment.default_task_cpu
        cpu_cap = environment.max_running_cpu_units
        if cpu_cap is not None and progress.env_cpu + cpu > cpu_cap:
            # The environment's vCPU is spent for a task this heavy; a lighter challenge's may still fit.
            lane.done, progress.blocked_by = True, ENV_POOL
            return True
        limits = AdmissionLimits(
            challenge_cap=lane.cap,
            phase_cap=lane.phase_cap(entry.phase),
            env_cap=environment.max_running_tasks,
            env_cpu_cap_units=cpu_cap,
            cpu_units=cpu,
            dispatched_round=lane.dispatched_round,
        )
        waiting = prefer_record if entry.run_id == prefer_run_id else None
        try:
            result = self._store.admit(entry, limits, waiting=waiting)
        except (ClientError, BotoCoreError, RuntimeError) as error:
            self._logger.warning(
                "admission failed; the run keeps waiting",
                extra={"runId": entry.run_id, "error": _error_text(error)},
            )
            lane.done = True
            return True
        if result.outcome is AdmitOutcome.GONE:
            lane.skipped.add(entry.run_id)
            return True
        if result.outcome is AdmitOutcome.FULL:
            return self._pool_was_full(progress, lane, entry, result.full_pool, environment)
        self._admitted(progress, lane, entry, result.record, cpu, prefer_run_id)
        return True

    @staticmethod
    def _pool_was_full(
        progress: _Progress, lane: _Lane, entry: WaitEntry, full_pool: str | None, environment: EnvironmentCapacity
    ) -> bool:
        """The admission met a full pool: the environment's ends the dispatch (unless only its CPU condition failed:
        another challenge's lighter task may fit), a phase's skips that phase, the challenge's ends the lane."""
        progress.blocked_by = full_pool
        if full_pool == ENV_POOL:
            if progress.env_used + 1 <= environment.max_running_tasks and environment.max_running_cpu_units is not None:
                lane.done = True  # the CPU condition, not the count: another challenge may fit
                return True
            return False
        if full_pool == phase_pool_key(lane.challenge_id, entry.phase):
            lane.full_phases.add(entry.phase)
        else:
            lane.done = True
        return True

    def _admitted(
        self,
        progress: _Progress,
        lane: _Lane,
        entry: WaitEntry,
        record: LifecycleRecord | None,
        cpu: int,
        prefer_run_id: str | None,
    ) -> None:
        """Admitted (committed): it holds its slots whatever happens next. Counted, then sent (or kept for the
        caller when it is the caller's own run)."""
        lane.skipped.add(entry.run_id)
        lane.dispatched_round = max(lane.dispatched_round, wait_order_round(entry.wait_order))
        lane.used += 1
        lane.phase_used[entry.phase] = lane.phase_used.get(entry.phase, 0) + 1
        progress.env_used, progress.env_cpu = progress.env_used + 1, progress.env_cpu + cpu
        progress.taken += 1
        self._metrics(Metric.RUNS_ADMITTED, entry.challenge_id)
        record = record or self._reread(entry)
        if record is None:
            # Unreadable now: the run is ADMITTED with its `deadlineAt`, so the sweeper re-sends its message.
            self._logger.warning(
                "run admitted but not readable; the sweeper re-sends it",
                extra={"runId": entry.run_id, "challengeId": entry.challenge_id},
            )
            return
        item = Admitted(entry, record)
        progress.admitted.append(item)
        self._logger.info(
            "run admitted",
            extra={"runId": entry.run_id, "challengeId": entry.challenge_id, "waitOrder": entry.wait_order},
        )
        if entry.run_id == prefer_run_id:
            progress.self_admitted = item
        else:
            self._send_admitted(item)

    def _reread(self, entry: WaitEntry) -> LifecycleRecord | None:
        try:
            return self._store.run(entry.run_id)
        except Exception as error:
            self._logger.warning("admitted run not re-read", extra={"runId": entry.run_id, "error": _error_text(error)})
            return None

    def _lanes(self, snapshot: PoolSnapshot, challenge_id: str | None) -> list[_Lane]:
        if challenge_id is not None:
            ids = [challenge_id]
        else:
            ids = sorted(cid for cid, pool in snapshot.challenges.items() if pool.waiting > 0)
        lanes = []
        for cid in ids:
            if snapshot.challenge(cid).paused:
                # Paused by an operator (decision 105): its runs wait; the admission would refuse them anyway.
                self._logger.info("challenge paused: its runs keep waiting", extra={"challengeId": cid})
                continue
            config = self._challenge_settings(cid)
            if config is None:
                self._logger.warning("challenge config unusable: its runs keep waiting", extra={"challengeId": cid})
                continue
            phase_used = {phase: pool.used for (owner, phase), pool in snapshot.phases.items() if owner == cid}
            pool = snapshot.challenge(cid)
            lanes.append(_Lane(cid, config, pool.used, phase_used, pool.dispatched_round))
        return lanes

    def _next_lane(self, lanes: list[_Lane]) -> _Lane | None:
        """The challenge that uses the smallest share of its cap; ties: the one whose head waited longest."""
        best: tuple[float, int, str] | None = None
        chosen: _Lane | None = None
        for lane in lanes:
            if lane.done:
                continue
            if lane.cap <= 0 or lane.used >= lane.cap:
                return lane  # settle it first: marked full (and named in blocked_by) without an admission
            head = self._next_entry(lane)
            if head is None:
                lane.done = True
                continue
            key = (lane.used / lane.cap, head.enqueued_at, lane.challenge_id)
            if best is None or key < best:
                best, chosen = key, lane
        return chosen

    def _next_entry(self, lane: _Lane) -> WaitEntry | None:
        """The first queued entry of the lane not yet taken and whose phase has room, reading the queue page by
        page: any number of entries blocked by their phase's cap may stand ahead of a run that fits."""
        while True:
            while lane.cursor < len(lane.entries):
                entry = lane.entries[lane.cursor]
                if entry.run_id not in lane.skipped and lane.phase_has_room(entry.phase):
                    return entry
                # Within one dispatch slots are only taken, never freed: a skipped entry stays skipped.
                lane.cursor += 1
            if lane.read_to_end:
                return None
            limit = min(_HEAD_PAGE << lane.pages, _MAX_PAGE)
            after = lane.entries[-1].wait_order if lane.entries else None
            page = self._store.queue_head(lane.challenge_id, limit=limit, after=after)
            lane.pages += 1
            lane.entries.extend(page)
            lane.read_to_end = len(page) < limit

    def _send_admitted(self, admitted: Admitted) -> None:
        try:
            self._send(admitted)
        except Exception as error:
            self._logger.warning(
                "admitted run's message not sent; the sweeper re-sends it",
                extra={"runId": admitted.entry.run_id, "error": _error_text(error)},
            )


__all__ = ["CONFIG_BLOCK", "TURN_HELD", "Admitted", "DispatchResult", "Dispatcher", "admitted_message_body"]
