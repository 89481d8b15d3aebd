"""One environment-config model per function.

A field `status_table_name` is read from the environment variable `STATUS_TABLE_NAME`. The CDK
constructs build each function's environment with `to_env()` of these same models, and a test holds
the synthesized environment and `env_var_names()` together, so the two cannot drift.

A missing or malformed variable fails at cold start with the variable's name (`SettingsError`).

This module is the index: each model lives in `mm_contracts/env_settings/` and loads on first use (PEP 562
`__getattr__`), so a function's cold start builds its own settings model and the base, not the other functions'
(decision 112). Import the models from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mm_contracts.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from mm_contracts.env_settings.base import LAMBDA_ASYNC_RETRY_WINDOW_SECONDS, EnvSettings, SettingsError
    from mm_contracts.env_settings.certificate_monitor import CertificateMonitorSettings
    from mm_contracts.env_settings.challenge_processor import ChallengeProcessorSettings
    from mm_contracts.env_settings.completion import CompletionSettings
    from mm_contracts.env_settings.router import RouterSettings
    from mm_contracts.env_settings.scorer_token_refresher import ScorerTokenRefresherSettings
    from mm_contracts.env_settings.timeout_sweeper import TimeoutSweeperSettings
    from mm_contracts.env_settings.token import TokenSettings, TokenSource

# Name -> the module of `mm_contracts.env_settings` that defines it.
_MODULE = {
    "LAMBDA_ASYNC_RETRY_WINDOW_SECONDS": "base",
    "EnvSettings": "base",
    "SettingsError": "base",
    "TokenSettings": "token",
    "TokenSource": "token",
    "RouterSettings": "router",
    "ChallengeProcessorSettings": "challenge_processor",
    "CompletionSettings": "completion",
    "TimeoutSweeperSettings": "timeout_sweeper",
    "CertificateMonitorSettings": "certificate_monitor",
    "ScorerTokenRefresherSettings": "scorer_token_refresher",
}


__getattr__ = lazy_exports(__name__, {name: f"mm_contracts.env_settings.{module}" for name, module in _MODULE.items()})


__all__ = [
    "LAMBDA_ASYNC_RETRY_WINDOW_SECONDS",
    "CertificateMonitorSettings",
    "ChallengeProcessorSettings",
    "CompletionSettings",
    "EnvSettings",
    "RouterSettings",
    "ScorerTokenRefresherSettings",
    "SettingsError",
    "TimeoutSweeperSettings",
    "TokenSettings",
    "TokenSource",
]
