"""Handler wiring: settings from the environment, clients built lazily and once, the review we build."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from completion_lambda import wiring as completion_wiring
from completion_lambda.reporting import build_review, is_review_of_task
from mm_adapters.challenge_config import ChallengeConfigLoader
from mm_adapters.status_store import StatusStore
from mm_adapters.topcoder.submission_api import SubmissionApiClient
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.settings import SettingsError
from mm_contracts.topcoder import ReviewStatus
from sweeper_lambda import wiring as sweeper_wiring
from tests.unit.completion.fakes import REVIEW_TYPE_ID, challenge_config

ENV = {
    "ENVIRONMENT_NAME": "example",
    "POWERTOOLS_SERVICE_NAME": "completion",
    "STATUS_TABLE_NAME": "mm-example-status",
    "CHALLENGE_CONFIG_PARAMETER_PREFIX": "/mm-processor/challenges",
    "SUBMISSION_API_URL": "https://api.topcoder-dev.com/v5",
    "CAPACITY_TABLE_NAME": "mm-example-capacity",
    "CAPACITY_PARAMETER_NAME": "/mm-processor/capacity",
}


@pytest.fixture
def fresh_handler_state() -> Iterator[None]:
    completion_wiring.use_dependencies(None)
    sweeper_wiring.use_dependencies(None)
    yield
    completion_wiring.use_dependencies(None)
    sweeper_wiring.use_dependencies(None)


def test_dependencies_come_from_the_environment_and_are_built_once(
    monkeypatch: pytest.MonkeyPatch, fresh_handler_state: None
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    deps = completion_wiring.dependencies()

    assert deps is completion_wiring.dependencies()
    assert deps.settings.submission_api_url == ENV["SUBMISSION_API_URL"]
    assert isinstance(deps.store, StatusStore)
    assert deps.store is deps.store
    assert isinstance(deps.config_source, ChallengeConfigLoader)
    api = deps.review_api()  # builds the token provider object; fetches no token yet
    assert isinstance(api, SubmissionApiClient)
    assert api is deps.review_api()
    assert api.base_url == ENV["SUBMISSION_API_URL"]


def test_config_parameter_names_follow_the_prefix(monkeypatch: pytest.MonkeyPatch, fresh_handler_state: None) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    loader = completion_wiring.dependencies().config_source
    assert isinstance(loader, ChallengeConfigLoader)
    assert loader._name_for("abc") == "/mm-processor/challenges/abc/config"


def test_missing_environment_fails_loudly_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, fresh_handler_state: None
) -> None:
    for name, value in ENV.items():
        if name != "SUBMISSION_API_URL":
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("SUBMISSION_API_URL", raising=False)
    with pytest.raises(SettingsError, match="SUBMISSION_API_URL"):
        completion_wiring.dependencies()


SWEEPER_ENV = {
    "ENVIRONMENT_NAME": "example",
    "POWERTOOLS_SERVICE_NAME": "timeout-sweeper",
    "STATUS_TABLE_NAME": "mm-example-status",
    "COMPLETION_FUNCTION_NAME": "mm-example-completion",
    "CAPACITY_TABLE_NAME": "mm-example-capacity",
    "CAPACITY_PARAMETER_NAME": "/mm-processor/capacity",
    "CHALLENGE_CONFIG_PARAMETER_PREFIX": "/mm-processor/challenges",
    "CHALLENGE_QUEUE_NAME_TEMPLATE": "mm-example-ch-{challenge_id}",
}


def test_sweeper_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, fresh_handler_state: None) -> None:
    for name, value in SWEEPER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAX_STOPS_PER_RUN", "7")
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "600")
    deps = sweeper_wiring.dependencies()
    assert deps.settings.max_stops_per_run == 7
    assert deps.settings.completion_function_name == "mm-example-completion"
    assert deps.settings.reconcile_grace_seconds == 600
    assert deps.settings.max_reconcile_attempts == 3  # default
    assert deps is sweeper_wiring.dependencies()


def test_sweeper_lambda_client_is_built_lazily_once(monkeypatch: pytest.MonkeyPatch, fresh_handler_state: None) -> None:
    for name, value in SWEEPER_ENV.items():
        monkeypatch.setenv(name, value)
    deps = sweeper_wiring.dependencies()
    assert deps._lambda_client is None  # building the sweeper does not build it either
    deps.sweeper()
    assert deps._lambda_client is None
    assert deps._sqs is None  # nor the capacity passes' queue client: built on the first send
    client = deps.lambda_client()
    assert client.meta.service_model.service_name == "lambda"
    assert deps.lambda_client() is client


def test_sweeper_without_completion_function_name_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, fresh_handler_state: None
) -> None:
    for name, value in SWEEPER_ENV.items():
        if name != "COMPLETION_FUNCTION_NAME":
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("COMPLETION_FUNCTION_NAME", raising=False)
    with pytest.raises(SettingsError, match="COMPLETION_FUNCTION_NAME"):
        sweeper_wiring.dependencies()


def _outcome(code: OutcomeCode, status: TestStatus) -> Outcome:
    return Outcome(code=code, test_status=status, reason="r", exit_code=None, stop_code="X", task_arn="arn:task/1")


def test_failure_review_is_completed_with_score_0() -> None:
    review = build_review(
        _outcome(OutcomeCode.TIMED_OUT, TestStatus.FAILED), challenge_config(), submission_id="s", correlation_id="c"
    )
    assert review.status is ReviewStatus.COMPLETED
    assert review.score == 0
    assert review.type_id == REVIEW_TYPE_ID
    wire = review.to_wire()
    assert wire["metadata"]["outcome"] == "TIMED_OUT"
    assert wire["metadata"]["exitCode"] is None  # kept explicit inside metadata
    assert wire["metadata"]["testType"] == "provisional"


def test_success_review_is_queued_with_the_challenge_test_type() -> None:
    review = build_review(
        _outcome(OutcomeCode.SUCCEEDED, TestStatus.SUCCESS),
        challenge_config(test_type="system"),
        submission_id="s",
        correlation_id="c",
    )
    assert review.status is ReviewStatus.QUEUED
    assert review.metadata["testStatus"] == "SUCCESS"
    assert review.metadata["testType"] == "system"


@pytest.mark.parametrize(
    ("review", "ours"),
    [
        ({"metadata": {"taskArn": "arn:task/1"}}, True),
        ({"metadata": {"taskArn": "arn:task/2"}}, False),
        ({"metadata": None}, False),
        ({}, False),
    ],
)
def test_is_review_of_task(review: dict[str, object], ours: bool) -> None:
    assert is_review_of_task(review, "arn:task/1") is ours


def test_the_completion_capacity_ports_are_built_once_without_an_aws_call(
    monkeypatch: pytest.MonkeyPatch, fresh_handler_state: None
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    deps = completion_wiring.dependencies()

    deps.service()

    assert deps.freed_slots is deps.freed_slots
    assert deps.capacity_store is deps.capacity_store
    assert deps._sqs is None
