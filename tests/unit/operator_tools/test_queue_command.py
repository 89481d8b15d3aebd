"""`mm-processor queue CHALLENGE_ID`: the waiting queue in admission order, with positions, counts and the pause."""

from __future__ import annotations

import json

import pytest

from mm_capacity.store import AdmissionLimits
from mm_contracts.models.audit import OperatorChange
from operator_tools.queue import waited
from tests.builders import new_uuid
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import capacity_store, cli, output_json, waiting_run


def _admit_head(deployed: Deployed, challenge_id: str) -> None:
    store = capacity_store(deployed)
    head = store.queue_head(challenge_id, limit=1)[0]
    limits = AdmissionLimits(challenge_cap=1, phase_cap=None, env_cap=10, env_cpu_cap_units=None, cpu_units=1024)
    assert store.admit(head, limits).outcome.value == "admitted"


def test_the_queue_in_order_with_positions_counts_and_reasons(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a challenge whose one slot is taken, and three members' runs waiting behind it
    waiting_run(deployed, ROUTE_PLANNER, 1)
    _admit_head(deployed, ROUTE_PLANNER)
    queued = [
        waiting_run(deployed, ROUTE_PLANNER, member, wait_reason="challenge cap 1 reached") for member in (2, 3, 4)
    ]
    # When the operator reads the queue
    assert cli("queue", ROUTE_PLANNER, "--json") == 0
    document = output_json(capsys)
    # Then the waiting runs are listed in queue order, 1-based, with why they wait; the admitted one is not
    assert [row["runId"] for row in document["queue"]] == queued
    assert [row["position"] for row in document["queue"]] == [1, 2, 3]
    assert [row["memberId"] for row in document["queue"]] == [2, 3, 4]
    assert all(row["waitReason"] == "challenge cap 1 reached" for row in document["queue"])
    assert all(row["phase"] == "PROVISIONAL" and row["rerun"] is False for row in document["queue"])
    assert (document["running"], document["waiting"], document["paused"]) == (1, 3, False)


def test_limit_reads_the_head_of_the_queue(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    queued = [waiting_run(deployed, ROUTE_PLANNER, member) for member in (1, 2, 3)]
    assert cli("queue", ROUTE_PLANNER, "--limit", "2", "--json") == 0
    document = output_json(capsys)
    assert [row["runId"] for row in document["queue"]] == queued[:2]
    assert document["waiting"] == 3


def test_a_paused_challenge_says_who_paused_it_and_how_to_resume(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    change = OperatorChange(
        actor="alice@ops", at=datetime.now(UTC), action="pause", reason="scorer bug", request_id="abc123abc123"
    )
    assert capacity_store(deployed).pause(ROUTE_PLANNER, change)
    queued = waiting_run(deployed, ROUTE_PLANNER, 1)
    assert cli("queue", ROUTE_PLANNER) == 0
    out = capsys.readouterr().out
    assert "PAUSED by alice@ops" in out
    assert "scorer bug" in out
    assert f"mm-processor resume {ROUTE_PLANNER}" in out
    assert queued in out
    assert "challenge paused by an operator" in out


def test_an_empty_queue(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("queue", new_uuid()) == 0
    out = capsys.readouterr().out
    assert "running 0, waiting 0, cap not yet applied" in out
    assert "no run waiting" in out


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (59, "59s"), (61, "1m"), (3_900, "1h05m"), (2 * 86_400 + 4 * 3600, "2d04h")]
)
def test_waited_for_a_person(seconds: int, shown: str) -> None:
    assert waited(seconds) == shown


def test_a_challenge_id_in_upper_case_reads_the_challenges_queue_and_an_unknown_one_warns(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting = waiting_run(deployed, ROUTE_PLANNER, 1)
    assert cli("queue", ROUTE_PLANNER.upper(), "--json") == 0
    document = output_json(capsys)
    assert (document["challengeId"], [row["runId"] for row in document["queue"]]) == (ROUTE_PLANNER, [waiting])
    assert cli("queue", "00000000-0000-4000-8000-000000000000", "--json") == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["queue"] == []
    assert "warning: 00000000-0000-4000-8000-000000000000 is not a challenge of example's config" in out.err
