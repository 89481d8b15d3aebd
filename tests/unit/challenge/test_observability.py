"""The challenge function's metrics (`ChallengeDependencies.metrics`, an `EmfMetricsSink`): EMF lines with this
function's dimensions, and no state shared between two functions in one process."""

from __future__ import annotations

import json
from typing import Any

from challenge_lambda.wiring import ChallengeDependencies
from mm_adapters.metrics import EmfMetricsSink
from mm_contracts.metric_names import Metric
from mm_contracts.settings import ChallengeProcessorSettings
from tests.unit.challenge.helpers import CHALLENGE_ID, OTHER_CHALLENGE_ID, PARAMETER_NAME, capacity_settings_env


def _sink(challenge_id: str = CHALLENGE_ID) -> Any:
    settings = ChallengeProcessorSettings.from_env(
        {
            "ENVIRONMENT_NAME": "dev",
            "CHALLENGE_ID": challenge_id,
            "CHALLENGE_CONFIG_PARAMETER": PARAMETER_NAME,
            "STATUS_TABLE_NAME": "mm-dev-status",
            "ALLOWED_URL_HOSTS": "topcoder-submissions.s3.amazonaws.com",
            "POWERTOOLS_SERVICE_NAME": "challenge-processor",
            **capacity_settings_env("mm-dev-capacity"),
        }
    )
    sink = ChallengeDependencies(settings).metrics
    assert isinstance(sink, EmfMetricsSink)  # the one metrics adapter
    return sink


def _emf(out: str) -> list[dict[str, Any]]:
    return [doc for doc in (json.loads(line) for line in out.splitlines() if line.startswith("{")) if "_aws" in doc]


def test_each_count_is_an_emf_line_with_environment_challenge_and_reason(capsys: Any) -> None:
    sink = _sink()

    sink.count(Metric.TASKS_LAUNCHED)
    sink.count(Metric.LAUNCH_FAILURES, reason="Throttling")

    launched, failed = _emf(capsys.readouterr().out)
    assert launched["TasksLaunched"] == [1.0]
    assert (launched["Environment"], launched["ChallengeId"]) == ("dev", CHALLENGE_ID)
    assert "Reason" not in launched
    assert failed["LaunchFailures"] == [1.0]
    assert failed["Reason"] == "Throttling"
    assert failed["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MMProcessor"
    assert failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Environment", "ChallengeId", "service", "Reason"]]


def test_two_sinks_in_one_process_keep_their_own_challenge(capsys: Any) -> None:
    first = _sink(CHALLENGE_ID)
    second = _sink(OTHER_CHALLENGE_ID)

    first.count(Metric.TASKS_LAUNCHED)
    second.count(Metric.TASKS_LAUNCHED)

    assert [doc["ChallengeId"] for doc in _emf(capsys.readouterr().out)] == [CHALLENGE_ID, OTHER_CHALLENGE_ID]


def test_a_per_run_count_carries_its_phase(capsys: Any) -> None:
    sink = _sink()

    sink.count(Metric.LAUNCH_FAILURES, reason="Throttling", phase="EXAMPLE")
    sink.count(Metric.CONFIG_ERRORS)

    per_run, per_message = _emf(capsys.readouterr().out)
    assert per_run["Phase"] == "EXAMPLE"
    assert per_run["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Environment", "ChallengeId", "service", "Reason", "Phase"]
    ]
    assert "Phase" not in per_message
