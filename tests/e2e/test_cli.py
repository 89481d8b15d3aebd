"""`mm-processor local run` end to end through the CLI: a messages file, the JSON report, the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from operator_tools.cli import EXIT_UNACCOUNTED, EXIT_USAGE, main
from tests.builders import bus_envelope, review_envelope, submission_payload

pytestmark = pytest.mark.e2e

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
IMAGE_DENOISE = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f602"
ALLOWED_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"


@pytest.mark.xdist_group("e2e-cli-messages")
def test_messages_file_with_a_non_json_line_runs_to_a_complete_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a producer's file: two valid submissions, a review event, and a line that is not JSON
    first = submission_payload(challenge_id=ROUTE_PLANNER, url=ALLOWED_URL)
    second = submission_payload(challenge_id=IMAGE_DENOISE, url=ALLOWED_URL)
    messages = tmp_path / "messages.jsonl"
    messages.write_text(
        "\n".join(
            [
                json.dumps(bus_envelope(first)),
                "this line is not JSON {",
                json.dumps(bus_envelope(second)),
                json.dumps(review_envelope(first["id"])),
            ]
        )
        + "\n"
    )
    report_path = tmp_path / "out" / "report.json"
    # When it runs through the CLI, with the second challenge's scorer failing
    status = main(
        [
            "local",
            "run",
            "--env",
            "example",
            "--messages",
            str(messages),
            "--scorer",
            f"{IMAGE_DENOISE}=fail",
            "--report",
            str(report_path),
            "--timeout",
            "90",
        ]
    )
    # Then every record is accounted for, the non-JSON line rejected with a reason, and the exit status is 0
    report = json.loads(report_path.read_text())
    states = {r["position"]: (r["state"], r["reason"]) for r in report["records"]}
    assert states[0][0] == "scored"
    assert states[1][0] == "rejected"
    assert states[1][1].startswith("value_not_json")
    assert states[2][0] == "failed-reported"
    assert states[3][0] == "skipped"
    assert status == 0
    assert report["ok"] is True
    assert report["totals"]["records"] == 4
    assert report["records"][2]["sentToApi"][0]["metadata"]["testStatus"] == "FAILED"
    assert (report_path.parent / "report-logs" / "functions" / "mm-example-router.log").is_file()
    out = capsys.readouterr().out
    assert "value_not_json" in out
    assert "rejected" in out


@pytest.mark.xdist_group("e2e-cli-deadline")
def test_exit_status_is_non_zero_and_names_the_records_unaccounted_at_the_deadline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a submission whose scorer runs long, and a deadline far shorter than the challenge timeout
    submission = submission_payload(challenge_id=ROUTE_PLANNER, url=ALLOWED_URL)
    messages = tmp_path / "messages.jsonl"
    messages.write_text(json.dumps(bus_envelope(submission)) + "\n")
    # When the run's deadline passes with the task still running
    status = main(
        [
            "local",
            "run",
            "--messages",
            str(messages),
            "--scorer",
            f"{ROUTE_PLANNER}=run-long",
            "--timeout",
            "0.5",
            "--report",
            str(tmp_path / "report.json"),
        ]
    )
    # Then the exit status is non-zero and the record is named
    assert status == EXIT_UNACCOUNTED
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is False
    assert report["deadlineHit"] is True
    assert report["unaccounted"] == [
        {"position": 0, "submissionId": report["records"][0]["submissionId"], "reason": report["records"][0]["reason"]}
    ]
    out = capsys.readouterr().out
    assert "unaccounted" in out
    assert "record 0" in out


def test_bad_arguments_exit_with_usage_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "run", "--scorer", "no-equals-sign"]) == EXIT_USAGE
    assert main(["local", "run", "--fault", f"{ROUTE_PLANNER}=meteor"]) == EXIT_USAGE
    assert main(["local", "run", "--env", "nope"]) == EXIT_USAGE
    assert main(["local", "run", "--messages", str(tmp_path / "missing.jsonl")]) == EXIT_USAGE
    out = capsys.readouterr().out
    assert "ID=BEHAVIOUR" in out
    assert "capacity" in out


def test_generate_can_flood_one_challenge(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from infrastructure.config import load_environment
    from local_pipeline.scenario import generate

    # Given the example environment's two active challenges
    config = load_environment("example")
    # When N submissions are generated for one of them, then without a target
    flood = generate(config, 6, challenge_id=ROUTE_PLANNER)
    spread = generate(config, 6)
    # Then every flooded submission is that challenge's, while the default spreads them round-robin
    assert {json.loads(r.value)["payload"]["challengeId"] for r in flood} == {ROUTE_PLANNER}
    assert len({json.loads(r.value)["payload"]["challengeId"] for r in spread}) == 2
    # And a challenge the environment does not serve (or --challenge without --generate) is a usage error
    unknown = "99999999-9999-4999-8999-999999999999"
    assert main(["local", "run", "--generate", "3", "--challenge", unknown]) == EXIT_USAGE
    assert "not an active challenge" in capsys.readouterr().out
    assert main(["local", "run", "--challenge", ROUTE_PLANNER]) == EXIT_USAGE
    assert "--challenge goes with --generate" in capsys.readouterr().out
