"""v5 and v6 environments side by side in one emulator (`make run`: `local run --env example --env dev`), with
no shared state: one messages file mixing both platforms, each record fed to the environment whose topic it
names, each environment with its own tables, queues, functions, stand-in and fake Fargate (decision 090)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from operator_tools.cli import EXIT_OK, main
from tests.builders import bus_envelope, submission_payload

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-side-by-side")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
ALLOWED_URL = "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip"
V6_SUBMISSION = "J_I8ujYTQaMBV1"


def _v6_bare_payload() -> dict[str, Any]:
    return {
        "submissionId": V6_SUBMISSION,
        "challengeId": ROUTE_PLANNER,
        "submissionUrl": ALLOWED_URL,
        "memberHandle": "tourist",
        "memberId": "88770025",
        "submittedDate": "2026-03-02T10:15:00.000Z",
    }


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Given one file with a v5 envelope and a bare v6 payload, for the same challenge id
    v5 = submission_payload(challenge_id=ROUTE_PLANNER, url=ALLOWED_URL)
    directory = tmp_path_factory.mktemp("side-by-side")
    messages = directory / "mixed.jsonl"
    messages.write_text(json.dumps(bus_envelope(v5)) + "\n" + json.dumps(_v6_bare_payload()) + "\n")
    report_path: Path = directory / "report.json"
    # When both environments run it side by side
    status = main(
        ["local", "run", "--env", "example", "--env", "dev", "--messages", str(messages), "--report", str(report_path)]
    )
    return {"status": status, "report": json.loads(report_path.read_text()), "v5": v5["id"]}


def test_both_environments_run_and_report(side_by_side: dict[str, Any]) -> None:
    report = side_by_side["report"]
    assert side_by_side["status"] == EXIT_OK, json.dumps(report)[:3000]
    assert report["ok"] is True
    assert set(report["environments"]) == {"example", "dev"}


def test_the_topic_decides_which_environment_a_record_goes_to(side_by_side: dict[str, Any]) -> None:
    environments = side_by_side["report"]["environments"]
    v5_records, v6_records = environments["example"]["records"], environments["dev"]["records"]
    assert [r["submissionId"] for r in v5_records] == [side_by_side["v5"]]
    assert [r["submissionId"] for r in v6_records] == [V6_SUBMISSION]
    # v5: one run, one v5 review; v6: two runs (EXAMPLE, PROVISIONAL), one summation each, no v5 review
    assert [run["phase"] for run in v5_records[0]["runs"]] == ["PROVISIONAL"]
    assert v5_records[0]["state"] == "scored"
    assert sorted(run["phase"] for run in v6_records[0]["runs"]) == ["EXAMPLE", "PROVISIONAL"]
    assert v6_records[0]["state"] == "scored"
    assert all(len(run["sentToApi"]) == 1 for run in v6_records[0]["runs"])


def test_no_state_is_shared_between_the_environments(side_by_side: dict[str, Any]) -> None:
    environments = side_by_side["report"]["environments"]
    v5, v6 = environments["example"]["totals"], environments["dev"]["totals"]
    # each environment's API stand-in saw only its own platform's reports
    assert v5["v6Summations"]["count"] == 0
    assert v6["v6Summations"]["count"] == 2
    # each fake Fargate started only its own environment's tasks
    assert v5["tasksStarted"] == 1
    assert v6["tasksStarted"] == 2
    # every function's AWS calls are its own environment's (the counting key carries the environment)
    callers = {name: set(env["awsCalls"]["byFunction"]) for name, env in environments.items()}
    assert all(function.startswith("mm-example-") for function in callers["example"])
    assert all(function.startswith("mm-dev-") for function in callers["dev"])
    assert not {c for c in environments["example"]["awsCalls"]["byCaller"] if c.startswith("local-dev-")}
