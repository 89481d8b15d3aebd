"""AWS calls counted per function and operation in the fault matrix's world (decision 114).

`CallCounter.install(world)` registers a botocore `before-call` handler on the world's AWS clients (DynamoDB and
SSM on moto, the fake ECS and SNS) and wraps its fake SQS client and the four function entry points, so every call
is attributed to the function whose handler was running: a call count is behaviour, not timing. Used by the
calls-per-run tests beside it and by `benchmarks/aws_calls_benchmark.py --in-process`.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.matrix.world import World

FUNCTIONS = ("router", "challenge", "completion", "sweeper")
SETUP = "setup"  # the world's own calls (tables, parameters): never a function's

_current = contextvars.ContextVar("function", default=SETUP)


class CallCounter:
    """Calls by (function, service, operation); `sweeps`: how many sweeps ran."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str, str]] = Counter()
        self.sweeps = 0

    @classmethod
    def install(cls, world: World) -> CallCounter:
        counter = cls()
        for client in (world.ddb, world.ssm, world.ecs, world.sns):
            service = client.meta.service_model.service_name
            client.meta.events.register(
                "before-call.*.*", counter._on_call(service), unique_id=f"calls-per-run-{service}"
            )
        for operation in ("send_message", "send_message_batch", "get_queue_url"):
            counter._count_method(world.sqs, operation, "sqs")
        counter._attribute(world, "_invoke_challenge", "challenge")
        counter._attribute(world, "invoke_completion_async", "completion")
        counter._attribute(world, "kafka_batch", "router")
        counter._attribute(world.sweeper, "sweep", "sweeper")
        return counter

    def _on_call(self, service: str) -> Callable[..., None]:
        def on_call(model: Any, **_: Any) -> None:
            self.calls[(_current.get(), service, model.name)] += 1

        return on_call

    def _count_method(self, target: Any, name: str, service: str) -> None:
        original = getattr(target, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[(_current.get(), service, name)] += 1
            return original(*args, **kwargs)

        setattr(target, name, counted)

    def _attribute(self, target: Any, name: str, function: str) -> None:
        original = getattr(target, name)

        def attributed(*args: Any, **kwargs: Any) -> Any:
            if function == "sweeper":
                self.sweeps += 1
            token = _current.set(function)
            try:
                return original(*args, **kwargs)
            finally:
                _current.reset(token)

        setattr(target, name, attributed)

    def of(self, function: str, service: str | None = None) -> Counter[str]:
        """The operations one function called (of one service, or `service:Operation` of all)."""
        found: Counter[str] = Counter()
        for (fn, svc, operation), count in self.calls.items():
            if fn != function:
                continue
            if service is None:
                found[f"{svc}:{operation}"] += count
            elif svc == service:
                found[operation] += count
        return found

    def total(self, function: str, service: str) -> int:
        return sum(self.of(function, service).values())

    def reset(self) -> None:
        """Forget what was counted so far (e.g. the cold invocations)."""
        self.calls.clear()
        self.sweeps = 0
