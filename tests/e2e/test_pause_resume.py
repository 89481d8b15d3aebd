"""Pause and resume a challenge through the whole local pipeline (v5 environment `example`, decision 105), with
`mm-processor pause` / `resume` against the emulator's endpoint, as an operator points them at AWS.

While the challenge is paused, submissions keep arriving: each waits (WAITING, "challenge paused by an operator"),
and no task starts, not even when a sweep runs (the admission transaction itself refuses a paused challenge). After
`resume` (whose dispatch trigger starts a sweep at once: the sweeper's schedule is set far out here), every one of
them is launched once and reported once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import generate
from mm_adapters.status_store import StatusStore
from mm_capacity.store import CapacityStore
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from operator_tools.cli import main
from tests.e2e import operator_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-pause-resume")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"  # example: v5, one PROVISIONAL run per submission, cap 5
ARRIVING = 3
PAUSED_WAIT_REASON = "challenge paused by an operator"
_SETTLED = frozenset({ReportStatus.REPORTED, ReportStatus.NOT_REQUIRED})


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[LocalPipeline]:
    with operator_pipeline.serving("example", tmp_path / "logs") as pipeline:
        yield pipeline


def _operator(pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    status = main([*argv, "--env", "example", "--endpoint-url", pipeline.aws.endpoint, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out[out.index("{") :])


def _submission_ids(values: list[bytes]) -> list[str]:
    return [str(json.loads(value)["payload"]["id"]) for value in values]


def _tasks(pipeline: LocalPipeline, submission_id: str) -> list[Any]:
    assert pipeline.fargate is not None
    return list(pipeline.fargate.tasks_for(submission_id))


def _paused_and_waiting(record: LifecycleRecord | None) -> bool:
    return record is not None and record.state is SubmissionState.WAITING and record.wait_reason == PAUSED_WAIT_REASON


def _done(record: LifecycleRecord | None) -> bool:
    return record is not None and record.state in FINAL_STATES and record.report_status in _SETTLED


def test_a_paused_challenge_holds_its_arrivals_and_scores_each_once_after_resume(
    serving: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = serving
    names = pipeline.plan.names
    dynamodb = pipeline.aws.client("dynamodb")
    store = StatusStore(names.status_table, dynamodb_client=dynamodb)
    capacity = CapacityStore(names.capacity_table, names.status_table, dynamodb_client=dynamodb)
    # Given the operator paused the challenge
    status, document = _operator(pipeline, capsys, "pause", ROUTE_PLANNER, "--yes", "--reason", "scorer fix")
    assert (status, document["changed"]) == (0, True)

    # When submissions arrive meanwhile
    records = generate(pipeline.config, ARRIVING, seed=12, challenge_id=ROUTE_PLANNER)
    submissions = _submission_ids([record.value for record in records])
    runs = [run_id(submission, ScoringPhase.PROVISIONAL) for submission in submissions]
    pipeline.feed(records)
    operator_pipeline.wait_until(
        lambda: all(_paused_and_waiting(store.get(r)) for r in runs), "every arrival waits, paused"
    )
    # and a sweep runs while it is paused
    pipeline.invoke(names.sweeper_function, {"source": "test"})

    # Then every one still waits in the challenge's queue, and no task was started for any
    assert all(_paused_and_waiting(store.get(r)) for r in runs)
    assert {entry.run_id for entry in capacity.queue_entries(ROUTE_PLANNER)} == set(runs)
    assert all(_tasks(pipeline, submission) == [] for submission in submissions)
    status, queue = _operator(pipeline, capsys, "queue", ROUTE_PLANNER)
    assert status == 0
    assert queue["paused"] is True
    assert sorted(row["runId"] for row in queue["queue"]) == sorted(runs)

    # When the operator resumes it
    status, document = _operator(pipeline, capsys, "resume", ROUTE_PLANNER, "--yes", "--reason", "fixed")
    assert (status, document["changed"]) == (0, True)
    assert document["dispatch"].startswith("sweep started"), document["dispatch"]

    # Then every arrival is launched once and reported once
    operator_pipeline.wait_until(lambda: all(_done(store.get(r)) for r in runs), "every arrival is final and reported")
    assert pipeline.standin is not None
    for submission in submissions:
        assert len(_tasks(pipeline, submission)) == 1
        assert len(pipeline.standin.reviews_for(submission)) == 1
    # and the challenge's change log has the pause and the resume, newest first
    status, audit = _operator(pipeline, capsys, "audit", ROUTE_PLANNER)
    assert [(change["action"], change["reason"]) for change in audit["changes"]] == [
        ("resume", "fixed"),
        ("pause", "scorer fix"),
    ]
