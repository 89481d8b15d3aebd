"""Concurrent deliveries in the matrix: `Interleaver` runs them "at once" and switches at the launch claim write.

`install_launch_interleaving` puts the pause points on a DynamoDB client (botocore event hooks), so two deliveries
that saw the same state race on the conditional write as they would in two Lambda containers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mm_contracts.names import STATUS_TABLE_PARTITION_KEY


class Interleaver:
    """Runs deliveries "at once": each in a thread, one thread running at any time, switching at the launch
    claim. Order: every delivery reads up to its claim write, then each writes in turn (and pauses just after),
    then each runs to its end. That is the interleaving in which two deliveries that saw the same state race."""

    BEFORE_WRITE, AFTER_WRITE, END = 1, 2, 3

    @dataclass
    class _Worker:
        fn: Callable[[], object]
        go: threading.Event = field(default_factory=threading.Event)
        yielded: threading.Event = field(default_factory=threading.Event)
        position: int = 0
        error: BaseException | None = None

    def __init__(self) -> None:
        self._workers: dict[int, Interleaver._Worker] = {}
        self.claims_won: list[int] = []  # per concurrent run: how many deliveries' claim writes succeeded

    def claim_won(self) -> None:
        """A delivery's first claim write succeeded (a later one, after the other delivery released, is fair)."""
        worker = self._workers.get(threading.get_ident())
        if worker is not None and worker.position < self.AFTER_WRITE and self.claims_won:
            self.claims_won[-1] += 1

    def pause(self, point: int) -> None:
        worker = self._workers.get(threading.get_ident())
        if worker is None or worker.position >= point:
            return
        worker.position = point
        worker.go.clear()
        worker.yielded.set()
        if not worker.go.wait(timeout=60):
            raise RuntimeError("interleaver: never resumed")

    def run(self, fns: list[Callable[[], object]]) -> list[BaseException | None]:
        workers = [Interleaver._Worker(fn) for fn in fns]
        self.claims_won.append(0)
        threads = []
        for worker in workers:

            def body(w: Interleaver._Worker = worker) -> None:
                self._workers[threading.get_ident()] = w
                w.go.wait()
                try:
                    w.fn()
                except BaseException as error:  # a crash is an outcome here, not an error of the harness
                    w.error = error
                finally:
                    w.position = Interleaver.END
                    w.yielded.set()

            thread = threading.Thread(target=body, daemon=True)
            thread.start()
            threads.append(thread)
        for point in (self.BEFORE_WRITE, self.AFTER_WRITE, self.END):
            for worker in workers:
                while worker.position < point:
                    worker.yielded.clear()
                    worker.go.set()
                    if not worker.yielded.wait(timeout=60):
                        raise RuntimeError("interleaver: a delivery never yielded")
        for thread in threads:
            thread.join(timeout=60)
        self._workers.clear()
        return [w.error for w in workers]


def _is_launch_claim(operation: str, params: dict[str, Any]) -> bool:
    """The conditional write that claims a launch (create LAUNCHING, or re-claim with a new lease)."""
    if operation == "PutItem":
        return (params.get("Item") or {}).get("state", {}).get("S") == "LAUNCHING"
    if operation == "UpdateItem":
        values = json.dumps(params.get("ExpressionAttributeValues") or {})
        return "LAUNCHING" in values and "leaseUntil = " in str(params.get("UpdateExpression", ""))
    return False


def install_launch_interleaving(ddb: Any, admin_ddb: Any, interleaver: Interleaver) -> None:
    """Pause points for `interleaver` around the launch claim write on `ddb` (no-ops outside a concurrent
    delivery); `admin_ddb` (no faults) looks up whether a claim's item exists."""
    key = "matrix_params"

    def remember(params: dict[str, Any], context: dict[str, Any], model: Any, **_: Any) -> None:
        context[key] = (model.name, json.loads(json.dumps(params, default=str)))

    def race_point(context: dict[str, Any]) -> bool:
        name, params = context.get(key, ("", {}))
        if not _is_launch_claim(name, params):
            return False
        if name == "PutItem" and "race_point" not in context:
            # Creating an item that exists is a probe that fails whatever happens: the race is the re-claim.
            partition = STATUS_TABLE_PARTITION_KEY
            found = admin_ddb.get_item(TableName=params["TableName"], Key={partition: params["Item"][partition]})
            context["race_point"] = "Item" not in found
        return bool(context.get("race_point", True))

    def before(context: dict[str, Any], **_: Any) -> None:
        if race_point(context):
            interleaver.pause(Interleaver.BEFORE_WRITE)

    def after(context: dict[str, Any], http_response: Any, **_: Any) -> None:
        if race_point(context):
            if http_response.status_code < 300:
                interleaver.claim_won()
            interleaver.pause(Interleaver.AFTER_WRITE)

    events = ddb.meta.events
    events.register("before-parameter-build.dynamodb", remember, unique_id="matrix-remember")
    events.register_first("before-call.dynamodb", before, unique_id="matrix-before")
    events.register_last("after-call.dynamodb", after, unique_id="matrix-after")
