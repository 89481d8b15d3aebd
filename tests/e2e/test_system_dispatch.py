"""SYSTEM dispatch and a rerun through the whole local pipeline (v6 environment `dev`, decisions 106, 109): the
submissions are scored EXAMPLE and PROVISIONAL as they arrive; then `mm-processor dispatch-system` (against the
emulator's endpoint, as an operator points it at AWS) gives each member's latest submission one SYSTEM run, each
launched once and reported once, and its summary says so; then `mm-processor rerun` of one scored run starts one new
task and posts one new summation.

The sweeper's schedule is set far out here, so what admits the operator's runs is the dispatch trigger's sweep (an
asynchronous Invoke of the sweeper through the emulator, decision 109), then the completion function as slots free.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_pipeline.engine import LocalPipeline
from local_pipeline.results import task_run_key
from local_pipeline.scenario import InputRecord
from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus
from mm_contracts.models.phase import ScoringPhase, run_id
from operator_tools.cli import main
from tests.e2e import operator_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-system-dispatch")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"  # dev: EXAMPLE and PROVISIONAL on arrival, SYSTEM later
EARLIER, LATER, OTHER = "SysDispatchA01", "SysDispatchA02", "SysDispatchB01"  # member A twice, member B once
ON_ARRIVAL = (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL)
_SETTLED = frozenset({ReportStatus.REPORTED, ReportStatus.NOT_REQUIRED, ReportStatus.REJECTED})


def _record(position: int, submission_id: str, member_id: int, submitted: str) -> InputRecord:
    payload = {
        "submissionId": submission_id,
        "challengeId": ROUTE_PLANNER,
        "submissionUrl": f"https://topcoder-submissions.s3.amazonaws.com/mm/{submission_id}.zip",
        "memberHandle": f"member{member_id}",
        "memberId": str(member_id),
        "submittedDate": submitted,
    }
    envelope = {
        "topic": "marathonmatch.submission.received",
        "originator": "review-api-v6",
        "timestamp": submitted,
        "mime-type": "application/json",
        "payload": payload,
    }
    return InputRecord(position=position, value=json.dumps(envelope).encode())


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[LocalPipeline]:
    records = [
        _record(0, EARLIER, 88770001, "2027-01-15T10:00:00.000Z"),
        _record(1, LATER, 88770001, "2027-01-15T11:00:00.000Z"),
        _record(2, OTHER, 88770002, "2027-01-15T10:30:00.000Z"),
    ]
    with operator_pipeline.serving("dev", tmp_path / "logs", records) as pipeline:
        yield pipeline


def _store(pipeline: LocalPipeline) -> StatusStore:
    return StatusStore(pipeline.plan.names.status_table, dynamodb_client=pipeline.aws.client("dynamodb"))


def _done(record: LifecycleRecord | None) -> bool:
    return record is not None and record.state in FINAL_STATES and record.report_status in _SETTLED


def _operator(pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    status = main(
        [*argv, "--env", "dev", "--endpoint-url", pipeline.aws.endpoint, "--yes", "--reason", "e2e", "--json"]
    )
    out = capsys.readouterr().out
    return status, json.loads(out[out.index("{") :])


def _summations(pipeline: LocalPipeline, submission_id: str, phase: ScoringPhase) -> list[dict[str, Any]]:
    assert pipeline.standin is not None
    return pipeline.standin.summations_for(submission_id, phase.value)


def _tasks(pipeline: LocalPipeline, submission_id: str, phase: ScoringPhase) -> list[Any]:
    assert pipeline.fargate is not None
    wanted = run_id(submission_id, phase)
    tasks = pipeline.fargate.tasks_for(submission_id)
    return [t for t in tasks if task_run_key(t.overrides, t.tags, str(t.submission_id)) == wanted]


def test_system_dispatch_and_a_rerun_through_the_local_pipeline(
    serving: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = serving
    store = _store(pipeline)
    arrival = [run_id(s, p) for s in (EARLIER, LATER, OTHER) for p in ON_ARRIVAL]
    # Given three submissions (member A twice, member B once), each scored EXAMPLE and PROVISIONAL and reported
    operator_pipeline.wait_until(
        lambda: all(_done(store.get(r)) for r in arrival), "every arrival run is final and reported"
    )

    # When the operator dispatches SYSTEM for the challenge and waits for it
    status, document = _operator(pipeline, capsys, "dispatch-system", ROUTE_PLANNER, "--wait", "120")

    # Then each member's latest submission got one SYSTEM run (member A's earlier one none), each launched once
    # and reported once, and the summary counts them
    assert status == 0, document
    assert sorted(r["runId"] for r in document["runs"]) == sorted(
        run_id(s, ScoringPhase.SYSTEM) for s in (LATER, OTHER)
    )
    assert {r["outcome"] for r in document["runs"]} == {"created"}
    assert document["dispatch"].startswith("sweep started"), document["dispatch"]
    summary = document["summary"]
    assert (summary["members"], summary["dispatched"], summary["not_dispatched"]) == (2, 2, 0)
    assert (summary["final"], summary["reported"], summary["pending"], summary["rejected"]) == (2, 2, 0, 0)
    assert summary["complete"] is True
    for submission_id in (LATER, OTHER):
        assert len(_tasks(pipeline, submission_id, ScoringPhase.SYSTEM)) == 1
        (summation,) = _summations(pipeline, submission_id, ScoringPhase.SYSTEM)
        assert summation["isFinal"] is True
    assert store.get(run_id(EARLIER, ScoringPhase.SYSTEM)) is None
    assert _summations(pipeline, EARLIER, ScoringPhase.SYSTEM) == []
    assert pipeline.lambda_endpoint is not None
    assert [i["function"] for i in pipeline.lambda_endpoint.invocations].count(
        pipeline.plan.names.sweeper_function
    ) == 1

    # When the operator reruns member B's PROVISIONAL run
    provisional = run_id(OTHER, ScoringPhase.PROVISIONAL)
    before = store.get(provisional)
    assert before is not None
    status, document = _operator(pipeline, capsys, "rerun", OTHER, "--phase", "PROVISIONAL")
    assert status == 0, document
    assert [r["outcome"] for r in document["runs"]] == ["queued"]
    operator_pipeline.wait_until(
        lambda: _done(store.get(provisional)) and len(_summations(pipeline, OTHER, ScoringPhase.PROVISIONAL)) == 2,
        "the rerun is final and reported",
    )

    # Then it ran as a new task (a new attempt) and was reported once more
    after = store.get(provisional)
    assert after is not None
    assert after.launch_attempt > before.launch_attempt
    tasks = _tasks(pipeline, OTHER, ScoringPhase.PROVISIONAL)
    assert len(tasks) == 2
    assert len(_summations(pipeline, OTHER, ScoringPhase.PROVISIONAL)) == 2
    assert len(_summations(pipeline, OTHER, ScoringPhase.SYSTEM)) == 1  # nothing else changed
