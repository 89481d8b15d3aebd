"""`mm-processor dlq list | show | redrive | replay-router`: the environment's dead letters (decision 110).

    dlq list                                  every DLQ's depth and oldest message, the router failure bucket
    dlq show QUEUE [--limit N]                decoded messages, not deleted (QUEUE: its name, a challenge id,
                                              `fanout` or `completion`); --json adds each whole body
    dlq redrive QUEUE [--max-per-second N] [--limit N] [--move] --reason TEXT [--yes] [--dry-run]
                                              (a challenge DLQ's move task moves all its messages: --limit
                                              only with --move)
    dlq replay-router [--prefix P] [--limit N] --reason TEXT [--yes] [--dry-run]

Queue names come from the environment config and its wiring plan only. A redrive leaves an audit entry
(`OperatorChange`, action `redrive`) in the history of each run a redriven message names; a replay's entries are
its object tags (the runs are not known before the router routes them). Exit status: `list` 1 when anything
waits; `show` 0; `redrive` / `replay-router` 1 when a message or object could not be handed on; 2 could not run.
"""

from __future__ import annotations

import argparse

from mm_contracts.models.audit import OperatorChange
from operator_tools.context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ChangeGate,
    OperatorContext,
    OperatorError,
    add_change_options,
    add_environment_options,
)
from operator_tools.dead_letters import router_failures
from operator_tools.dead_letters.decode import DeadLetter, decode
from operator_tools.dead_letters.queues import (
    DeadLetterQueue,
    QueueDepth,
    QueueKind,
    UnknownQueue,
    dead_letter_queues,
    depth,
    find_queue,
    peek,
    queue_url,
)
from operator_tools.dead_letters.redrive import MoveTaskRefused, RedriveResult, destination_of, redrive

DEFAULT_SHOW_LIMIT = 10
DEFAULT_REDRIVE_LIMIT = 1000
MAX_MOVE_TASK_RATE = 500  # StartMessageMoveTask MaxNumberOfMessagesPerSecond: 1..500 (SQS API reference)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _rate(text: str) -> int:
    value = _positive(text)
    if value > MAX_MOVE_TASK_RATE:
        raise argparse.ArgumentTypeError(f"at most {MAX_MOVE_TASK_RATE} messages per second (SQS's limit)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="dlq_action", required=True)
    listing = actions.add_parser("list", help="every DLQ's depth and oldest message; the router failure bucket")
    add_environment_options(listing)
    show = actions.add_parser("show", help="a DLQ's messages, decoded, without deleting them")
    show.add_argument("queue", help="the DLQ's name, a challenge id, `fanout` or `completion`")
    show.add_argument("--limit", type=_positive, default=DEFAULT_SHOW_LIMIT, help="messages to show (default 10)")
    add_environment_options(show)
    again = actions.add_parser("redrive", help="a DLQ's messages back where they came from (per queue kind)")
    again.add_argument("queue", help="the DLQ's name, a challenge id, `fanout` or `completion`")
    again.add_argument("--max-per-second", type=_rate, help="pace of the redrive (messages per second)")
    again.add_argument(
        "--limit",
        type=_positive,
        help=f"messages at most (a move: fan-out, completion, or --move; default {DEFAULT_REDRIVE_LIMIT}); a move "
        "task moves the whole DLQ",
    )
    again.add_argument(
        "--move", action="store_true", help="challenge DLQ: move message by message, not by StartMessageMoveTask"
    )
    add_change_options(again)
    add_environment_options(again)
    replay = actions.add_parser("replay-router", help="the router failure bucket's records into the router")
    replay.add_argument("--prefix", default="", help="only objects under this key prefix")
    replay.add_argument("--limit", type=_positive, default=100, help="objects at most (default 100)")
    add_change_options(replay)
    add_environment_options(replay)


def run(args: argparse.Namespace, context: OperatorContext | None = None) -> int:
    context = context or OperatorContext.from_args(args)
    handlers = {"list": list_command, "show": show_command, "redrive": redrive_command, "replay-router": replay_command}
    return handlers[args.dlq_action](args, context)


def _queue(context: OperatorContext, name: str) -> DeadLetterQueue:
    try:
        return find_queue(context.plan(), name)
    except UnknownQueue as error:
        raise OperatorError(str(error), EXIT_FAILED) from None


# ------------------------------------------------------------------ list
def _depth_or_error(context: OperatorContext, queue: DeadLetterQueue) -> QueueDepth:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return depth(context.clients, queue)
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        return QueueDepth(queue, 0, 0, error=str(code or type(error).__name__))


def list_command(args: argparse.Namespace, context: OperatorContext) -> int:
    depths = [_depth_or_error(context, queue) for queue in dead_letter_queues(context.plan())]
    bucket = router_failures.count(context.plan(), context.clients)
    waiting = any(d.total for d in depths) or bucket.unreplayed > 0
    failed = any(d.error for d in depths)
    document = {
        "environment": context.config.environment,
        "queues": [d.to_dict() for d in depths],
        "routerFailures": bucket.to_dict(),
        "empty": not waiting,
    }

    def human() -> None:
        for d in depths:
            oldest = f", oldest sent {d.oldest_sent_at:%Y-%m-%d %H:%M:%S}Z" if d.oldest_sent_at else ""
            state = f"ERROR {d.error}" if d.error else f"{d.visible} visible, {d.in_flight} in flight{oldest}"
            context.say(f"{d.queue.name:<60} {d.queue.kind.value:<10} {state}")
        context.say(
            f"{bucket.bucket:<60} {'router':<10} {bucket.objects} object(s), "
            f"{bucket.unreplayed} not replayed (of {bucket.checked} checked)"
        )
        context.say("nothing waits" if not waiting else "dead letters wait: `mm-processor dlq show QUEUE`")

    context.emit(document, human)
    return EXIT_FAILED if waiting or failed else EXIT_OK


# ------------------------------------------------------------------ show
def read_letters(context: OperatorContext, queue: DeadLetterQueue, limit: int) -> list[DeadLetter]:
    url = queue_url(context.clients, queue.name)
    store = context.status_store()
    return [decode(queue.kind, message, store) for message in peek(context.clients, url, limit=limit)]


def show_command(args: argparse.Namespace, context: OperatorContext) -> int:
    queue = _queue(context, args.queue)
    letters = read_letters(context, queue, args.limit)
    document = {
        "queue": queue.name,
        "kind": queue.kind.value,
        "messages": [letter.to_dict(with_body=True) for letter in letters],
    }

    def human() -> None:
        context.say(f"{queue.name} ({queue.kind.value}): {len(letters)} message(s) shown (none deleted)")
        for letter in letters:
            sent = f"{letter.sent_at:%Y-%m-%d %H:%M:%S}Z" if letter.sent_at else "?"
            about = ", ".join(letter.run_ids) or letter.submission_id or "unknown submission"
            context.say(f"- {letter.message_id}: sent {sent}, received {letter.receive_count}x, about {about}")
            context.say(f"    {letter.reason}")

    context.emit(document, human)
    return EXIT_OK


# ------------------------------------------------------------------ redrive
def _audit(context: OperatorContext, letters: list[DeadLetter], change: OperatorChange) -> list[str]:
    store = context.status_store()
    run_ids = list(dict.fromkeys(run_id for letter in letters for run_id in letter.run_ids))
    return [run_id for run_id in run_ids if store.append_operator_entry(run_id, change)]


def _moved_letters(context: OperatorContext, queue: DeadLetterQueue, result: RedriveResult) -> list[DeadLetter]:
    """The letters a move handed on (decoded again from their bodies, for the audit entries)."""
    from operator_tools.dead_letters.queues import PeekedMessage

    store = context.status_store()
    return [
        decode(queue.kind, PeekedMessage(f"moved-{i}", body, None, 0, {}), store)
        for i, body in enumerate(result.moved_bodies)
    ]


def _uses_move_task(args: argparse.Namespace, queue: DeadLetterQueue) -> bool:
    return queue.kind is QueueKind.CHALLENGE and not args.move


def _redrive_plan(
    args: argparse.Namespace, context: OperatorContext, queue: DeadLetterQueue, letters: list[DeadLetter]
) -> list[str]:
    destination = destination_of(context.plan(), queue)
    if _uses_move_task(args, queue):
        about = depth(context.clients, queue, peek_oldest=False).visible
        what = (
            f"all messages in {queue.name} (about {about}: a move task moves the whole DLQ; where the endpoint lacks "
            f"move tasks, moved message by message, up to {DEFAULT_REDRIVE_LIMIT})"
        )
    else:
        limit = args.limit or DEFAULT_REDRIVE_LIMIT
        what = f"{len(letters)} message(s) seen in {queue.name} (more may be moved, up to --limit {limit})"
    how = {
        QueueKind.CHALLENGE: "SQS StartMessageMoveTask back to its source queue"
        if not args.move
        else "moved message by message",
        QueueKind.FANOUT: "moved message by message",
        QueueKind.COMPLETION: "each event invoked into the completion function (async), then deleted",
    }[queue.kind]
    runs = sorted({run_id for letter in letters for run_id in letter.run_ids})
    lines = [
        what,
        f"to {destination}: {how}",
        f"runs named: {', '.join(runs[:10])}{' ...' if len(runs) > 10 else ''}" if runs else "runs named: none",
    ]
    if args.max_per_second:
        lines.append(f"at most {args.max_per_second} message(s) per second")
    return lines


def redrive_command(args: argparse.Namespace, context: OperatorContext) -> int:
    queue = _queue(context, args.queue)
    if args.limit is not None and _uses_move_task(args, queue):
        raise OperatorError(
            "--limit bounds a move message by message (--move): a move task moves every message in the DLQ",
            EXIT_USAGE,
        )
    limit = args.limit or DEFAULT_REDRIVE_LIMIT
    letters = read_letters(context, queue, limit)
    destination = destination_of(context.plan(), queue)
    change = ChangeGate.from_args(args, context).approve("redrive", _redrive_plan(args, context, queue, letters))
    if change is None:
        return EXIT_OK
    try:
        result = redrive(
            context.plan(),
            context.clients,
            queue,
            limit=limit,
            max_per_second=args.max_per_second,
            force_move=args.move,
        )
    except MoveTaskRefused as refused:  # only the start: a move hands each message on, its errors counted
        raise OperatorError(
            f"StartMessageMoveTask on {queue.name} refused: {refused}"
            " (nothing moved; one move task per queue at a time: see `aws sqs list-message-move-tasks`)",
            EXIT_FAILED,
        ) from None
    audited_letters = letters if result.method == "move-task" else _moved_letters(context, queue, result)
    audited = _audit(context, audited_letters, change)
    document = {"queue": queue.name, "kind": queue.kind.value, **result.to_dict(), "auditedRuns": audited}

    def human() -> None:
        if result.method == "move-task":
            context.say(f"move task {result.task_handle}: {result.task_status} ({queue.name} -> {destination})")
        else:
            not_deleted = f", {result.not_deleted} handed on but not deleted" if result.not_deleted else ""
            context.say(f"{result.moved} moved, {result.failed} failed{not_deleted} ({queue.name} -> {destination})")
        if result.note:
            context.say(result.note)
        for error in result.errors[:20]:
            context.say(f"  {error}")
        context.say(f"audit entry in {len(audited)} run(s): {', '.join(audited[:10])}" if audited else "no run audited")

    context.emit(document, human)
    return EXIT_OK if result.ok else EXIT_FAILED


# ------------------------------------------------------------------ replay-router
def replay_command(args: argparse.Namespace, context: OperatorContext) -> int:
    plan = context.plan()
    keys, skipped = router_failures.pending_keys(plan, context.clients, prefix=args.prefix, limit=args.limit)
    bucket = router_failures.bucket_name(plan)
    change = ChangeGate.from_args(args, context).approve(
        "replay",
        [
            f"{len(keys)} failure record(s) in {bucket}{' under ' + args.prefix if args.prefix else ''} "
            f"({skipped} already replayed, skipped)",
            f"each into {plan.names.router_function} (synchronous invoke), then tagged "
            f"{router_failures.REPLAYED_TAG}={context.request_id}",
        ],
    )
    if change is None:
        return EXIT_OK
    result = router_failures.replay(plan, context.clients, keys, request_id=change.request_id)
    result.skipped_objects = skipped

    def human() -> None:
        context.say(
            f"{result.replayed_objects} of {result.objects} object(s) replayed: {result.events} event(s), "
            f"{result.records} Kafka record(s) into {plan.names.router_function}"
        )
        for error in result.errors[:20]:
            context.say(f"  {error}")

    context.emit(result.to_dict(), human)
    return EXIT_OK if result.ok else EXIT_FAILED
