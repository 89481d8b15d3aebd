"""`mm-processor dispatch-system`: one SYSTEM run (priority class SYSTEM, never RERUN) of every member's latest
submission, an existing SYSTEM run left as it is, and the summary of where they are."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm_contracts.models.challenge import PriorityClass
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from operator_tools.cli import main
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.rerun_helpers import cli, scored, status_store, submission_id
from tests.unit.operator_tools.rerun_skips import skipped
from tests.unit.operator_tools.test_rerun_command import deployed_config

SYSTEM = ScoringPhase.SYSTEM


def output(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def system_of(n: int) -> str:
    return run_id(submission_id(n), SYSTEM)


def test_each_members_latest_submission_gets_one_system_run(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    scored(deployed_v6, 1, member_id=21, minutes=0)
    scored(deployed_v6, 2, member_id=21, minutes=10)  # member 21's latest
    scored(deployed_v6, 3, member_id=22, minutes=5)

    assert cli("dispatch-system", ROUTE_PLANNER, "--json") == 0

    document = output(capsys)
    assert {r["runId"]: r["outcome"] for r in document["runs"]} == {system_of(2): "created", system_of(3): "created"}
    assert status_store(deployed_v6).get(system_of(1)) is None
    rank = deployed_config(deployed_v6).capacity.priority_order.index(PriorityClass.SYSTEM)
    for n in (2, 3):
        record = status_store(deployed_v6).get(system_of(n))
        assert record is not None
        assert record.state is SubmissionState.WAITING
        assert record.rerun is False
        assert record.priority_rank == rank
        assert record.member_id in (21, 22)
    summary = document["summary"]
    assert (summary["members"], summary["dispatched"], summary["waiting"], summary["complete"]) == (2, 2, 2, False)


def test_a_repeated_dispatch_leaves_the_existing_system_runs(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    scored(deployed_v6, 4, member_id=23)
    scored(deployed_v6, 5, member_id=24, phase=SYSTEM)  # already scored in SYSTEM (final)
    scored(deployed_v6, 5, member_id=24, phase=ScoringPhase.PROVISIONAL)

    assert cli("dispatch-system", ROUTE_PLANNER, "--json") == 0
    first = output(capsys)
    assert [r["runId"] for r in first["runs"]] == [system_of(4)]
    assert first["left"] == [f"{system_of(5)}: SUCCEEDED -> left (final; --rerun-final to score it again)"]

    assert cli("dispatch-system", ROUTE_PLANNER, "--json") == 0
    second = output(capsys)
    assert second["runs"] == []
    assert second["dispatch"] is None  # nothing queued: no sweep triggered
    assert f"{system_of(4)}: WAITING -> left (dispatched already, in progress)" in second["left"]


def test_rerun_final_scores_a_final_system_run_again_as_system(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    scored(deployed_v6, 6, member_id=25, phase=SYSTEM)

    assert cli("dispatch-system", ROUTE_PLANNER, "--rerun-final", "--json") == 0

    assert [r["outcome"] for r in output(capsys)["runs"]] == ["queued"]
    record = status_store(deployed_v6).get(system_of(6))
    assert record is not None
    assert record.state is SubmissionState.WAITING
    assert record.rerun is False


def test_the_summary_counts_states_and_reports_without_changing_anything(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    scored(deployed_v6, 7, member_id=26, phase=SYSTEM)  # final, reported
    scored(deployed_v6, 8, member_id=27, phase=SYSTEM, reported=False)  # final, report pending
    scored(deployed_v6, 9, member_id=28)  # no SYSTEM run

    assert main(["dispatch-system", ROUTE_PLANNER, "--summary", "--env", "dev", "--json"]) == 0

    summary = output(capsys)["summary"]
    assert summary["members"] == 3
    assert (summary["dispatched"], summary["not_dispatched"], summary["final"]) == (2, 1, 2)
    assert (summary["reported"], summary["pending"], summary["rejected"]) == (1, 1, 0)
    assert summary["by_outcome"] == {"SUCCEEDED": 2}
    assert summary["complete"] is False
    assert status_store(deployed_v6).get(system_of(9)) is None


def test_wait_gives_up_when_the_time_is_up_and_says_so(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    scored(deployed_v6, 10, member_id=29)

    assert cli("dispatch-system", ROUTE_PLANNER, "--wait", "0.01", "--json") == 1  # nothing runs the waiting run here

    assert output(capsys)["summary"]["complete"] is False


def test_a_challenge_without_a_system_phase_is_refused(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    # `example` (v5): one provisional phase, no SYSTEM phase config.
    assert (
        main(["dispatch-system", "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601", "--yes", "--reason", "x", "--env", "example"])
        == 1
    )
    assert "has no SYSTEM phase" in capsys.readouterr().err


def test_a_skipped_later_submission_is_left_out_and_the_last_valid_one_gets_the_system_run(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    scored(deployed_v6, 30, member_id=31, minutes=0)  # member 31's last valid submission
    skipped(deployed_v6, 31, member_id=31, minutes=10, skip_reason="The challenge is not active.")
    skipped(deployed_v6, 32, member_id=31, minutes=20, skip_reason=None)  # no phase triggered

    assert cli("dispatch-system", ROUTE_PLANNER, "--json") == 0

    document = output(capsys)
    assert {r["runId"]: r["outcome"] for r in document["runs"]} == {system_of(30): "created"}
    assert status_store(deployed_v6).get(system_of(31)) is None
    assert status_store(deployed_v6).get(system_of(32)) is None
    assert [line for line in document["left"] if "skipped" in line] == [
        f"submission {submission_id(31)}: skipped by the pipeline -> left out (not a member's latest)",
        f"submission {submission_id(32)}: skipped by the pipeline -> left out (not a member's latest)",
    ]
    assert document["summary"]["members"] == 1


def test_wait_polls_only_the_dispatched_system_runs(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_adapters.status_store import StatusStore
    from operator_tools import dispatch_system

    scored(deployed_v6, 50, member_id=51, minutes=0)
    scored(deployed_v6, 51, member_id=51, minutes=10)
    scored(deployed_v6, 52, member_id=52, minutes=5)
    listings: list[str] = []
    batches: list[set[str]] = []
    runs_of_challenge, get_many = StatusStore.runs_of_challenge, StatusStore.get_many

    def listing(self: StatusStore, challenge_id: str) -> Any:
        listings.append(challenge_id)
        return runs_of_challenge(self, challenge_id)

    def batch(self: StatusStore, run_ids: Any) -> Any:
        ids = list(run_ids)
        batches.append(set(ids))
        return get_many(self, ids)

    monkeypatch.setattr(StatusStore, "runs_of_challenge", listing)
    monkeypatch.setattr(StatusStore, "get_many", batch)
    monkeypatch.setattr(dispatch_system, "POLL_SECONDS", 0.05)

    assert cli("dispatch-system", ROUTE_PLANNER, "--wait", "0.3", "--json") == 1  # nothing runs them here

    assert listings == [ROUTE_PLANNER]  # the challenge is read once, before the dispatch
    polls = batches[1:]  # the first batch is that listing's own read
    assert len(polls) >= 1
    assert all(ids == {system_of(51), system_of(52)} for ids in polls)
    summary = output(capsys)["summary"]
    assert (summary["members"], summary["dispatched"], summary["waiting"]) == (2, 2, 2)
