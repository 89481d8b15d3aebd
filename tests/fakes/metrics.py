"""The one metrics fake: `mm_contracts.ports.MetricsSink`, recording every count and every gauge."""

from __future__ import annotations

from collections import Counter

from mm_contracts.metric_names import Metric


class RecordingMetrics:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str | None]] = Counter()
        self.phases: Counter[tuple[str, str | None]] = Counter()  # (metric, phase) of per-run counts
        # (metric, challenge id or None for the environment's line) -> every value published, in order
        self.gauges: dict[tuple[str, str | None], list[float]] = {}

    def count(self, metric: Metric, value: int = 1, *, reason: str | None = None, phase: str | None = None) -> None:
        self.counts[(metric.value, reason)] += value
        if phase is not None:
            self.phases[(metric.value, phase)] += value

    def gauge(self, metric: Metric, value: float, *, challenge_id: str | None = None, seconds: bool = False) -> None:
        self.gauges.setdefault((metric.value, challenge_id), []).append(value)

    def last_gauge(self, metric: Metric, challenge_id: str | None = None) -> float | None:
        values = self.gauges.get((metric.value, challenge_id))
        return values[-1] if values else None

    def total(self, metric: Metric) -> int:
        return sum(n for (name, _), n in self.counts.items() if name == metric.value)

    def reasons(self, metric: Metric) -> dict[str | None, int]:
        return {reason: n for (name, reason), n in self.counts.items() if name == metric.value}

    def counted(self) -> list[tuple[str, str | None]]:
        """Every (metric, reason) counted, one entry per unit, in the order each pair was first counted."""
        return list(self.counts.elements())
