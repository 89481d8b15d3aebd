"""`mm-processor rerun`: a final run queued again as a new run of the same item, with the challenge config's scorer
type, timeout and RERUN rank, the operator's audit entry and one dispatch trigger; runs in progress are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm_contracts.models.audit import OPERATOR_HISTORY_STATE
from mm_contracts.models.challenge import ChallengeConfig, PriorityClass
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.rerun_helpers import cli, launched, scored, status_store, submission_id
from tests.unit.operator_tools.rerun_skips import skipped


def deployed_config(deployed: Deployed) -> ChallengeConfig:
    """The challenge's config as deployed to SSM (what the functions and the operator tool read)."""
    name = deployed.plan.challenge_config_parameter(ROUTE_PLANNER)
    value = deployed.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    return ChallengeConfig.model_validate_json(value)


def state_of(deployed: Deployed, the_run: str) -> SubmissionState:
    record = status_store(deployed).get(the_run)
    assert record is not None
    return record.state


def output(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_a_final_run_is_queued_again_with_its_challenge_config_and_an_audit_entry(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    the_run = scored(deployed_v6, 1, member_id=11)
    before = status_store(deployed_v6).get(the_run)
    assert before is not None

    assert cli("rerun", submission_id(1), "--phase", "PROVISIONAL", "--json") == 0

    document = output(capsys)
    assert document["runs"] == [
        {"runId": the_run, "outcome": "queued", "state": "WAITING", "detail": document["runs"][0]["detail"]}
    ]
    # moto's Lambda has no sweeper function: the trigger says when the runs are admitted anyway.
    assert "the next scheduled sweep" in str(document["dispatch"])
    after = status_store(deployed_v6).get(the_run)
    assert after is not None
    assert after.state is SubmissionState.WAITING
    assert after.rerun is True
    assert after.launch_attempt == before.launch_attempt  # the claim advances it: a new clientToken
    loaded = deployed_config(deployed_v6)
    assert after.priority_rank == loaded.capacity.priority_order.index(PriorityClass.RERUN)
    assert after.timeout_seconds == loaded.phase_timeout(ScoringPhase.PROVISIONAL)
    audit = [e for e in after.history if e.state == OPERATOR_HISTORY_STATE]
    assert len(audit) == 1
    assert "operator rerun by" in audit[0].detail
    assert "scorer fixed" in audit[0].detail
    assert f"[request {document['requestId']}]" in audit[0].detail


def test_all_phases_by_default_and_a_run_in_progress_is_refused(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    example = scored(deployed_v6, 2, member_id=12, phase=ScoringPhase.EXAMPLE)
    provisional = launched(deployed_v6, 2, member_id=12, phase=ScoringPhase.PROVISIONAL)

    assert cli("rerun", submission_id(2), "--json") == 1  # one run refused

    outcomes = {r["runId"]: r["outcome"] for r in output(capsys)["runs"]}
    assert outcomes == {example: "queued", provisional: "in_progress"}
    assert state_of(deployed_v6, provisional) is SubmissionState.LAUNCHED


def test_a_phase_without_a_run_is_created(deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    scored(deployed_v6, 3, member_id=13)

    assert cli("rerun", submission_id(3), "--phase", "SYSTEM", "--json") == 0

    runs: list[dict[str, Any]] = output(capsys)["runs"]
    (result,) = runs
    assert result["outcome"] == "created"
    system = status_store(deployed_v6).get(run_id(submission_id(3), ScoringPhase.SYSTEM))
    assert system is not None
    assert system.state is SubmissionState.WAITING
    assert system.rerun


def test_the_same_rerun_twice_reopens_the_run_once(deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    the_run = scored(deployed_v6, 4, member_id=14)
    assert cli("rerun", submission_id(4), "--json") == 0
    capsys.readouterr()

    assert cli("rerun", submission_id(4), "--json") == 1

    assert output(capsys)["runs"][0]["outcome"] == "in_progress"
    record = status_store(deployed_v6).get(the_run)
    assert record is not None
    assert len([e for e in record.history if e.state == OPERATOR_HISTORY_STATE]) == 1


def test_latest_per_member_reruns_only_each_members_latest_submission(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    old = scored(deployed_v6, 5, member_id=15, minutes=0)
    new = scored(deployed_v6, 6, member_id=15, minutes=10)
    other = scored(deployed_v6, 7, member_id=16, minutes=5)

    assert cli("rerun", "--challenge", ROUTE_PLANNER, "--latest-per-member", "--json") == 0

    outcomes = {r["runId"]: r["outcome"] for r in output(capsys)["runs"]}
    assert outcomes == {new: "queued", other: "queued"}
    assert state_of(deployed_v6, old) is SubmissionState.SUCCEEDED


def test_dry_run_changes_nothing(deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    the_run = scored(deployed_v6, 8, member_id=17)
    assert cli("rerun", submission_id(8), "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"{the_run}: SUCCEEDED -> queued again" in out
    assert "dry run: nothing changed" in out
    assert state_of(deployed_v6, the_run) is SubmissionState.SUCCEEDED


def test_an_unknown_submission_exits_1(deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("rerun", submission_id(99)) == 1
    assert "no run of submission" in capsys.readouterr().err


def test_a_real_rerun_needs_a_reason(deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    from operator_tools.cli import main

    scored(deployed_v6, 9, member_id=18)
    assert main(["rerun", submission_id(9), "--yes", "--env", "dev"]) == 2
    assert "--reason" in capsys.readouterr().err


def test_latest_per_member_leaves_out_a_skipped_submission_and_says_so(
    deployed_v6: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = scored(deployed_v6, 40, member_id=41, minutes=0)
    skipped_run = skipped(deployed_v6, 41, member_id=41, minutes=10, skip_reason="The challenge is not active.")

    assert cli("rerun", "--challenge", ROUTE_PLANNER, "--latest-per-member", "--json") == 0

    document = output(capsys)
    assert {r["runId"]: r["outcome"] for r in document["runs"]} == {valid: "queued"}
    assert document["leftOut"] == [
        f"submission {submission_id(41)}: skipped by the pipeline -> left out (not a member's latest)"
    ]
    assert state_of(deployed_v6, skipped_run) is SubmissionState.FAILED
