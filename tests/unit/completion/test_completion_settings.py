"""CompletionSettings: the report lease and the slow-commit window must fit Lambda's async retries (defect 7)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mm_contracts.settings import LAMBDA_ASYNC_RETRY_WINDOW_SECONDS, CompletionSettings, SettingsError

REQUIRED = {
    "environment_name": "example",
    "status_table_name": "t",
    "challenge_config_parameter_prefix": "/mm-processor/challenges",
    "submission_api_url": "https://api.topcoder-dev.com/v5",
    "capacity_table_name": "mm-example-capacity",
    "capacity_parameter_name": "/mm-processor/capacity",
}


def settings(**values: Any) -> CompletionSettings:
    return CompletionSettings(**REQUIRED, **values)


def test_the_deployed_lease_and_window_fit_the_retry_window() -> None:
    deployed = settings(report_lease_seconds=90)
    assert deployed.report_lease_seconds + deployed.report_slow_commit_seconds <= LAMBDA_ASYNC_RETRY_WINDOW_SECONDS


def test_a_lease_that_with_the_window_outlasts_the_last_async_retry_is_refused() -> None:
    with pytest.raises(ValidationError, match="REPORT_LEASE_SECONDS \\+ REPORT_SLOW_COMMIT_SECONDS"):
        settings(report_lease_seconds=150)  # + 60 s window > 180 s


def test_the_refusal_names_the_variables_at_cold_start() -> None:
    env = {name.upper(): str(value) for name, value in REQUIRED.items()} | {"REPORT_LEASE_SECONDS": "170"}
    with pytest.raises(SettingsError, match="REPORT_LEASE_SECONDS"):
        CompletionSettings.from_env(env)


@pytest.mark.parametrize("template", ["mm-dev-ch-", "mm-dev-ch-{challengeId}", "https://sqs/x/{challenge_id}"])
def test_the_queue_name_template_must_be_a_queue_name_with_the_challenge_placeholder(template: str) -> None:
    with pytest.raises(ValidationError):
        settings(challenge_queue_name_template=template)


def test_relaunch_settings_round_trip_through_the_environment() -> None:
    original = settings(challenge_queue_name_template="mm-dev-ch-{challenge_id}", max_start_relaunches=1)
    assert CompletionSettings.from_env(original.to_env()) == original
