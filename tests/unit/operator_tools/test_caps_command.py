"""`mm-processor caps show|set`: the caps documents in SSM, validated before they are written, and audited."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm_contracts.names import capacity_parameter_name, challenge_config_parameter_name
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import capacity_store, cli, output_json, waiting_run


def _parameter(deployed: Deployed, name: str) -> tuple[dict[str, Any], int]:
    found = deployed.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    return json.loads(found["Value"]), int(found["Version"])


def _env_name(deployed: Deployed) -> str:
    return capacity_parameter_name(deployed.plan.config.ssm_prefix)


def _challenge_name(deployed: Deployed) -> str:
    return challenge_config_parameter_name(ROUTE_PLANNER, deployed.plan.config.ssm_prefix)


def test_set_the_environments_caps_changes_only_the_named_fields_and_audits_it(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    before, version = _parameter(deployed, _env_name(deployed))
    assert cli("caps", "set", "--environment", "--max-running", "7", "--yes", "--reason", "quota raised", "--json") == 0
    document = output_json(capsys)
    after, new_version = _parameter(deployed, _env_name(deployed))
    assert after == {**before, "maxRunningTasks": 7}
    assert new_version == version + 1
    assert document["concurrentWrite"] is False
    [(change, detail)] = capacity_store(deployed).challenge_changes("ENV")
    assert (change.action, change.reason) == ("set-caps", "quota raised")
    assert f"maxRunningTasks: {json.dumps(before.get('maxRunningTasks'))} -> 7" in detail


def test_set_a_challenges_caps_and_phase_caps(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    before, _ = _parameter(deployed, _challenge_name(deployed))
    argv = ["caps", "set", ROUTE_PLANNER, "--max-running", "2", "--phase-cap", "system=1", "--yes", "--reason", "r"]
    assert cli(*argv) == 0
    out = capsys.readouterr().out
    after, _ = _parameter(deployed, _challenge_name(deployed))
    assert after["capacity"]["maxRunningTasks"] == 2
    assert after["capacity"]["maxRunningTasksPerPhase"] == {"SYSTEM": 1}
    assert {key: value for key, value in after.items() if key != "capacity"} == {
        key: value for key, value in before.items() if key != "capacity"
    }
    assert "within 300 s" in out
    assert "the next deploy that changes this parameter writes the config's value over it" in out
    [(change, _)] = capacity_store(deployed).challenge_changes(ROUTE_PLANNER)
    assert change.action == "set-caps"


def test_an_invalid_document_is_never_written(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    before = _parameter(deployed, _env_name(deployed))
    assert cli("caps", "set", "--environment", "--run-task-per-second", "500", "--yes", "--reason", "r") == 1
    assert "would be invalid" in capsys.readouterr().err
    assert _parameter(deployed, _env_name(deployed)) == before
    assert capacity_store(deployed).challenge_changes("ENV") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--environment", "--phase-cap", "SYSTEM=1"],
        [ROUTE_PLANNER, "--max-vcpu", "4"],
        [ROUTE_PLANNER, "--phase-cap", "NOPE=1"],
        [ROUTE_PLANNER],
    ],
)
def test_options_that_do_not_fit_the_target_are_refused(deployed: Deployed, argv: list[str]) -> None:
    before = _parameter(deployed, _challenge_name(deployed))
    assert cli("caps", "set", *argv, "--yes", "--reason", "r") == 2
    assert _parameter(deployed, _challenge_name(deployed)) == before


def test_dry_run_shows_before_and_after_and_writes_nothing(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _parameter(deployed, _challenge_name(deployed))
    assert cli("caps", "set", ROUTE_PLANNER, "--max-running", "0", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "capacity.maxRunningTasks:" in out
    assert "-> 0" in out
    assert "dry run: nothing changed" in out
    assert _parameter(deployed, _challenge_name(deployed)) == before


def test_a_missing_challenge_config_is_named(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert cli("caps", "set", missing, "--max-running", "1", "--yes", "--reason", "r") == 1
    assert f"no parameter {challenge_config_parameter_name(missing, deployed.plan.config.ssm_prefix)}" in (
        capsys.readouterr().err
    )


def test_show_prints_the_documents_the_live_counts_and_the_pause(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting_run(deployed, ROUTE_PLANNER, 1)
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "hold") == 0
    capsys.readouterr()
    assert cli("caps", "show", ROUTE_PLANNER, "--json") == 0
    document = output_json(capsys)
    assert document["environmentCaps"] == _parameter(deployed, _env_name(deployed))[0]
    challenge = document["challenge"]
    assert challenge["caps"] == _parameter(deployed, _challenge_name(deployed))[0]["capacity"]
    assert (challenge["waiting"], challenge["paused"], challenge["pauseReason"]) == (1, True, "hold")
    assert cli("caps", "show", ROUTE_PLANNER) == 0
    out = capsys.readouterr().out
    assert "PAUSED" in out
    assert "waiting 1" in out
