"""The built-in v6 example set (environment `dev`: platform v6, EXAMPLE and PROVISIONAL on every new
submission) through the whole local pipeline: a run is (submission, phase), each run gets its own task and
exactly one terminal review summation for its phase on the stand-in's review-api-v6 (decision 090)."""

from __future__ import annotations

import pytest

from local_pipeline.results import task_run_key
from mm_contracts.models.phase import ScoringPhase, run_id
from tests.e2e.conftest import ExampleRun

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-example-v6")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
BOTH = ("EXAMPLE", "PROVISIONAL")


def _summations(run: ExampleRun, submission_id: str, phase: str) -> list[dict[str, object]]:
    standin = run.pipeline.standin
    assert standin is not None
    return standin.summations_for(submission_id, phase)


def test_every_record_and_every_run_ends_in_its_expected_final_state(example_run_v6: ExampleRun) -> None:
    outcome = example_run_v6.outcome
    expected = {e.line: e for e in example_run_v6.scenario.expected}
    assert set(expected) == {r.position for r in outcome.records}
    for record in outcome.records:
        expectation = expected[record.position]
        where = f"line {record.position} ({expectation.note})"
        assert record.state == expectation.state, f"{where}: {record.state}: {record.reason}"
        if expectation.reason:
            assert record.reason.startswith(expectation.reason), f"{where}: {record.reason}"
        if expectation.runs:
            assert {r.phase: r.state for r in record.runs} == expectation.runs, where
    assert outcome.unaccounted == []
    assert outcome.violations == []
    assert outcome.api_violations == []  # every request validated against the review-api-v6 yaml
    assert outcome.secret_leaks == []
    assert outcome.ok


def test_a_submission_with_example_and_provisional_gets_two_tasks_two_runs_each_reported_once(
    example_run_v6: ExampleRun,
) -> None:
    record = example_run_v6.record(0)
    fargate = example_run_v6.pipeline.fargate
    assert fargate is not None
    tasks = fargate.tasks_for(str(record.submission_id))
    # two tasks, one per phase, each telling the scorer its phase
    assert sorted(task_run_key(t.overrides, t.tags, str(t.submission_id)) for t in tasks) == sorted(
        run_id(str(record.submission_id), phase) for phase in BOTH
    )
    assert sorted(r.phase for r in record.runs) == sorted(BOTH)
    for phase in BOTH:
        (summation,) = _summations(example_run_v6, str(record.submission_id), phase)
        assert summation[ScoringPhase(phase).summation_flag] is True
        assert summation["isPassing"] is True  # the scorer posted its own result


def test_the_duplicate_launches_nothing_more(example_run_v6: ExampleRun) -> None:
    first, duplicate = example_run_v6.record(0), example_run_v6.record(4)
    assert duplicate.submission_id == first.submission_id
    assert duplicate.state == "skipped"
    fargate = example_run_v6.pipeline.fargate
    assert fargate is not None
    assert len(fargate.tasks_for(str(first.submission_id))) == 2
    assert first.task_count == 2


def test_a_failed_run_gets_one_terminal_failed_summation_for_its_phase_only(example_run_v6: ExampleRun) -> None:
    record = example_run_v6.record(2)
    provisional = record.run("PROVISIONAL")
    assert provisional is not None
    assert provisional.state == "failed-reported"
    (summation,) = _summations(example_run_v6, str(record.submission_id), "PROVISIONAL")
    assert summation["aggregateScore"] == -1
    assert summation["isPassing"] is False
    assert summation["isProvisional"] is True
    metadata = summation["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["testStatus"] == "FAILED"
    assert metadata["testType"] == "provisional"
    assert metadata["exitCode"] == 1
    assert metadata["taskArn"] == provisional.task_arn
    # the EXAMPLE run of the same submission is unaffected: scored, with the scorer's own summation
    (example,) = _summations(example_run_v6, str(record.submission_id), "EXAMPLE")
    assert example["isPassing"] is True


def test_a_timed_out_run_is_marked_timed_out_in_its_summation(example_run_v6: ExampleRun) -> None:
    record = example_run_v6.record(3)
    assert record.run("EXAMPLE") is not None
    (summation,) = _summations(example_run_v6, str(record.submission_id), "EXAMPLE")
    metadata = summation["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["timed_out"] is True
    assert summation["aggregateScore"] == -1


def test_a_skipped_submission_gets_a_failed_summation_per_phase_and_no_task(example_run_v6: ExampleRun) -> None:
    record = example_run_v6.record(5)
    assert record.state == "skipped"
    assert record.task_count == 0
    for phase in BOTH:
        (summation,) = _summations(example_run_v6, str(record.submission_id), phase)
        metadata = summation["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["testStatus"] == "FAILED"
        assert metadata.get("reason")


def test_malformed_records_are_rejected_with_their_reason(example_run_v6: ExampleRun) -> None:
    for line, reason in ((6, "value_not_json"), (7, "submission_id_not_nanoid"), (8, "url_host_not_allowed")):
        record = example_run_v6.record(line)
        assert record.state == "rejected", line
        assert record.reason.startswith(reason), record.reason


def test_the_report_counts_runs_by_phase_and_the_summations(example_run_v6: ExampleRun) -> None:
    from local_pipeline.report import to_report

    totals = to_report(example_run_v6.outcome)["totals"]
    by_phase = totals["runs"]["byPhase"]
    assert set(by_phase) == set(BOTH)
    assert sum(by_phase["EXAMPLE"].values()) == sum(by_phase["PROVISIONAL"].values()) == totals["runs"]["total"] // 2
    summations = totals["v6Summations"]
    assert summations["runsWithMoreThanOne"] == []
    assert summations["count"] == totals["runs"]["total"]  # exactly one summation per run
