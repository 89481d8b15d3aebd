"""A metrics sink that records every count (both functions' `MetricsSink` protocol)."""

from __future__ import annotations

from collections import Counter

from mm_shared.observability import Metric


class RecordingMetrics:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str | None]] = Counter()
        self.phases: Counter[tuple[str, str | None]] = Counter()  # (metric, phase) of per-run counts

    def count(self, metric: Metric, *, reason: str | None = None, phase: str | None = None) -> None:
        self.counts[(metric.value, reason)] += 1
        if phase is not None:
            self.phases[(metric.value, phase)] += 1

    def total(self, metric: Metric) -> int:
        return sum(n for (name, _), n in self.counts.items() if name == metric.value)

    def reasons(self, metric: Metric) -> dict[str | None, int]:
        return {reason: n for (name, reason), n in self.counts.items() if name == metric.value}
