"""Stop a run's task through the whole local pipeline (v5 environment `example`) with `mm-processor stop` against the
emulator's endpoint, as an operator points it at AWS (decision 107).

The local pipeline's tasks live in its fake Fargate, not in moto's ECS: the emulator forwards a task call of the
fake's cluster there (`LocalAws.route_ecs_tasks`), so one `--endpoint-url` reaches them. The scorer runs long (far
past anything this test waits for; the sweeper's schedule is set far out, so only the operator stops it): StopTask
ends it, its STOPPED event (UserInitiated, the operator's reason) reaches the completion function, and the run ends
"stopped by an operator", reported once, with the operator's audit entry in its history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import generate
from mm_adapters.status_store import StatusStore
from mm_contracts.models.audit import OPERATOR_HISTORY_STATE
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from operator_tools.cli import main
from tests.e2e import operator_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-stop-command")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"  # example: v5, one PROVISIONAL run per submission
OPERATOR_STOP = "stopped by an operator"
_SETTLED = frozenset({ReportStatus.REPORTED, ReportStatus.NOT_REQUIRED})


def _wait_until(check: Callable[[], bool], what: str, seconds: float = 45.0) -> None:
    operator_pipeline.wait_until(check, what, seconds, poll=0.25)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[LocalPipeline]:
    with operator_pipeline.serving("example", tmp_path / "logs") as pipeline:
        yield pipeline


def _launched(record: LifecycleRecord | None) -> bool:
    return record is not None and record.state is SubmissionState.LAUNCHED and bool(record.task_arn)


def _done(record: LifecycleRecord | None) -> bool:
    return record is not None and record.state in FINAL_STATES and record.report_status in _SETTLED


def test_stop_against_the_local_pipeline_ends_the_run_as_an_operators_stop_reported_once(
    serving: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = serving
    assert pipeline.fargate is not None
    assert pipeline.standin is not None
    store = StatusStore(pipeline.plan.names.status_table, dynamodb_client=pipeline.aws.client("dynamodb"))
    # Given a submission whose scorer runs long, launched
    pipeline.fargate.set_behaviour(ROUTE_PLANNER, "run-long")
    records = generate(pipeline.config, 1, seed=21, challenge_id=ROUTE_PLANNER)
    submission = str(json.loads(records[0].value)["payload"]["id"])
    the_run = run_id(submission, ScoringPhase.PROVISIONAL)
    pipeline.feed(records)
    _wait_until(lambda: _launched(store.get(the_run)), "the run is launched")
    [task] = pipeline.fargate.tasks_for(submission)

    # When the operator stops it through the emulator's one endpoint
    capsys.readouterr()
    argv = ["stop", the_run, "--yes", "--reason", "scorer hangs", "--env", "example", "--json"]
    status = main([*argv, "--endpoint-url", pipeline.aws.endpoint])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    document = json.loads(captured.out)
    assert (document["stopped"], document["audited"], document["taskArn"]) == (True, True, task.arn)

    # Then the run ends as an operator's stop, reported once
    _wait_until(lambda: _done(store.get(the_run)), "the run is final and its outcome reported")
    record = store.get(the_run)
    assert record is not None
    assert record.state is SubmissionState.FAILED
    assert record.reason is not None
    assert OPERATOR_STOP in record.reason
    assert "scorer hangs" in record.reason
    assert record.stop_code == "UserInitiated"
    assert len(pipeline.fargate.tasks_for(submission)) == 1
    assert len(pipeline.standin.reviews_for(submission)) == (1 if record.report_status is ReportStatus.REPORTED else 0)
    # and its history has the operator's one audit entry, of this request
    entries = [event for event in record.history if event.state == OPERATOR_HISTORY_STATE]
    assert len(entries) == 1
    assert f"[request {document['requestId']}]" in entries[0].detail
