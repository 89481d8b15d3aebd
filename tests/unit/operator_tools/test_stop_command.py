"""`mm-processor stop RUN_ID`: StopTask of a launched run's task with the operator's reason, and its audit entry.

moto's Fargate RunTask cannot start a task here, so ECS is the repository's ECS fake (tests/fakes/ecs.py, decision
077: StopTask keeps the caller's reason and answers UserInitiated); DynamoDB is moto's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from completion_lambda.outcome import decide_outcome
from mm_adapters.status_store import StatusStore
from mm_contracts.models.audit import OPERATOR_HISTORY_STATE
from mm_contracts.models.ecs_event import EcsTaskStateChangeDetail
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.outcome import OutcomeCode, TestStatus
from operator_tools.clients import AwsClients
from operator_tools.context import ChangeGate
from operator_tools.stop import MAX_STOP_REASON, stop_reason
from tests.fakes.clock import VirtualClock
from tests.fakes.ecs import FakeEcs, fake_ecs_client
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import (
    NAMES,
    cli,
    launched_run,
    output_json,
    status_store,
    waiting_run,
)

_Scheduled = list[tuple[float, Callable[[], None], str]]


@pytest.fixture
def ecs(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeEcs, _Scheduled]:
    """The commands' ECS client answered by the fake; every other service is moto's."""
    scheduled: _Scheduled = []
    fake = FakeEcs(VirtualClock(), lambda at, action, label: scheduled.append((at, action, label)))
    client = fake_ecs_client(fake)
    original = AwsClients.client

    def client_for(self: AwsClients, service_name: str) -> Any:
        return client if service_name == "ecs" else original(self, service_name)

    monkeypatch.setattr(AwsClients, "client", client_for)
    return fake, scheduled


def _running_task(fake: FakeEcs) -> tuple[str, str]:
    task = fake.run_task({"cluster": "mm-scorers", "taskDefinition": "route-planner:3"})["tasks"][0]
    return task["taskArn"], task["clusterArn"]


def test_stop_stops_the_task_with_the_operators_reason_and_audits_it(
    deployed: Deployed, ecs: tuple[FakeEcs, _Scheduled], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, scheduled = ecs
    task_arn, cluster_arn = _running_task(fake)
    the_run = launched_run(deployed, ROUTE_PLANNER, 1, task_arn=task_arn, cluster_arn=cluster_arn)
    # When the operator stops the run
    assert cli("stop", the_run, "--yes", "--reason", "scorer hangs on this input", "--json") == 0
    document = output_json(capsys)
    # Then ECS stops its task (UserInitiated) with "Stopped by operator <actor>: <why>"
    assert fake.tasks[task_arn].desired_status == "STOPPED"
    for _, action, _ in scheduled:
        action()
    described = fake.describe_tasks({"tasks": [task_arn]})["tasks"][0]
    assert described["stopCode"] == "UserInitiated"
    assert described["stoppedReason"].startswith("Stopped by operator ")
    assert described["stoppedReason"].endswith(": scorer hangs on this input")
    # which the completion records as an operator's stop (not a timeout, not a supersede)
    outcome = decide_outcome(EcsTaskStateChangeDetail.model_validate(described), scorer_container_name="scorer")
    assert (outcome.code, outcome.test_status) == (OutcomeCode.FAILED, TestStatus.CANCELLED)
    assert outcome.reason.startswith("scorer run was stopped by an operator: Stopped by operator ")
    # And the run's history has the audit entry of this request
    record = status_store(deployed).get(the_run)
    assert record is not None
    entries = [event for event in record.history if event.state == OPERATOR_HISTORY_STATE]
    assert len(entries) == 1
    assert f"[request {document['requestId']}]" in entries[0].detail
    assert "operator stop by " in entries[0].detail
    assert document["audited"] is True


def test_a_run_that_is_not_launched_is_refused_with_its_state(
    deployed: Deployed, ecs: tuple[FakeEcs, _Scheduled], capsys: pytest.CaptureFixture[str]
) -> None:
    the_run = waiting_run(deployed, ROUTE_PLANNER, 1)
    assert cli("stop", the_run, "--yes", "--reason", "why") == 1
    assert "is WAITING, not LAUNCHED" in capsys.readouterr().err
    record = status_store(deployed).get(the_run)
    assert record is not None
    assert record.state is SubmissionState.WAITING
    assert not [event for event in record.history if event.state == OPERATOR_HISTORY_STATE]


def test_an_unknown_run_is_refused(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("stop", "00000000-0000-4000-8000-000000000000#PROVISIONAL", "--yes", "--reason", "why") == 1
    assert "no run 00000000-0000-4000-8000-000000000000#PROVISIONAL" in capsys.readouterr().err


def test_dry_run_stops_nothing(
    deployed: Deployed, ecs: tuple[FakeEcs, _Scheduled], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, _ = ecs
    task_arn, cluster_arn = _running_task(fake)
    the_run = launched_run(deployed, ROUTE_PLANNER, 1, task_arn=task_arn, cluster_arn=cluster_arn)
    assert cli("stop", the_run, "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"StopTask {task_arn}" in out
    assert "dry run: nothing changed" in out
    assert fake.tasks[task_arn].desired_status == "RUNNING"


def test_without_a_reason_nothing_is_stopped(
    deployed: Deployed, ecs: tuple[FakeEcs, _Scheduled], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, _ = ecs
    task_arn, cluster_arn = _running_task(fake)
    the_run = launched_run(deployed, ROUTE_PLANNER, 1, task_arn=task_arn, cluster_arn=cluster_arn)
    assert cli("stop", the_run, "--yes") == 2
    assert "--reason" in capsys.readouterr().err
    assert fake.tasks[task_arn].desired_status == "RUNNING"


def test_the_stop_reason_fits_stoptask_and_reads_as_an_operators_stop() -> None:
    from mm_contracts.names import TIMEOUT_STOP_REASON_PREFIX

    reason = stop_reason("arn:aws:sts::123456789012:assumed-role/ops/alice", "x" * 300)
    assert len(reason) == MAX_STOP_REASON == 255
    assert reason.startswith("Stopped by operator arn:aws:sts::123456789012:assumed-role/ops/alice: x")
    assert not reason.startswith(TIMEOUT_STOP_REASON_PREFIX)  # else the completion would record TIMED_OUT


def test_a_stop_whose_audit_write_fails_says_it_stopped_and_exits_1(
    deployed: Deployed,
    ecs: tuple[FakeEcs, _Scheduled],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, _ = ecs
    task_arn, cluster_arn = _running_task(fake)
    the_run = launched_run(deployed, ROUTE_PLANNER, 1, task_arn=task_arn, cluster_arn=cluster_arn)

    def refuse(*_: Any, **__: Any) -> bool:
        raise RuntimeError("throttled")

    monkeypatch.setattr(StatusStore, "append_operator_entry", refuse)
    assert cli("stop", the_run, "--yes", "--reason", "why", "--json") == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["stopped"] is True
    assert f"changed (the task of {the_run} is stopping), audit entry not recorded: RuntimeError: throttled" in out.err
    assert fake.tasks[task_arn].desired_status == "STOPPED"


def test_a_run_that_changed_while_the_stop_was_confirmed_is_not_stopped(
    deployed: Deployed,
    ecs: tuple[FakeEcs, _Scheduled],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, _ = ecs
    task_arn, cluster_arn = _running_task(fake)
    the_run = launched_run(deployed, ROUTE_PLANNER, 1, task_arn=task_arn, cluster_arn=cluster_arn)
    approve = ChangeGate.approve

    def approve_while_a_rerun_launches_another_task(self: ChangeGate, action: str, lines: list[str]) -> Any:
        change = approve(self, action, lines)
        deployed.client("dynamodb").update_item(
            TableName=NAMES.status_table,
            Key={"runId": {"S": the_run}},
            UpdateExpression="SET taskArn = :other",
            ExpressionAttributeValues={":other": {"S": task_arn + "-rerun"}},
        )
        return change

    monkeypatch.setattr(ChangeGate, "approve", approve_while_a_rerun_launches_another_task)
    assert cli("stop", the_run, "--yes", "--reason", "why") == 1
    assert "changed while the stop was confirmed" in capsys.readouterr().err
    assert fake.tasks[task_arn].desired_status == "RUNNING"
    record = status_store(deployed).get(the_run)
    assert record is not None
    assert not [event for event in record.history if event.state == OPERATOR_HISTORY_STATE]
