"""The fake Fargate endpoint speaks the ECS JSON protocol well enough for botocore and behaves like ECS where
the pipeline depends on it: clientToken idempotency, failures[], throttling, request validation, real task
processes, StopTask, STOPPED events the completion function can parse, and the fault that loses them."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_pipeline.fargate import CAPACITY_REASON, LOSE_STOPPED_EVENT, FakeFargate, TaskDefinitionSim
from mm_contracts.models.ecs_event import EcsTaskStateChangeEvent
from sweeper_lambda.synthetic_events import stopped_event_from_task
from tests.local_pipeline.clients import loopback_client

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/mm-scorers"
TASK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/mm-scorer-test:3"
SECRET = "secret-token-value"
# Exits with MM_TEST_EXIT; prints whether the secret arrived; sleeps when asked (to be stopped).
COMMAND = (
    sys.executable,
    "-c",
    "import os, sys, time\n"
    "print('token-injected' if os.environ.get('MM_M2M_TOKEN') == 'secret-token-value' else 'no-token', flush=True)\n"
    "time.sleep(float(os.environ.get('MM_TEST_SLEEP', '0')))\n"
    "sys.exit(int(os.environ.get('MM_TEST_EXIT', '0')))\n",
)


class Events:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def emit(self, entry: dict[str, Any]) -> None:
        with self._changed:
            self.entries.append(entry)
            self._changed.notify_all()

    def stopped(self, task_arn: str, timeout: float = 20) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            for entry in self.entries:
                detail = json.loads(entry["Detail"])
                if detail["taskArn"] == task_arn and detail["lastStatus"] == "STOPPED":
                    return detail
            return None

        with self._changed:
            assert self._changed.wait_for(lambda: find() is not None, timeout=timeout)
            found = find()
        assert found is not None
        return found


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def fargate(tmp_path: Path, events: Events) -> Iterator[FakeFargate]:
    fake = FakeFargate(
        cluster_arn=CLUSTER,
        task_definitions=[
            TaskDefinitionSim(
                arn=TASK_DEFINITION, container_name="scorer", command=COMMAND, secrets={"MM_M2M_TOKEN": "/p/token"}
            )
        ],
        emit_event=events.emit,
        resolve_secret=lambda name: SECRET if name == "/p/token" else "",
        log_dir=tmp_path / "tasks",
        secret_values=lambda: [SECRET],
    ).start()
    yield fake
    fake.stop()


@pytest.fixture
def ecs(fargate: FakeFargate) -> Any:
    return loopback_client("ecs", fargate.endpoint, "local-test")


def run_task(ecs: Any, submission_id: str = "sub-1", *, env: dict[str, str] | None = None, **overrides: Any) -> Any:
    environment = {"MM_SUBMISSION_ID": submission_id, "MM_CHALLENGE_ID": "ch-1", **(env or {})}
    request: dict[str, Any] = {
        "cluster": CLUSTER,
        "taskDefinition": TASK_DEFINITION,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": "mm-processor/test/ch-1",
        "clientToken": f"{submission_id}-1",
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}
        },
        "overrides": {
            "containerOverrides": [
                {"name": "scorer", "environment": [{"name": k, "value": v} for k, v in environment.items()]}
            ]
        },
        "tags": [{"key": "SubmissionId", "value": submission_id}],
    }
    request.update(overrides)
    return ecs.run_task(**request)


def test_same_client_token_returns_the_same_task_and_runs_one_process(
    ecs: Any, fargate: FakeFargate, events: Events
) -> None:
    first = run_task(ecs, env={"MM_TEST_EXIT": "3"})
    again = run_task(ecs, env={"MM_TEST_EXIT": "3"})
    task_arn = first["tasks"][0]["taskArn"]
    assert again["tasks"][0]["taskArn"] == task_arn
    assert len(fargate.tasks_for("sub-1")) == 1
    detail = events.stopped(task_arn)
    assert detail["containers"][0]["exitCode"] == 3
    assert detail["stopCode"] == "EssentialContainerExited"


def test_stopped_event_is_what_the_completion_function_parses(ecs: Any, events: Events, tmp_path: Path) -> None:
    task_arn = run_task(ecs)["tasks"][0]["taskArn"]
    detail = events.stopped(task_arn)
    event = {
        "version": "0",
        "id": "1",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-03-02T10:15:00Z",
        "region": "us-east-1",
        "resources": [task_arn],
        "detail": detail,
    }
    parsed = EcsTaskStateChangeEvent.model_validate(event).detail
    assert parsed.task_arn == task_arn
    assert parsed.cluster_arn == CLUSTER
    assert parsed.started_by == "mm-processor/test/ch-1"
    assert parsed.group == "family:mm-scorer-test"
    assert parsed.environment()["MM_SUBMISSION_ID"] == "sub-1"
    assert parsed.container("scorer") is not None
    assert parsed.stopped_at is not None
    assert "tags" not in detail  # ECS events carry no tags
    # the task definition's secret reached the process (and only the process)
    log = (tmp_path / "tasks" / f"{task_arn.rsplit('/', 1)[1]}.log").read_text()
    assert "token-injected" in log


def test_capacity_fault_answers_failures_then_the_next_call_starts_a_task(ecs: Any, fargate: FakeFargate) -> None:
    fargate.add_fault("sub-2", "capacity", 2)
    for _ in range(2):
        response = run_task(ecs, "sub-2")
        assert response["tasks"] == []
        assert response["failures"][0]["reason"] == CAPACITY_REASON
    assert len(run_task(ecs, "sub-2")["tasks"]) == 1


def test_throttle_fault_is_a_throttling_exception(ecs: Any, fargate: FakeFargate) -> None:
    fargate.add_fault("ch-1", "throttle", 1)
    with pytest.raises(ClientError) as raised:
        run_task(ecs, "sub-3")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/other"}, "ClusterNotFoundException"),
        ({"taskDefinition": "mm-scorer-unknown:1"}, "ClientException"),
        ({"launchType": "EC2"}, "InvalidParameterException"),
        ({"networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}}, "InvalidParameterException"),
        ({"overrides": {"containerOverrides": [{"name": "not-the-container"}]}}, "InvalidParameterException"),
        ({"startedBy": "has spaces"}, "InvalidParameterException"),
        ({"clientToken": "x" * 65}, "InvalidParameterException"),
    ],
)
def test_run_task_requests_ecs_would_refuse_are_refused(ecs: Any, overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as raised:
        run_task(ecs, "sub-4", **overrides)
    assert raised.value.response["Error"]["Code"] == code


def test_stop_task_ends_the_process_with_a_user_initiated_stop(ecs: Any, events: Events) -> None:
    task_arn = run_task(ecs, "sub-5", env={"MM_TEST_SLEEP": "120"})["tasks"][0]["taskArn"]
    listed = ecs.list_tasks(cluster=CLUSTER, startedBy="mm-processor/test/ch-1")["taskArns"]
    assert task_arn in listed
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn], include=["TAGS"])["tasks"][0]
    assert described["tags"] == [{"key": "SubmissionId", "value": "sub-5"}]
    ecs.stop_task(cluster=CLUSTER, task=task_arn, reason="mm-processor timeout: test")
    detail = events.stopped(task_arn)
    assert detail["stopCode"] == "UserInitiated"
    assert detail["stoppedReason"] == "mm-processor timeout: test"
    assert detail["containers"][0]["exitCode"] == 143  # SIGTERM, as Docker reports it


def test_a_secret_in_the_overrides_is_recorded_as_a_leak(ecs: Any, fargate: FakeFargate) -> None:
    run_task(ecs, "sub-6", env={"MM_M2M_TOKEN": SECRET})
    assert fargate.leaks == ["RunTask overrides for submission sub-6 carry a secret value"]


def _wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_lose_stopped_event_fault_runs_the_task_but_puts_no_stopped_event(
    ecs: Any, fargate: FakeFargate, events: Events
) -> None:
    # Given the fault for one submission (once)
    fargate.add_fault("sub-7", LOSE_STOPPED_EVENT, 1)
    # When its task runs and exits 4
    task_arn = run_task(ecs, "sub-7", env={"MM_TEST_EXIT": "4"})["tasks"][0]["taskArn"]
    _wait_until(lambda: task_arn in fargate.lost_events)
    # Then DescribeTasks shows it STOPPED with its exit code, but only the RUNNING event was put
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    assert (described["lastStatus"], described["stopCode"]) == ("STOPPED", "EssentialContainerExited")
    assert described["containers"][0]["exitCode"] == 4
    statuses = [json.loads(e["Detail"])["lastStatus"] for e in events.entries if task_arn in e["Resources"]]
    assert statuses == ["RUNNING"]
    assert fargate.lost_events == [task_arn]
    # and the count is honoured: the next task of that submission has its STOPPED event again
    again = run_task(ecs, "sub-7", clientToken="sub-7-2")["tasks"][0]["taskArn"]
    assert events.stopped(again)["lastStatus"] == "STOPPED"
    # The fault is not a RunTask fault: both RunTask calls started a task
    assert fargate.rejected_calls == []


def test_an_event_rebuilt_from_describe_tasks_parses_like_the_stopped_event(ecs: Any, events: Events) -> None:
    # Given a task's real STOPPED event, and the same task described through botocore (datetimes)
    task_arn = run_task(ecs, "sub-8", env={"MM_TEST_EXIT": "2"})["tasks"][0]["taskArn"]
    detail = events.stopped(task_arn)
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    # When the sweeper rebuilds the event from the description
    synthetic = stopped_event_from_task(described, now=datetime.now(tz=UTC))
    real = {**synthetic, "detail": detail}
    # Then the completion function reads the same thing from both
    parsed = EcsTaskStateChangeEvent.model_validate(synthetic).detail
    expected = EcsTaskStateChangeEvent.model_validate(real).detail
    assert parsed == expected
    assert parsed.container("scorer") is not None
    assert parsed.stopped_at is not None


def test_an_unknown_task_is_described_as_missing(ecs: Any) -> None:
    arn = CLUSTER.replace(":cluster/", ":task/") + "/0123456789abcdef"
    response = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])
    assert (response["tasks"], response["failures"]) == ([], [{"arn": arn, "reason": "MISSING"}])
