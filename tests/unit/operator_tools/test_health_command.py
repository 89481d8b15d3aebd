"""`mm-processor health`: the environment's checks (decision 111), with the stuck-run checks on the `byStateDeadline`
index: LAUNCHING past its lease beyond the sweeper's stuck-launch threshold plus one sweep, a report
PENDING/REPORTING past its deadline beyond one sweep interval."""

from __future__ import annotations

import argparse
import time

import pytest

from infrastructure.wiring import MAX_RECEIVE_COUNT, SWEEPER_MARGIN_SECONDS, VISIBILITY_TIMEOUT_FACTOR
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from operator_tools import health, health_command
from operator_tools.context import EXIT_FAILED, EXIT_OK, OperatorContext
from operator_tools.health import GAVE_UP_NOTE, STUCK_LAUNCHES_CHECK, STUCK_REPORTS_CHECK
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.dead_letter_helpers import put_run, run_command

NOW = int(time.time())  # whole seconds: the boundary tests compare with the index's integer deadlines


def _health(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict]]:
    status, document = run_command(
        health_command.add_arguments, health_command.run, capsys, [], deployed.clients, now=NOW
    )
    return status, {check["name"]: check for check in document["checks"]}


def _grace(deployed: Deployed) -> int:
    return deployed.plan.config.sweeper_interval_minutes * 60


def test_a_fresh_environment_is_healthy_with_the_stuck_checks(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    status, checks = _health(deployed, capsys)
    assert status == EXIT_OK, [c for c in checks.values() if not c["ok"]]
    assert checks[STUCK_LAUNCHES_CHECK]["ok"]
    assert checks[STUCK_REPORTS_CHECK]["ok"]


def _launch_grace(deployed: Deployed) -> int:
    """The sweeper's stuck-launch threshold (decision 080) plus one sweep."""
    visibility = VISIBILITY_TIMEOUT_FACTOR * deployed.plan.config.challenge_processor.timeout_seconds
    return visibility * MAX_RECEIVE_COUNT + SWEEPER_MARGIN_SECONDS + _grace(deployed)


def test_a_launch_is_stuck_only_once_the_sweeper_should_have_dead_lettered_it(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    grace = _launch_grace(deployed)
    assert health.launch_stuck_after_seconds(deployed.plan) + _grace(deployed) == grace
    launching = SubmissionState.LAUNCHING
    stuck = put_run(deployed, "sub-stuck", ROUTE_PLANNER, state=launching, deadline_at=NOW - grace - 1)
    put_run(deployed, "sub-boundary", ROUTE_PLANNER, state=launching, deadline_at=NOW - grace)
    # past its lease by more than a sweep, but SQS may still redeliver its message: not stuck yet
    put_run(deployed, "sub-redelivered", ROUTE_PLANNER, state=launching, deadline_at=NOW - _grace(deployed) - 60)
    status, checks = _health(deployed, capsys)
    assert status == EXIT_FAILED
    failed = [name for name, check in checks.items() if not check["ok"]]
    assert failed == [STUCK_LAUNCHES_CHECK]
    detail = checks[STUCK_LAUNCHES_CHECK]["detail"]
    assert detail.startswith(f"1 run(s) LAUNCHING past their lease by more than {grace} s")
    assert stuck in detail
    assert "sub-boundary" not in detail
    assert "sub-redelivered" not in detail


def test_more_stuck_runs_than_one_query_reads_are_said_as_at_least(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(3):
        put_run(
            deployed,
            f"sub-{index}",
            ROUTE_PLANNER,
            state=SubmissionState.LAUNCHING,
            deadline_at=NOW - _launch_grace(deployed) - 60 - index,
        )
    monkeypatch.setattr(health, "STUCK_QUERY_LIMIT", 2)
    _, checks = _health(deployed, capsys)
    assert checks[STUCK_LAUNCHES_CHECK]["detail"].startswith("at least 2 run(s) LAUNCHING")
    monkeypatch.setattr(health, "STUCK_QUERY_LIMIT", 3)
    _, checks = _health(deployed, capsys)
    assert checks[STUCK_LAUNCHES_CHECK]["detail"].startswith("3 run(s) LAUNCHING")


def test_the_report_check_says_it_cannot_see_reports_the_sweeper_gave_up_on(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given up: the sweeper cleared its deadline, so it is off the byStateDeadline index
    put_run(deployed, "sub-gave-up", ROUTE_PLANNER, state=SubmissionState.FAILED, report_status=ReportStatus.PENDING)
    _, checks = _health(deployed, capsys)
    check = checks[STUCK_REPORTS_CHECK]
    assert check["ok"]
    assert "sub-gave-up" not in check["detail"]
    assert check["detail"].endswith(GAVE_UP_NOTE)
    assert "ReportRetryGaveUp" in GAVE_UP_NOTE


def test_a_report_still_pending_past_its_deadline_is_stuck_and_a_reported_one_is_not(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    late = int(NOW - _grace(deployed) - 60)
    pending = put_run(
        deployed,
        "sub-pending",
        ROUTE_PLANNER,
        state=SubmissionState.FAILED,
        deadline_at=late,
        report_status=ReportStatus.PENDING,
    )
    dead = put_run(
        deployed,
        "sub-dead",
        ROUTE_PLANNER,
        state=SubmissionState.DEAD_LETTERED,
        deadline_at=late,
        report_status=ReportStatus.REPORTING,
    )
    put_run(
        deployed,
        "sub-done",
        ROUTE_PLANNER,
        state=SubmissionState.FAILED,
        deadline_at=late,
        report_status=ReportStatus.REPORTED,
    )
    status, checks = _health(deployed, capsys)
    assert status == EXIT_FAILED
    assert [name for name, check in checks.items() if not check["ok"]] == [STUCK_REPORTS_CHECK]
    detail = checks[STUCK_REPORTS_CHECK]["detail"]
    assert detail.startswith("2 report(s)")
    assert pending in detail
    assert dead in detail
    assert "sub-done" not in detail
    assert detail.endswith(GAVE_UP_NOTE)


def test_the_human_table_names_each_check_and_the_verdict(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    put_run(deployed, "sub-stuck", ROUTE_PLANNER, state=SubmissionState.LAUNCHING, deadline_at=int(NOW - 86_400))
    parser = argparse.ArgumentParser()
    health_command.add_arguments(parser)
    args = parser.parse_args(["--env", "example"])
    status = health_command.run(args, OperatorContext.from_args(args, clients=deployed.clients), now=NOW)
    out = capsys.readouterr().out
    assert status == EXIT_FAILED
    assert "FAIL stuck launches" in out
    assert "ok   credentials" in out
    assert out.rstrip().endswith("example: 1 check(s) failed")
