"""The handler is glue: dependencies once per environment (the one seam), a SettingsError names the bad variable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mm_contracts.settings import RouterSettings, SettingsError
from router_lambda import handler as handler_module
from router_lambda import wiring
from tests.builders import msk_event
from tests.unit.router.support import router_env


@pytest.fixture
def clean_router(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in RouterSettings.env_var_names():
        monkeypatch.delenv(name, raising=False)
    wiring.use_dependencies(None)
    yield monkeypatch
    wiring.use_dependencies(None)


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
        wiring.dependencies()


def test_settings_are_loaded_once_per_environment(clean_router: pytest.MonkeyPatch) -> None:
    for name, value in router_env().items():
        clean_router.setenv(name, value)
    first = wiring.dependencies().router
    clean_router.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:other")
    assert wiring.dependencies().router is first  # warm: same router, same cache
    wiring.use_dependencies(None)  # forget: the next call rebuilds from the environment
    assert wiring.dependencies().router.settings.sns_topic_arn.endswith(":other")


def test_installed_dependencies_are_what_the_handler_uses(clean_router: pytest.MonkeyPatch) -> None:
    for name, value in router_env().items():
        clean_router.setenv(name, value)
    installed = wiring.RouterDependencies(RouterSettings.from_env())
    wiring.use_dependencies(installed)
    assert wiring.dependencies() is installed
    assert installed.router is installed.router  # built once, on first use
