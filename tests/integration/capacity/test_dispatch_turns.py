"""One env-wide dispatch at a time (decision 124), on moto: the turn is taken when free, handed back only when no
ask came during the pass, runs out when its holder dies; a dispatcher that finds it held makes no admission of its
own, and the slot it freed is filled by the holder's next pass."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mm_capacity.dispatch_turns import MAX_PASSES, TURN_SECONDS, DispatchTurn
from mm_capacity.dispatcher import TURN_HELD, Admitted, Dispatcher
from mm_capacity.store import ENV_POOL, AdmitResult, CapacityStore, WaitEntry
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.phase import ScoringPhase
from tests.conftest import Clock
from tests.integration.capacity.conftest import CHALLENGE_A, config, submission

LOGGER = logging.getLogger("test.dispatch_turns")
PHASE = ScoringPhase.PROVISIONAL


class CountingStore(CapacityStore):
    """The real store, counting admission attempts; `during_admit` runs once, inside the first one (another
    completion that frees a slot and dispatches while this pass is under way)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admit_attempts = 0
        self.during_admit: Any = None

    def admit(self, entry: WaitEntry, limits: Any, **kwargs: Any) -> AdmitResult:
        self.admit_attempts += 1
        nested, self.during_admit = self.during_admit, None
        result = super().admit(entry, limits, **kwargs)
        if nested is not None:
            nested()
        return result


@pytest.fixture
def store(capacity_table: str, status_table: str, clock: Clock) -> CountingStore:
    return CountingStore(capacity_table, status_table, ttl_days=90, clock=clock)


def _dispatcher(store: CapacityStore, cap: int, sent: list[Admitted]) -> Dispatcher:
    return Dispatcher(
        store,
        environment_capacity=lambda: EnvironmentCapacity(max_running_tasks=cap),
        challenge_settings=lambda challenge_id: config(challenge_id, max_running_tasks=10),
        send=sent.append,
        logger=LOGGER,
    )


def _wait(store: CapacityStore, clock: Clock, members: range) -> None:
    for member in members:
        result = store.enqueue(submission(CHALLENGE_A, member_id=member), phase=PHASE, scorer_type="java",
                               timeout_seconds=600, priority_rank=1)  # fmt: skip
        assert result.created
        clock.advance(1)


def test_the_turn_is_taken_when_free_and_handed_back_only_when_no_one_asked_during_the_pass(
    store: CountingStore,
) -> None:
    turn = store.ask_dispatch_turn()
    assert isinstance(turn, DispatchTurn)
    assert store.ask_dispatch_turn() is None  # held: this ask is left to the holder
    again = store.hand_back_dispatch_turn(turn)
    assert again is not None
    assert again.answers == turn.answers + 1
    assert store.hand_back_dispatch_turn(again) is None  # no ask since: handed back
    assert store.ask_dispatch_turn() is not None  # free again


def test_a_dead_holder_keeps_the_turn_only_until_it_runs_out(store: CountingStore, clock: Clock) -> None:
    dead = store.ask_dispatch_turn()
    assert dead is not None
    clock.advance(TURN_SECONDS - 1)
    assert store.ask_dispatch_turn() is None
    clock.advance(2)
    alive = store.ask_dispatch_turn()
    assert alive is not None
    assert alive.holder != dead.holder
    assert store.hand_back_dispatch_turn(dead) is None  # the dead holder's late hand-back frees nothing
    assert store.hand_back_dispatch_turn(dead, whatever=True) is None
    assert store.ask_dispatch_turn() is None  # the live holder still has it


def test_the_last_pass_hands_the_turn_back_whatever_was_asked(store: CountingStore) -> None:
    turn = store.ask_dispatch_turn()
    assert turn is not None
    assert store.ask_dispatch_turn() is None
    assert store.hand_back_dispatch_turn(turn, whatever=True) is None
    assert store.ask_dispatch_turn() is not None


def test_nothing_waiting_costs_only_the_pools_read(store: CountingStore) -> None:
    sent: list[Admitted] = []
    result = _dispatcher(store, 5, sent).dispatch_in_turn()
    assert (result.admitted, result.blocked_by) == ((), None)
    assert store.ask_dispatch_turn() is not None  # no turn was taken (or left held) for nothing


def test_a_dispatcher_that_finds_the_turn_held_tries_no_admission_of_its_own(
    store: CountingStore, clock: Clock
) -> None:
    _wait(store, clock, range(1, 4))
    holder = store.ask_dispatch_turn()  # another completion, mid-pass
    assert holder is not None
    sent: list[Admitted] = []
    result = _dispatcher(store, 5, sent).dispatch_in_turn()
    assert (result.admitted, result.blocked_by, store.admit_attempts) == ((), TURN_HELD, 0)
    assert store.hand_back_dispatch_turn(holder) is not None  # the holder sees the ask and passes again


def test_a_slot_freed_during_the_holders_pass_is_filled_by_its_next_pass(store: CountingStore, clock: Clock) -> None:
    # Cap 2, both slots held, three runs waiting. One completion frees a slot and takes the turn; during its pass
    # another completion frees the second slot and finds the turn held. The holder's hand-back sees that ask and
    # passes again: both freed slots are filled, with one admission attempt per slot and none that fails.
    cap = 2
    sent: list[Admitted] = []
    dispatcher = _dispatcher(store, cap, sent)
    _wait(store, clock, range(1, 3))
    running = dispatcher.dispatch().admitted
    assert len(running) == cap
    _wait(store, clock, range(3, 6))
    store.admit_attempts = 0
    late: list[Any] = []

    def second_completion() -> None:
        assert store.release(running[1].record)
        late.append(dispatcher.dispatch_in_turn())

    assert store.release(running[0].record)
    store.during_admit = second_completion
    result = dispatcher.dispatch_in_turn()
    assert [r.blocked_by for r in late] == [TURN_HELD]
    assert len(result.admitted) == 2  # the first pass's one, and the second pass's for the late slot
    assert result.blocked_by == ENV_POOL
    assert store.pools().env.used == cap
    assert store.pools().challenge(CHALLENGE_A).waiting == 1
    assert store.admit_attempts == 2  # each pass stops at the cap by its own count: no race for a taken run
    assert store.ask_dispatch_turn() is not None  # handed back at the end


def test_a_turn_passes_at_most_max_passes_times(store: CountingStore, clock: Clock) -> None:
    _wait(store, clock, range(1, 3))
    asks = [0]
    sent: list[Admitted] = []
    dispatcher = _dispatcher(store, 0 + 1, sent)
    original = dispatcher.dispatch

    def pass_with_an_ask(**kwargs: Any) -> Any:
        result = original(**kwargs)
        assert store.ask_dispatch_turn() is None  # someone asks during every pass
        asks[0] += 1
        return result

    dispatcher.dispatch = pass_with_an_ask  # type: ignore[method-assign]
    dispatcher.dispatch_in_turn()
    assert asks[0] == MAX_PASSES
    assert store.ask_dispatch_turn() is not None  # handed back after the last pass, asks or not


def test_a_turn_handed_back_between_a_refused_take_and_the_ask_is_taken_after_all(
    capacity_table: str, status_table: str, clock: Clock
) -> None:
    class HandBackInBetween(CapacityStore):
        holder: DispatchTurn | None = None

        def _update_if(self, **request: Any) -> dict[str, Any] | None:
            answer = super()._update_if(**request)
            if answer is None and self.holder is not None:  # the take was refused: the holder hands back now
                assert self.hand_back_dispatch_turn(self.holder, whatever=True) is None
                self.holder = None
            return answer

    store = HandBackInBetween(capacity_table, status_table, ttl_days=90, clock=clock)
    store.holder = store.ask_dispatch_turn()
    assert store.holder is not None
    mine = store.ask_dispatch_turn()  # refused, the turn handed back, the ask finds no holder: take again
    assert mine is not None
    assert store.ask_dispatch_turn() is None  # and it holds it now
