"""What the scorer task is told about its Topcoder M2M credentials, per `ScorerCredentialsMode`.

Anything in RunTask overrides is visible in DescribeTasks, the task's EventBridge events and
CloudTrail, so only ENVIRONMENT_TOKEN_INSECURE ever puts a secret there, and only when a challenge's
config opts in (a documented compatibility risk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mm_contracts.models.challenge import ScorerCredentialsMode
from mm_contracts.models.task import TaskEnv
from mm_contracts.ports import TokenProvider
from mm_contracts.settings import TokenSettings

TokenProviderFactory = Callable[[], TokenProvider]


class TokenUnavailableError(Exception):
    """The insecure mode needed a token and could not get one (message never carries the token)."""


@dataclass(frozen=True)
class ScorerCredentials:
    environment: tuple[tuple[str, str], ...] = ()
    secret_values: tuple[str, ...] = field(default=(), repr=False)  # what every log and reason must redact
    insecure: bool = False


def default_token_provider_factory(settings: TokenSettings) -> TokenProviderFactory:
    """Build the shared token provider only when first needed (insecure mode only)."""

    def build() -> TokenProvider:
        from mm_adapters.topcoder.token import build_token_provider

        provider: TokenProvider = build_token_provider(settings)
        return provider

    return build


class ScorerCredentialResolver:
    def __init__(self, *, token_parameter_name: str, token_provider_factory: TokenProviderFactory) -> None:
        self._parameter_name = token_parameter_name
        self._factory = token_provider_factory
        self._provider: TokenProvider | None = None

    def resolve(self, mode: ScorerCredentialsMode) -> ScorerCredentials:
        if mode is ScorerCredentialsMode.TASK_DEFINITION_SECRETS:
            return ScorerCredentials()  # the task definition's `secrets` inject them; pass nothing
        if mode is ScorerCredentialsMode.PARAMETER_REFERENCE:
            return ScorerCredentials(environment=((TaskEnv.TOKEN_PARAMETER.value, self._parameter_name),))
        if mode is ScorerCredentialsMode.ENVIRONMENT_TOKEN_INSECURE:
            try:
                if self._provider is None:
                    self._provider = self._factory()
                token = self._provider.get_token()
            except Exception as error:
                # Only the class name: a provider's message could quote a response body.
                raise TokenUnavailableError(f"M2M token unavailable ({type(error).__name__})") from None
            if not token:
                raise TokenUnavailableError("M2M token unavailable (empty)")
            return ScorerCredentials(
                environment=((TaskEnv.M2M_TOKEN.value, token),), secret_values=(token,), insecure=True
            )
        raise ValueError(f"unknown scorer credentials mode {mode!r}")  # pragma: no cover - exhaustive enum


__all__ = [
    "ScorerCredentialResolver",
    "ScorerCredentials",
    "TokenProviderFactory",
    "TokenUnavailableError",
    "default_token_provider_factory",
]
