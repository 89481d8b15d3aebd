"""`mm-processor audit CHALLENGE_ID`: the challenge's operator changes, newest first."""

from __future__ import annotations

import pytest

from tests.builders import new_uuid
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import cli, output_json


def test_audit_lists_pause_resume_and_caps_newest_first(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "scorer bug") == 0
    assert cli("caps", "set", ROUTE_PLANNER, "--max-running", "1", "--yes", "--reason", "one at a time") == 0
    assert cli("resume", ROUTE_PLANNER, "--yes", "--reason", "fixed", "--no-dispatch") == 0
    capsys.readouterr()
    assert cli("audit", ROUTE_PLANNER, "--json") == 0
    changes = output_json(capsys)["changes"]
    assert [(change["action"], change["reason"]) for change in changes] == [
        ("resume", "fixed"),
        ("set-caps", "one at a time"),
        ("pause", "scorer bug"),
    ]
    assert all(change["actor"] and change["requestId"] and change["at"] for change in changes)
    assert "maxRunningTasks" in changes[1]["detail"]
    assert cli("audit", ROUTE_PLANNER, "--limit", "1") == 0
    out = capsys.readouterr().out
    assert "resume" in out
    assert "scorer bug" not in out


def test_a_challenge_without_changes(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    challenge_id = new_uuid()
    assert cli("audit", challenge_id) == 0
    assert f"no operator change recorded for {challenge_id}" in capsys.readouterr().out
