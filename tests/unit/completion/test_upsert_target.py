"""Which v6 summation a run's report updates (decision 106): the current task's, else the newest the scorer posted
since the task launched, else the run's own earlier one; never another task's of ours while a better one exists."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from completion_lambda.reporting import REPORTED_BY, upsert_target
from tests.unit.completion.test_reporting_v6 import ARN, run_report

EARLIER_TASK = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/earlier0000000000"


def ours(summation_id: str, created: str, task: str) -> dict[str, object]:
    report = run_report()
    metadata = {"reportedBy": REPORTED_BY, "runId": report.run.run_id, "taskArn": task}
    return {"id": summation_id, "createdAt": created, "metadata": metadata}


def test_the_current_tasks_summation_comes_first_then_the_newest_scorer_posted() -> None:
    report = run_report()
    earlier_run = ours("old", "2027-01-01T00:00:00Z", EARLIER_TASK)
    scorer = {"id": "scorer", "createdAt": "2027-01-02T00:00:00Z", "metadata": {"scorer": "x"}}
    current = ours("current", "2027-01-03T00:00:00Z", ARN)

    assert upsert_target([earlier_run, scorer, current], report) == current
    assert upsert_target([earlier_run, scorer], report) == scorer  # never the earlier task's, though it is ours
    assert upsert_target([earlier_run], report) == earlier_run  # nothing newer: the run's own summation


def test_a_scorer_summation_from_before_the_task_launched_is_not_this_tasks() -> None:
    report = dataclasses.replace(run_report(), launched_at=datetime(2027, 1, 2, 12, 0, tzinfo=UTC))
    earlier_run = ours("old", "2027-01-01T00:00:00Z", EARLIER_TASK)
    stale = {"id": "stale", "createdAt": "2027-01-02T00:00:00Z"}  # posted before this task launched
    fresh = {"id": "fresh", "createdAt": "2027-01-02T13:00:00Z"}

    assert upsert_target([earlier_run, stale], report) == earlier_run
    assert upsert_target([earlier_run, stale, fresh], report) == fresh
