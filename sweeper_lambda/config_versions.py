"""The config versions pass (decision 121; before the capacity passes): the SSM versions of the caps and of each
challenge's config, stamped on the capacity pool items, so that a warm function reads SSM only when a version changes
(and none per run).

One GetParameters per 10 parameters per sweep (the caps and every pooled challenge's config, versions only), one
Query of the POOL partition, and an UpdateItem per pool item whose stamp changed. A change made outside the
operator's `caps set` (a deploy, the console) is stamped within seconds by this pass alone, run on its Parameter
Store change event (`sweeper_lambda.parameter_change`), and within one sweep (`sweeper_interval_minutes`) should
that event be lost; `caps set` stamps at once. The sweeper's own loaders observe the versions read here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from mm_capacity.config import VersionStamps, VersionSync
from sweeper_lambda.result import SweepResult


class ConfigVersionsPass:
    def __init__(
        self,
        stamps: VersionStamps,
        *,
        ssm: Callable[[], Any],
        caps_parameter: str,
        config_name_for: Callable[[str], str],
        logger: Logger,
        caps_loader: Any | None = None,
        config_loader: Any | None = None,
    ) -> None:
        self._stamps = stamps
        self._ssm = ssm
        self._caps_parameter = caps_parameter
        self._config_name_for = config_name_for
        self._logger = logger
        # The sweeper's own loaders (when they can observe: tests may hand in plain callables and fakes).
        self._caps_observe = getattr(caps_loader, "observe", None)
        self._config_observe = getattr(config_loader, "observe", None)

    def run(self, now: float, result: SweepResult) -> None:
        """Stamp what changed; the count is in this pass's own log line (the sweep's summary keeps its keys)."""
        self.stamp()

    def stamp(self) -> VersionSync:
        """The pass alone (also on a Parameter Store change event, `sweeper_lambda.parameter_change`): compare-and-set
        on what it read, so it may run beside a scheduled sweep's pass without undoing either."""
        sync = self._stamps.sync(self._ssm(), self._caps_parameter, self._config_name_for)
        if self._caps_observe is not None:
            self._caps_observe(sync.caps_version)
        if self._config_observe is not None:
            for challenge_id, version in sync.config_versions.items():
                self._config_observe(challenge_id, version)
        if sync.stamped or sync.raced:
            self._logger.info(
                "config versions stamped on the pool items",
                extra={
                    "caps_version": sync.caps_version,
                    "stamped": sync.stamped,
                    "raced": sync.raced,
                    "missing_configs": sorted(cid for cid, v in sync.config_versions.items() if v is None),
                },
            )
        return sync
