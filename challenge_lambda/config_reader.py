"""This challenge's config, as the processor acts on it: read from SSM through the cached loader, checked for what
a launch needs, and re-read (never trusted from the cache) after an error that may be the config's fault.

The processor hands in the version it read in its challenge pool item (`observe`, decision 121): the cached config
of that version is used whatever its age, so a warm function reads SSM only when the version changes; `version` is
the version of the config last returned (the launch records it on the run item)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from challenge_lambda.outcomes import ConfigUnusable
from mm_adapters.challenge_config import ChallengeConfigError, ChallengeConfigLoader, ConfigErrorReason
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.ports import MetricsSink


class ChallengeConfigReader:
    def __init__(self, challenge_id: str, loader: ChallengeConfigLoader, *, metrics: MetricsSink, logger: Logger):
        self.challenge_id = challenge_id
        self.loader = loader
        self._metrics = metrics
        self._logger = logger
        # Set after a config error or a configuration-class RunTask error: the next message (on this
        # warm instance) re-reads the parameter instead of trusting the cache.
        self._refresh = False

    def observe(self, version: int | None) -> None:
        """This challenge's config version as its pool item names it (`configVersion`); None changes nothing."""
        self.loader.observe(self.challenge_id, version)

    @property
    def version(self) -> int | None:
        """The SSM version of this challenge's cached config (None before a read, or when SSM named none)."""
        return self.loader.version_of(self.challenge_id)

    def refresh_next(self) -> None:
        """The next read goes to SSM (the cached config may be what failed)."""
        self._refresh = True

    def invalidate(self) -> None:
        """Forget every cached config (tests: the cache expired meanwhile)."""
        self.loader.invalidate()

    def get(self, ids: dict[str, str]) -> ChallengeConfig:
        """The config, or `ConfigUnusable` (counted and logged)."""
        try:
            config = self.loader.get(self.challenge_id, force_refresh=self._refresh)
            if not config.subnets:
                raise ChallengeConfigError(
                    self.challenge_id,
                    "(loaded config)",
                    ConfigErrorReason.INVALID_FIELDS,
                    "subnets: Fargate awsvpc networking needs at least one subnet",
                )
        except ChallengeConfigError as error:
            self._refresh = True
            self.loader.invalidate(self.challenge_id)
            self._metrics.count(Metric.CONFIG_ERRORS)
            self._logger.error(
                "challenge config unusable",
                extra={
                    "config_error": error.reason.value,
                    "config_detail": error.detail,
                    "parameter": error.parameter_name,
                    **ids,
                },
            )
            raise ConfigUnusable(error.reason.value, str(error)) from None
        self._refresh = False
        return config

    def own_settings(self, challenge_id: str) -> ChallengeConfig | None:
        """The dispatcher's view of challenge configs: only this challenge's (cached), None when unusable."""
        if challenge_id != self.challenge_id:
            return None
        try:
            return self.loader.get(challenge_id)
        except ChallengeConfigError:
            return None
