"""The certificate monitor's dependencies, built from `CertificateMonitorSettings`, and its one test seam.

`dependencies()` builds them once per process from the environment; each part is built on first use (no AWS
client at import time). `use_dependencies(deps)` installs others (tests); `use_dependencies(None)` forgets them,
so the next call rebuilds from the environment. See docs/decisions/099.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from mm_adapters import aws
from mm_adapters.dependency_slot import DependencySlot
from mm_adapters.metrics import EmfMetricsSink
from mm_contracts.ports import MetricsSink
from mm_contracts.settings import CertificateMonitorSettings


class CertificateMonitorDependencies:
    """The Secrets Manager client and the metrics sink; keyword overrides replace them (tests)."""

    def __init__(
        self, settings: CertificateMonitorSettings, *, secrets: Any | None = None, metrics: MetricsSink | None = None
    ) -> None:
        self.settings = settings
        self._secrets = secrets
        self._metrics = metrics

    @property
    def secrets(self) -> Any:
        return self._secrets if self._secrets is not None else aws.client("secretsmanager")

    @property
    def metrics(self) -> MetricsSink:
        """Dimensions Environment and service (what the alarm names); days are a plain number (Unit None)."""
        if self._metrics is None:
            self._metrics = EmfMetricsSink.for_function(self.settings, gauge_unit=MetricUnit.NoUnit)
        return self._metrics


_slot = DependencySlot(lambda: CertificateMonitorDependencies(CertificateMonitorSettings.from_env()))


def dependencies() -> CertificateMonitorDependencies:
    return _slot.get()


def use_dependencies(deps: CertificateMonitorDependencies | None) -> None:
    _slot.use(deps)
