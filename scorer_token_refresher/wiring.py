"""The scorer-token refresher's dependencies, built from `ScorerTokenRefresherSettings`, and its one test seam.

`dependencies()` builds them once per process from the environment (a warm start reuses the provider's cached
token and credentials); each part is built on first use (no AWS client at import time). `use_dependencies(deps)`
installs others (tests); `use_dependencies(None)` forgets them, so the next call rebuilds from the environment.
See docs/decisions/099.
"""

from __future__ import annotations

from typing import Any

from mm_adapters import aws
from mm_adapters.dependency_slot import DependencySlot
from mm_adapters.metrics import EmfMetricsSink
from mm_adapters.topcoder.token import Auth0ProxyTokenProvider
from mm_contracts.ports import MetricsSink, TokenProvider
from mm_contracts.settings import ScorerTokenRefresherSettings


def token_provider_for(settings: ScorerTokenRefresherSettings, **overrides: Any) -> Auth0ProxyTokenProvider:
    """The provider with the refresher's margin as its own, so it never hands back a token that would need
    replacing at once: when the proxy's cached token falls inside the margin it asks for a fresh one (031).
    `overrides`: the provider's seams (transport, secrets_client, clock) for tests."""
    return Auth0ProxyTokenProvider(
        settings.auth0_proxy_url,
        settings.auth0_credentials_secret_arn,
        refresh_margin_seconds=settings.refresh_margin_seconds,
        **overrides,
    )


class ScorerTokenRefresherDependencies:
    """The SSM client, the token provider and the metrics sink; keyword overrides replace them (tests)."""

    def __init__(
        self,
        settings: ScorerTokenRefresherSettings,
        *,
        ssm: Any | None = None,
        token_provider: TokenProvider | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.settings = settings
        self._ssm = ssm
        self._token_provider = token_provider
        self._metrics = metrics

    @property
    def ssm(self) -> Any:
        return self._ssm if self._ssm is not None else aws.client("ssm")

    @property
    def token_provider(self) -> TokenProvider:
        if self._token_provider is None:
            self._token_provider = token_provider_for(self.settings)
        return self._token_provider

    @property
    def metrics(self) -> MetricsSink:
        """Dimensions Environment and service (what the alarm names)."""
        if self._metrics is None:
            self._metrics = EmfMetricsSink.for_function(self.settings)
        return self._metrics


_slot = DependencySlot(lambda: ScorerTokenRefresherDependencies(ScorerTokenRefresherSettings.from_env()))


def dependencies() -> ScorerTokenRefresherDependencies:
    return _slot.get()


def use_dependencies(deps: ScorerTokenRefresherDependencies | None) -> None:
    _slot.use(deps)
