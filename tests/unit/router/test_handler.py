"""The handler is glue: settings once per environment, a SettingsError names the bad variable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mm_contracts.settings import RouterSettings, SettingsError
from router_lambda import handler as handler_module
from tests.builders import msk_event
from tests.unit.router.support import router_env


@pytest.fixture
def clean_router(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in RouterSettings.env_var_names():
        monkeypatch.delenv(name, raising=False)
    handler_module.reset()
    yield monkeypatch
    handler_module.reset()


@pytest.mark.parametrize(
    "missing",
    ["SNS_TOPIC_ARN", "AUDIT_QUEUE_URL", "CHALLENGE_TABLE_NAME", "AUDIT_MARKS_TABLE_NAME", "ALLOWED_URL_HOSTS"],
)
def test_missing_variable_is_named(clean_router: pytest.MonkeyPatch, missing: str, lambda_context: Any) -> None:
    for name, value in router_env().items():
        if name != missing:
            clean_router.setenv(name, value)
    with pytest.raises(SettingsError, match=missing):
        handler_module.handler(msk_event([]), lambda_context)


def test_malformed_variable_is_named(clean_router: pytest.MonkeyPatch) -> None:
    for name, value in router_env(PUBLISH_MAX_ATTEMPTS="zero").items():
        clean_router.setenv(name, value)
    with pytest.raises(SettingsError, match="PUBLISH_MAX_ATTEMPTS"):
        handler_module.get_router()


def test_settings_are_loaded_once_per_environment(clean_router: pytest.MonkeyPatch) -> None:
    for name, value in router_env().items():
        clean_router.setenv(name, value)
    first = handler_module.get_router()
    clean_router.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:other")
    assert handler_module.get_router() is first  # warm: same router, same cache
    handler_module.reset()
    assert handler_module.get_router().settings.sns_topic_arn.endswith(":other")
