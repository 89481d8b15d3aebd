"""`mm-processor pause CHALLENGE_ID` / `mm-processor resume CHALLENGE_ID [--no-dispatch]`: stop and start admitting
a challenge's runs (decision 105).

Pause sets a `paused` flag on the challenge's pool item; every admission of the challenge is refused in the
admission transaction itself, so it holds at once in every function, with no cache. Submissions keep arriving and
wait (WAITING, in the challenge's queue); running and already-admitted runs go on. Resume removes the flag, then
invokes the sweeper once (`operator_tools.dispatch`) so the queue is admitted now rather than at the next scheduled
sweep. Both leave an audit item in the challenge's change log (`mm-processor audit CHALLENGE_ID`).
The challenge id is taken in its canonical form (lower-case) and must be one of the environment config's.
Exit status: 0 done (or already so, or --dry-run), 1 not a challenge of the config (or declined), 2 could not run.
"""

from __future__ import annotations

import argparse
from typing import Any

from operator_tools.context import (
    EXIT_OK,
    ChangeGate,
    OperatorContext,
    add_change_options,
    add_environment_options,
    challenge_id_argument,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "challenge_id", type=challenge_id_argument, help="the challenge id (one of the environment config's)"
    )
    add_change_options(parser)
    add_environment_options(parser)


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument(
        "--no-dispatch", action="store_true", help="do not start a sweep now (the next scheduled sweep admits them)"
    )


def _challenge_line(context: OperatorContext, challenge_id: str) -> str:
    store = context.capacity_store()
    pool = store.pools().challenge(challenge_id)
    return f"challenge {challenge_id}: running {pool.used}, waiting {pool.waiting}"


def run(args: argparse.Namespace) -> int:
    context = OperatorContext.from_args(args)
    context.require_known_challenge(args.challenge_id)
    store = context.capacity_store()
    controls = store.controls(args.challenge_id)
    if controls.paused:
        return _unchanged(
            context,
            args.challenge_id,
            "pause",
            f"already paused by {controls.paused_by} at {controls.paused_at}: {controls.pause_reason}",
        )
    change = ChangeGate.from_args(args, context).approve(
        "pause",
        [
            _challenge_line(context, args.challenge_id),
            "pause: no run of it is admitted from now on; new submissions and reruns wait in its queue",
            "running and already-admitted runs go on",
        ],
    )
    if change is None:
        return EXIT_OK
    paused = store.pause(args.challenge_id, change)
    document = {"challengeId": args.challenge_id, "action": "pause", "changed": paused, "requestId": change.request_id}
    sentence = (
        f"paused {args.challenge_id} [request {change.request_id}]; resume with `mm-processor resume "
        f"{args.challenge_id}`"
        if paused
        else f"{args.challenge_id} was already paused (by another operator meanwhile): nothing changed"
    )
    context.emit(document, lambda: context.say(sentence))
    return EXIT_OK


def run_resume(args: argparse.Namespace) -> int:
    context = OperatorContext.from_args(args)
    context.require_known_challenge(args.challenge_id)
    store = context.capacity_store()
    if not store.controls(args.challenge_id).paused:
        return _unchanged(context, args.challenge_id, "resume", "not paused")
    dispatch = "then: start a sweep now, which admits its waiting runs within the caps"
    change = ChangeGate.from_args(args, context).approve(
        "resume",
        [
            _challenge_line(context, args.challenge_id),
            "resume: its runs are admitted again, in queue order",
            "then: no sweep now (--no-dispatch): the next scheduled sweep admits them"
            if args.no_dispatch
            else dispatch,
        ],
    )
    if change is None:
        return EXIT_OK
    resumed = store.resume(args.challenge_id, change)
    document: dict[str, Any] = {
        "challengeId": args.challenge_id,
        "action": "resume",
        "changed": resumed,
        "requestId": change.request_id,
    }
    lines = [f"resumed {args.challenge_id} [request {change.request_id}]" if resumed else "it was resumed meanwhile"]
    if not args.no_dispatch:
        from operator_tools.dispatch import trigger_dispatch

        document["dispatch"] = trigger_dispatch(context, request_id=change.request_id)
        lines.append(document["dispatch"])
    context.emit(document, lambda: context.say("\n".join(lines)))
    return EXIT_OK


def _unchanged(context: OperatorContext, challenge_id: str, action: str, why: str) -> int:
    document = {"challengeId": challenge_id, "action": action, "changed": False, "why": why}
    context.emit(document, lambda: context.say(f"{challenge_id}: {why}; nothing changed"))
    return EXIT_OK
