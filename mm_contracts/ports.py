"""The ports: the one interface per outside concept that the functions' logic is written against.

Logic takes these (never a Powertools object or a boto3 client type), so a test passes a fake and a function
passes the adapter from `mm_adapters`:

- `MetricsSink`: counts and gauges (adapter: `mm_adapters.metrics.EmfMetricsSink`; fake: `tests.fakes.metrics`).
- `LogSink`: what shared logic logs through (the standard library's and Powertools' `Logger` both fit).
- `TokenProvider`: the Topcoder M2M token (adapters: `mm_adapters.topcoder.token`).
- `Clock`: epoch seconds now (production: `time.time`; tests: `tests.fakes.clock`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from mm_contracts.metric_names import Metric


@runtime_checkable
class MetricsSink(Protocol):
    """One signature for every function. `count` adds `value` (default 1) to a counter, with an optional
    `Reason` and (per-run counts, decision 085) `Phase` dimension. `gauge` publishes a value at this moment:
    per challenge with `challenge_id`, else the environment's own line (what alarms watch)."""

    def count(self, metric: Metric, value: int = 1, *, reason: str | None = None, phase: str | None = None) -> None: ...

    def gauge(
        self, metric: Metric, value: float, *, challenge_id: str | None = None, seconds: bool = False
    ) -> None: ...


class LogSink(Protocol):
    """What shared logic logs through: the standard library's Logger and Powertools' Logger both fit (so the
    shared packages never import Powertools for logging, and each function keeps its own correlation ids)."""

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...
    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...
    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...
    def exception(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...


class TokenProvider(Protocol):
    """A Topcoder M2M bearer token; `force_refresh` after a 401 (decision 031)."""

    def get_token(self, force_refresh: bool = False) -> str: ...


class Clock(Protocol):
    """Epoch seconds now."""

    def __call__(self) -> float: ...
