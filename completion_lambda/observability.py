"""Powertools logger/metrics/tracer of the completion and sweeper functions, and a small metrics port.

Creating these objects touches no AWS service; the service name comes from POWERTOOLS_SERVICE_NAME,
so each function logs under its own name although both live in this package.
"""

from __future__ import annotations

import warnings
from typing import Protocol, runtime_checkable

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from mm_contracts.metric_names import CHALLENGE_DIMENSION, ENVIRONMENT_DIMENSION, REASON_DIMENSION, Metric

# Expected, not a fault: an invocation that only emits Reason-dimensioned metrics (own EMF lines) or
# none at all (an ignored event) leaves the batched set empty.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def set_environment_dimension(environment_name: str) -> None:
    """Once per container: re-setting an existing default dimension warns on every warm invocation."""
    if metrics.default_dimensions.get(ENVIRONMENT_DIMENSION) != environment_name:
        metrics.set_default_dimensions(**{ENVIRONMENT_DIMENSION: environment_name})


class MetricsSink(Protocol):
    def count(self, metric: Metric, *, reason: str | None = None) -> None: ...


@runtime_checkable
class GaugeSink(Protocol):
    """A value at this moment (the sweeper's capacity gauges): per challenge with `challenge_id`, else the
    environment's own line (what alarms watch)."""

    def gauge(
        self, metric: Metric, value: float, *, challenge_id: str | None = None, seconds: bool = False
    ) -> None: ...


class PowertoolsMetricsSink:
    """Counts as EMF: plain metrics batched per invocation; a Reason-dimensioned one on its own line."""

    def __init__(self, environment_name: str, powertools_metrics: Metrics | None = None) -> None:
        self._metrics = powertools_metrics or metrics
        self._environment = environment_name

    def count(self, metric: Metric, *, reason: str | None = None) -> None:
        if reason is None:
            self._metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=1)
            return
        # A different dimension set needs its own EMF document.
        with single_metric(
            name=metric.value,
            unit=MetricUnit.Count,
            value=1,
            namespace=self._metrics.namespace,
            default_dimensions={ENVIRONMENT_DIMENSION: self._environment},
        ) as single:
            single.add_dimension(name=REASON_DIMENSION, value=reason)

    def gauge(self, metric: Metric, value: float, *, challenge_id: str | None = None, seconds: bool = False) -> None:
        # Each on its own EMF line: the Environment-only and the Environment+ChallengeId sets are different
        # metrics in CloudWatch, and the batched default dimensions must not be added to either.
        with single_metric(
            name=metric.value,
            unit=MetricUnit.Seconds if seconds else MetricUnit.Count,
            value=value,
            namespace=self._metrics.namespace,
            default_dimensions={ENVIRONMENT_DIMENSION: self._environment},
        ) as single:
            if challenge_id is not None:
                single.add_dimension(name=CHALLENGE_DIMENSION, value=challenge_id)


class RecordingMetricsSink:
    """In-memory sink (tests, local pipeline): a list of (metric, reason), and the gauges as (metric, value,
    challenge id or None for the environment's line)."""

    def __init__(self) -> None:
        self.counts: list[tuple[Metric, str | None]] = []
        self.gauges: list[tuple[Metric, float, str | None]] = []

    def count(self, metric: Metric, *, reason: str | None = None) -> None:
        self.counts.append((metric, reason))

    def gauge(self, metric: Metric, value: float, *, challenge_id: str | None = None, seconds: bool = False) -> None:
        self.gauges.append((metric, value, challenge_id))

    def last_gauge(self, metric: Metric, challenge_id: str | None = None) -> float | None:
        """The latest value of a gauge line (None: never emitted)."""
        values = [v for name, v, challenge in self.gauges if name is metric and challenge == challenge_id]
        return values[-1] if values else None

    def reasons(self, metric: Metric) -> list[str | None]:
        return [reason for name, reason in self.counts if name is metric]
