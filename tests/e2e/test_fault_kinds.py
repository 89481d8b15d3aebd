"""`mm-processor local run --fault` with a handful of fault kinds from the ONE fault layer (decision 079): AWS
faults in the workers' clients, a Topcoder fault on the API side, STOPPED-event and task faults in the fake
Fargate, delivery faults in the engine. Every record still ends in exactly one final state, with no
submission given a second task or a second review."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_pipeline.scenario import ScenarioError, parse_fault
from operator_tools.cli import EXIT_OK, EXIT_UNACCOUNTED, EXIT_USAGE, main
from tests.builders import bus_envelope, submission_payload

pytestmark = pytest.mark.e2e

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
IMAGE_DENOISE = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f602"
ALLOWED_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"

# submission role -> (--fault kind, --scorer behaviour)
FAULTS = {
    "capacity-once": ("capacity:1", "succeed"),  # an alias: run-task-failures
    "throttled-table": ("dynamodb-throttling:1", "succeed"),
    "run-task-5xx-after-start": ("run-task-5xx-after-start:1", "succeed"),
    "sqs-duplicate": ("sqs-duplicate-delivery:1", "succeed"),
    "kafka-redelivery": ("kafka-redelivery:1", "succeed"),
    "stopped-twice": ("stopped-event-duplicate", "fail"),
    "stopped-late": ("stopped-event-delayed:1,delay_seconds=3", "fail"),
    "api-5xx": ("topcoder-5xx:1", "fail"),
}


@pytest.mark.xdist_group("e2e-fault-kinds")
def test_a_run_with_several_fault_kinds_ends_every_record_in_one_state_once(tmp_path: Path) -> None:
    # Given one submission per fault kind, alternating over two challenges
    payloads = {
        role: submission_payload(challenge_id=(ROUTE_PLANNER, IMAGE_DENOISE)[index % 2], url=ALLOWED_URL)
        for index, role in enumerate(FAULTS)
    }
    messages = tmp_path / "messages.jsonl"
    messages.write_text("".join(json.dumps(bus_envelope(p)) + "\n" for p in payloads.values()))
    arguments = ["local", "run", "--env", "example", "--messages", str(messages), "--quiet"]
    for role, (fault, behaviour) in FAULTS.items():
        arguments += ["--fault", f"{payloads[role]['id']}={fault}", "--scorer", f"{payloads[role]['id']}={behaviour}"]
    report_path = tmp_path / "report.json"
    # When `local run` runs them with the faults
    status = main([*arguments, "--report", str(report_path), "--stall", "90"])
    # Then every record is final, exactly once, with no second task and no second review
    report = json.loads(report_path.read_text())
    records = report["records"]
    assert report["unaccounted"] == []
    assert report["violations"] == []
    assert status == EXIT_OK
    assert len(records) == len(FAULTS)
    for record in records:
        assert record["tasksStarted"] <= 1, record
        assert len(record["sentToApi"]) <= 1, record
    by_id = {r["submissionId"]: r for r in records}
    for role in ("stopped-twice", "stopped-late", "api-5xx"):
        failed = by_id[payloads[role]["id"]]
        assert (failed["state"], failed["lifecycleState"]) == ("failed-reported", "FAILED"), role
    for role in ("capacity-once", "throttled-table", "run-task-5xx-after-start", "sqs-duplicate", "kafka-redelivery"):
        assert by_id[payloads[role]["id"]]["state"] == "scored", role


def test_every_fault_kind_is_accepted_by_name_with_counts_windows_and_parameters() -> None:
    from fault_injection import FaultKind

    for kind in FaultKind:
        assert parse_fault(f"sub-1={kind.value}").to_rule().kind is kind
    assert parse_fault("sub-1=capacity:2").to_rule().first_n == 2
    window = parse_fault("*=sns-outage@5-30").to_rule()
    assert (window.target, window.window and (window.window.start, window.window.end)) == (None, (5.0, 30.0))
    slow = parse_fault("sub-1=topcoder-slow-commit:1,commit_delay_seconds=20").to_rule()
    assert slow.param("commit_delay_seconds", 0) == 20
    for bad in ("sub-1=meteor", "sub-1=capacity:0", "sub-1=capacity:1@0-5", "sub-1=sns-outage@9-3", "=capacity"):
        with pytest.raises(ScenarioError):
            parse_fault(bad)


def test_help_lists_every_fault_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from fault_injection import FaultKind

    with pytest.raises(SystemExit):
        main(["local", "run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in FaultKind:
        assert kind.value in text.replace("- ", "-")
    assert main(["local", "run", "--fault", "x=not-a-kind"]) == EXIT_USAGE


@pytest.mark.xdist_group("e2e-fault-slow-commit")
def test_a_duplicate_review_from_a_slow_commit_makes_local_run_exit_non_zero(tmp_path: Path) -> None:
    # Given a submission whose scorer's review POST is committed by the API 12 s later (after the scorer's own
    # 10 s read timeout): the pipeline reports the run's failure or timeout, and then the slow commit lands
    payload = submission_payload(challenge_id=ROUTE_PLANNER, url=ALLOWED_URL)
    messages = tmp_path / "messages.jsonl"
    messages.write_text(json.dumps(bus_envelope(payload)) + "\n")
    report_path = tmp_path / "report.json"
    # When `local run` runs it with the stand-in's slow commit from the fault layer
    status = main(
        [
            "local",
            "run",
            "--messages",
            str(messages),
            "--fault",
            f"{payload['id']}=topcoder-slow-commit:1",
            "--report",
            str(report_path),
            "--quiet",
        ]
    )
    # Then the run waited for the late commit (the settle period covers the configured delay), saw the two
    # reviews and exits 1
    report = json.loads(report_path.read_text())
    assert report["limits"]["settleSeconds"] >= 12
    assert f"submission {payload['id']} got 2 reviews" in report["violations"]
    assert report["ok"] is False
    assert status == EXIT_UNACCOUNTED
