"""`mm-processor status`: the operator's "where is submission X, and why" against a status table, run by run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from operator_tools.cli import main
from tests.builders import new_uuid
from tests.unit.operator_tools.conftest import routed_submission

V6_SUBMISSION = "B-7z0m074qy7du"  # a real v6 id form (nanoid 14)
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef"
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"
CAPACITY_TABLE = "mm-test-capacity"


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich folds long values at the default 80 columns


def _store(table: str) -> StatusStore:
    return StatusStore(table, dynamodb_client=aws_clients.client("dynamodb"))


def test_status_prints_state_reason_task_and_history(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a v5 submission (one run) whose task is running
    store = _store(status_table)
    submission_id = new_uuid()
    routed = routed_submission(submission_id)
    claim = store.claim_launch(routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", lease_seconds=60)
    store.mark_launched(
        run_id(submission_id, ScoringPhase.PROVISIONAL),
        attempt=claim.attempt,
        task_arn=TASK_ARN,
        cluster_arn=CLUSTER_ARN,
        timeout_seconds=60,
    )
    # When the operator asks by submission id
    status = main(["status", submission_id, "--table", status_table])
    # Then its run, state, phase, task and history are printed
    out = capsys.readouterr().out
    assert status == 0
    assert "LAUNCHED" in out
    assert "PROVISIONAL" in out
    assert "0123456789abcdef" in out
    assert "LAUNCHING" in out  # history


def test_status_shows_every_run_of_a_v6_submission_with_its_phase(
    status_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a v6 submission with an EXAMPLE run launched and a PROVISIONAL run skipped
    store = _store(status_table)
    routed = routed_submission(V6_SUBMISSION, Platform.V6)
    claim = store.claim_launch(routed, phase=ScoringPhase.EXAMPLE, scorer_type="route-planner", lease_seconds=60)
    store.mark_launched(
        run_id(V6_SUBMISSION, ScoringPhase.EXAMPLE),
        attempt=claim.attempt,
        task_arn=TASK_ARN,
        cluster_arn=CLUSTER_ARN,
        timeout_seconds=60,
    )
    assert store.record_skipped(
        routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", reason="no_capacity_for_phase"
    )
    # When the operator asks by submission id
    assert main(["status", V6_SUBMISSION, "--table", status_table]) == 0
    out = capsys.readouterr().out
    # Then both runs are shown, each with its phase, state and reason
    assert f"{V6_SUBMISSION}#EXAMPLE" in out
    assert f"{V6_SUBMISSION}#PROVISIONAL" in out
    assert "2 run(s)" in out
    assert "LAUNCHED" in out
    assert "FAILED" in out
    assert "no_capacity_for_phase" in out


def test_status_of_one_run_id_shows_only_that_run(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(status_table)
    routed = routed_submission(V6_SUBMISSION, Platform.V6)
    for phase in (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL):
        store.claim_launch(routed, phase=phase, scorer_type="route-planner", lease_seconds=60)

    assert main(["status", f"{V6_SUBMISSION}#EXAMPLE", "--table", status_table, "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert [run["runId"] for run in document["runs"]] == [f"{V6_SUBMISSION}#EXAMPLE"]


def test_status_json_lists_the_runs(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(status_table)
    routed = routed_submission(V6_SUBMISSION, Platform.V6)
    for phase in (ScoringPhase.PROVISIONAL, ScoringPhase.EXAMPLE):
        store.claim_launch(routed, phase=phase, scorer_type="route-planner", lease_seconds=60)

    assert main(["status", V6_SUBMISSION, "--table", status_table, "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert document["submissionId"] == V6_SUBMISSION
    runs = {run["phase"]: run for run in document["runs"]}
    assert set(runs) == {"EXAMPLE", "PROVISIONAL"}
    assert all(run["state"] == "LAUNCHING" and run["platform"] == "v6" for run in runs.values())


def test_status_of_an_unknown_submission_says_so(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    submission_id = new_uuid()
    assert main(["status", submission_id, "--table", status_table]) == 1
    assert f"no lifecycle record for submission {submission_id}" in capsys.readouterr().out


def test_status_of_a_malformed_run_id_finds_nothing(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", f"{V6_SUBMISSION}#FINAL", "--table", status_table]) == 1
    assert "no lifecycle record" in capsys.readouterr().out


# ---------------------------------------------------------------------- capacity (issue 11)
def _capacity_store(status_table: str, clock: Any = None) -> Any:
    from mm_capacity.store import CapacityStore, capacity_table_definition

    client = aws_clients.client("dynamodb")
    client.create_table(**capacity_table_definition(CAPACITY_TABLE))
    if clock is None:
        return CapacityStore(CAPACITY_TABLE, status_table, dynamodb_client=client)
    return CapacityStore(CAPACITY_TABLE, status_table, dynamodb_client=client, clock=clock)


def _waiting(store: Any, challenge_id: str, member_id: int) -> str:
    submission_id = new_uuid()
    routed = routed_submission(submission_id).model_copy(update={"challenge_id": challenge_id, "member_id": member_id})
    result = store.enqueue(
        routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", timeout_seconds=60, priority_rank=1
    )
    assert result.created
    return submission_id


def test_status_of_a_waiting_run_shows_its_place_and_its_challenges_counts_and_caps(
    status_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_capacity.store import AdmissionLimits

    # Given a challenge whose one slot (cap 1) is taken and three runs waiting behind it, of three members
    store = _capacity_store(status_table)
    challenge_id = new_uuid()
    running = _waiting(store, challenge_id, 40_000_001)
    head = store.queue_head(challenge_id, limit=1)[0]
    limits = AdmissionLimits(challenge_cap=1, phase_cap=None, env_cap=10, env_cpu_cap_units=None, cpu_units=1024)
    assert store.admit(head, limits).outcome.value == "admitted"
    waiting = [_waiting(store, challenge_id, member) for member in (40_000_002, 40_000_003, 40_000_004)]
    # When the operator asks about the third waiting run
    status = main(["status", waiting[2], "--table", status_table, "--capacity-table", CAPACITY_TABLE])
    out = capsys.readouterr().out
    # Then the run is WAITING, third of the three waiting, and the challenge shows 1 running of cap 1, 3 waiting
    assert status == 0
    assert "WAITING" in out
    assert "3 of 3 waiting in its challenge" in out
    assert "running 1, waiting 3, cap 1" in out
    assert "running 1, cap 10" in out  # the environment
    assert "waits durably for a slot" in out  # the next step
    assert "waiting since" in out
    assert running not in out


def _field(out: str, label: str) -> str:
    """The value of a field row of `status`'s run table ("" when the row is absent)."""
    rows = [line for line in out.splitlines() if f" {label} " in line]
    return rows[0].split(label, 1)[1].strip(" │|") if rows else ""


def test_status_of_an_admitted_run_says_how_long_it_waited_not_that_it_is_waiting(
    status_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_capacity.store import AdmissionLimits

    # Given a run that entered capacity, waited 42 s and was then admitted
    now = [1_800_000_000.0]
    store = _capacity_store(status_table, clock=lambda: now[0])
    challenge_id = new_uuid()
    submission_id = _waiting(store, challenge_id, 40_000_001)
    head = store.queue_head(challenge_id, limit=1)[0]
    now[0] += 42
    limits = AdmissionLimits(challenge_cap=1, phase_cap=None, env_cap=10, env_cpu_cap_units=None, cpu_units=1024)
    assert store.admit(head, limits).outcome.value == "admitted"
    # When the operator asks about it
    assert main(["status", submission_id, "--table", status_table, "--capacity-table", CAPACITY_TABLE]) == 0
    out = capsys.readouterr().out
    # Then it is not "waiting since" anything: it entered capacity, and was admitted after 42 s of waiting
    assert "ADMITTED" in out
    assert "waiting since" not in out
    assert _field(out, "entered capacity").startswith("2027-01-15T08:00:00")
    assert _field(out, "admitted") == "2027-01-15T08:00:42+00:00 (after 42 s waiting)"


def test_status_of_a_direct_launch_says_it_waited_0_s(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    from mm_capacity.store import AdmissionLimits

    # Given a run that took a free slot at once (the uncontended path: no queue entry, no wait)
    store = _capacity_store(status_table, clock=lambda: 1_800_000_000.0)
    submission_id = new_uuid()
    routed = routed_submission(submission_id)
    limits = AdmissionLimits(challenge_cap=5, phase_cap=None, env_cap=10, env_cpu_cap_units=None, cpu_units=1024)
    view = store.new_run_view(routed, ScoringPhase.PROVISIONAL)
    launched = store.launch_directly(
        routed,
        phase=ScoringPhase.PROVISIONAL,
        scorer_type="route-planner",
        timeout_seconds=60,
        priority_rank=1,
        limits=limits,
        lease_seconds=60,
        view=view,
    )
    assert launched.outcome.value == "claimed", launched
    # When the operator asks about it
    assert main(["status", submission_id, "--table", status_table, "--capacity-table", CAPACITY_TABLE]) == 0
    out = capsys.readouterr().out
    # Then it is LAUNCHING, never said to be waiting, and was admitted after 0 s
    assert "LAUNCHING" in out
    assert "waiting since" not in out
    assert _field(out, "admitted") == "2027-01-15T08:00:00+00:00 (after 0 s waiting)"


def test_status_json_of_a_waiting_run_adds_its_capacity(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = _capacity_store(status_table)
    challenge_id = new_uuid()
    first, second = _waiting(store, challenge_id, 40_000_001), _waiting(store, challenge_id, 40_000_002)

    assert main(["status", second, "--table", status_table, "--capacity-table", CAPACITY_TABLE, "--json"]) == 0

    document = json.loads(capsys.readouterr().out)
    assert [run["state"] for run in document["runs"]] == ["WAITING"]
    view = document["capacity"][run_id(second, ScoringPhase.PROVISIONAL)]
    assert view["queuePosition"] == 2
    assert view["challenge"] == {"running": 0, "waiting": 2, "cap": None}
    assert first != second


def test_status_without_a_capacity_table_still_answers(status_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a waiting run, and a status table whose name does not say where its capacity table is
    store = _capacity_store(status_table)
    submission_id = _waiting(store, new_uuid(), 40_000_001)
    # When the operator asks without --capacity-table, then with a table that does not exist
    assert main(["status", submission_id, "--table", status_table]) == 0
    assert "pass --capacity-table" in capsys.readouterr().out
    assert main(["status", submission_id, "--table", status_table, "--capacity-table", "mm-none-capacity"]) == 0
    out = capsys.readouterr().out
    # Then the lifecycle is shown either way, with a note on the capacity it could not read
    assert "WAITING" in out
    assert "could not read mm-none-capacity" in out


# ---------------------------------------------------------------------- the environment's tables (issue 12)
def test_status_reads_the_environments_table_by_default(
    deployed: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.operator_tools.operator_helpers import launched_run

    # Given a launched run in the `example` environment's run table, and MM_ENV naming that environment
    the_run = launched_run(deployed, new_uuid(), 1)
    monkeypatch.setenv("MM_ENV", "example")
    # When the operator asks without --table (and without --env)
    assert main(["status", the_run, "--json"]) == 0
    # Then the run is found in mm-example-runs
    assert [run["runId"] for run in json.loads(capsys.readouterr().out)["runs"]] == [the_run]


def test_status_of_an_unknown_environment_could_not_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", new_uuid(), "--env", "no-such-env"]) == 2
    assert "no-such-env" in capsys.readouterr().out


def test_status_with_a_table_and_no_env_loads_no_environment_and_reads_the_sessions_region(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from mm_contracts.tables import status_table_definition

    # Given a run table in the session's region (not the example environment's us-east-1), and a stale $MM_ENV
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("MM_ENV", "no-longer-an-env")
    table = "mm-elsewhere-runs"
    boto3.client("dynamodb", region_name="eu-west-1").create_table(**status_table_definition(table))
    store = StatusStore(table, dynamodb_client=boto3.client("dynamodb", region_name="eu-west-1"))
    submission_id = new_uuid()
    assert store.record_skipped(
        routed_submission(submission_id), phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", reason="r"
    )
    # When the operator names the table (and no --env)
    assert main(["status", submission_id, "--table", table, "--json"]) == 0
    # Then the run is found there
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [run["runId"] for run in runs] == [run_id(submission_id, ScoringPhase.PROVISIONAL)]
