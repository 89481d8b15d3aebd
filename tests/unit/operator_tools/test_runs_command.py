"""`mm-processor runs CHALLENGE_ID`: a challenge's runs by state, from the status table's byChallenge index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mm_contracts.models.audit import OperatorChange
from tests.builders import new_uuid
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import (
    cli,
    launched_run,
    output_json,
    skipped_run,
    status_store,
    waiting_run,
)


def test_runs_counts_every_state_and_lists_the_runs(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a challenge with a launched, two waiting and a skipped run, and a run of another challenge
    launched = launched_run(deployed, ROUTE_PLANNER, 1)
    waiting = [waiting_run(deployed, ROUTE_PLANNER, member) for member in (2, 3)]
    skipped = skipped_run(deployed, ROUTE_PLANNER, 4, reason="no_capacity_for_phase")
    other = waiting_run(deployed, new_uuid(), 5)
    # When the operator lists the challenge's runs
    assert cli("runs", ROUTE_PLANNER, "--json") == 0
    document = output_json(capsys)
    # Then the counts cover every state, and every run of the challenge (only) is listed
    assert document["total"] == 4
    assert document["counts"] == {"WAITING": 2, "LAUNCHED": 1, "FAILED": 1}
    rows = {row["runId"]: row for row in document["runs"]}
    assert set(rows) == {launched, *waiting, skipped}
    assert other not in rows
    assert rows[skipped]["reason"] == "no_capacity_for_phase"
    assert rows[launched]["memberId"] == 1


def test_state_filters_keep_the_counts_whole(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    launched_run(deployed, ROUTE_PLANNER, 1)
    waiting = waiting_run(deployed, ROUTE_PLANNER, 2)
    skipped = skipped_run(deployed, ROUTE_PLANNER, 3)
    assert cli("runs", ROUTE_PLANNER, "--state", "WAITING", "--state", "FAILED", "--json") == 0
    document = output_json(capsys)
    assert {row["runId"] for row in document["runs"]} == {waiting, skipped}
    assert document["total"] == 3


def test_limit_shows_the_newest_runs_newest_first(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [waiting_run(deployed, ROUTE_PLANNER, member) for member in (1, 2, 3)]
    # the first run is the one updated last (an entry an hour from now), the second the one before it
    store = status_store(deployed)
    for hours, the_run in ((1, runs[1]), (2, runs[0])):
        change = OperatorChange(
            actor="ops", at=datetime.now(UTC) + timedelta(hours=hours), action="stop", reason="r", request_id="r1"
        )
        assert store.append_operator_entry(the_run, change)
    assert cli("runs", ROUTE_PLANNER, "--limit", "2", "--json") == 0
    document = output_json(capsys)
    assert [row["runId"] for row in document["runs"]] == [runs[0], runs[1]]
    assert document["total"] == 3


def test_a_challenge_id_in_upper_case_lists_the_challenges_runs(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    the_run = waiting_run(deployed, ROUTE_PLANNER, 1)
    assert cli("runs", ROUTE_PLANNER.upper(), "--json") == 0
    assert [row["runId"] for row in output_json(capsys)["runs"]] == [the_run]


def test_the_table_for_a_person(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    skipped = skipped_run(deployed, ROUTE_PLANNER, 3, reason="no_capacity_for_phase")
    assert cli("runs", ROUTE_PLANNER) == 0
    out = capsys.readouterr().out
    assert f"challenge {ROUTE_PLANNER}: 1 run(s): FAILED 1" in out
    assert skipped in out
    assert "no_capacity_for_phase" in out


def test_a_challenge_without_runs_says_so(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    challenge_id = new_uuid()
    assert cli("runs", challenge_id) == 0
    assert f"no runs of challenge {challenge_id}" in capsys.readouterr().out


def test_an_unknown_state_is_a_usage_error(deployed: Deployed) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("runs", ROUTE_PLANNER, "--state", "BOGUS")
    assert exit_info.value.code == 2
