"""`mm-processor pause` / `resume`: the challenge's paused flag, its audit items, and the dispatch after a resume."""

from __future__ import annotations

import pytest

from mm_capacity.store import AdmissionLimits
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import capacity_store, cli, output_json, waiting_run

LIMITS = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=10, env_cpu_cap_units=None, cpu_units=1024)


def test_pause_sets_the_flag_with_who_and_why_and_audits_it(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "scorer bug #12", "--json") == 0
    document = output_json(capsys)
    assert document["changed"] is True
    store = capacity_store(deployed)
    controls = store.controls(ROUTE_PLANNER)
    assert controls.paused
    assert controls.pause_reason == "scorer bug #12"
    assert controls.paused_by
    [(change, detail)] = store.challenge_changes(ROUTE_PLANNER)
    assert (change.action, change.reason, change.request_id) == ("pause", "scorer bug #12", document["requestId"])
    assert "paused" in detail


def test_a_paused_challenge_admits_nothing_and_its_runs_wait(deployed: Deployed) -> None:
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "maintenance") == 0
    waiting = waiting_run(deployed, ROUTE_PLANNER, 1)
    store = capacity_store(deployed)
    head = store.queue_head(ROUTE_PLANNER, limit=1)[0]
    assert head.run_id == waiting
    assert store.admit(head, LIMITS).outcome.value == "full"


def test_pausing_again_changes_nothing_and_keeps_the_first_reason(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "first") == 0
    capsys.readouterr()
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "second") == 0
    assert "already paused" in capsys.readouterr().out
    store = capacity_store(deployed)
    assert store.controls(ROUTE_PLANNER).pause_reason == "first"
    assert len(store.challenge_changes(ROUTE_PLANNER)) == 1


def test_resume_clears_the_flag_audits_it_and_starts_a_sweep(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "maintenance") == 0
    waiting_run(deployed, ROUTE_PLANNER, 1)
    capsys.readouterr()
    assert cli("resume", ROUTE_PLANNER, "--yes", "--reason", "fixed", "--json") == 0
    document = output_json(capsys)
    store = capacity_store(deployed)
    assert not store.controls(ROUTE_PLANNER).paused
    assert [change.action for change, _ in store.challenge_changes(ROUTE_PLANNER)] == ["resume", "pause"]
    # moto has no sweeper function deployed here: the command says the schedule admits them
    assert "next scheduled sweep" in document["dispatch"]
    head = store.queue_head(ROUTE_PLANNER, limit=1)[0]
    assert store.admit(head, LIMITS).outcome.value == "admitted"


def test_resume_without_dispatch_and_of_a_challenge_not_paused(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("resume", ROUTE_PLANNER, "--yes", "--reason", "nothing to do") == 0
    assert "not paused; nothing changed" in capsys.readouterr().out
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "x") == 0
    capsys.readouterr()
    assert cli("resume", ROUTE_PLANNER, "--yes", "--reason", "y", "--no-dispatch", "--json") == 0
    assert "dispatch" not in output_json(capsys)


def test_dry_run_and_a_missing_reason_change_nothing(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("pause", ROUTE_PLANNER, "--dry-run") == 0
    assert "dry run: nothing changed" in capsys.readouterr().out
    assert cli("pause", ROUTE_PLANNER, "--yes") == 2
    assert not capacity_store(deployed).controls(ROUTE_PLANNER).paused
    assert capacity_store(deployed).challenge_changes(ROUTE_PLANNER) == []


def test_without_yes_on_a_pipe_the_pause_is_refused(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("pause", ROUTE_PLANNER, "--reason", "x") == 2
    assert "--yes" in capsys.readouterr().err
    assert not capacity_store(deployed).controls(ROUTE_PLANNER).paused


def test_a_challenge_id_typed_in_upper_case_pauses_the_challenge_itself(deployed: Deployed) -> None:
    assert cli("pause", ROUTE_PLANNER.upper(), "--yes", "--reason", "maintenance") == 0
    store = capacity_store(deployed)
    assert store.controls(ROUTE_PLANNER).paused
    waiting_run(deployed, ROUTE_PLANNER, 1)
    head = store.queue_head(ROUTE_PLANNER, limit=1)[0]
    assert store.admit(head, LIMITS).outcome.value == "full"


@pytest.mark.parametrize("command", ["pause", "resume"])
def test_a_challenge_not_in_the_config_is_refused(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert cli(command, unknown, "--yes", "--reason", "typo") == 1
    assert "is not a challenge of example's config" in capsys.readouterr().err
    store = capacity_store(deployed)
    assert not store.controls(unknown).paused
    assert store.challenge_changes(unknown) == []


def test_an_id_that_is_not_a_uuid_is_a_usage_error(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli("pause", "route-planner", "--yes", "--reason", "r")
    assert raised.value.code == 2
    assert "is not a challenge id (a UUID)" in capsys.readouterr().err


def test_a_dry_run_under_json_prints_its_plan(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("pause", ROUTE_PLANNER, "--dry-run", "--json") == 0
    document = output_json(capsys)
    assert (document["dryRun"], document["action"]) == (True, "pause")
    assert any(line.startswith(f"challenge {ROUTE_PLANNER}:") for line in document["plan"])
    assert not capacity_store(deployed).controls(ROUTE_PLANNER).paused
