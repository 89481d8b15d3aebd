"""The dispatcher's and reconciler's callbacks, built from what every function that ends runs already has: a
challenge config source and a `MetricsSink` (the completion function and the sweeper build theirs the same way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mm_adapters.challenge_config import ChallengeConfigError
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.ports import LogSink, MetricsSink


def dispatcher_metrics(metrics: MetricsSink) -> Callable[[Metric, str | None], None]:
    """The dispatcher's and reconciler's metric callback on a function's sink. The dispatcher's second value is
    a challenge id (RunsAdmitted), the reconciler's a reason (SlotsReconciled): only reasons become a dimension;
    the per-challenge picture is the gauges'."""

    def count(metric: Metric, dimension: str | None) -> None:
        metrics.count(metric, reason=dimension if metric is Metric.SLOTS_RECONCILED else None)

    return count


def challenge_settings_of(config_source: Any, *, logger: LogSink) -> Callable[[str], ChallengeConfig | None]:
    """The dispatcher's config lookup: a challenge whose config cannot be read or used is skipped this time
    (its runs keep waiting; the next trigger or sweep looks again) rather than failing the whole dispatch."""

    def lookup(challenge_id: str) -> ChallengeConfig | None:
        try:
            config: ChallengeConfig = config_source.get(challenge_id)
        except ChallengeConfigError as error:
            logger.warning(
                "challenge config unusable: its waiting runs are not admitted this time",
                extra={"challenge_id": challenge_id, "config_error": error.reason.value},
            )
            return None
        return config

    return lookup
