"""A run that dead-letters, then `mm-processor dlq redrive` through the local pipeline (decision 110).

RunTask fails definitely (failures[] "Capacity is unavailable", the `run-task-failures` fault) on every receive of
one submission's message, so after the queue's maxReceiveCount receives the run is DEAD_LETTERED and SQS moves its
message to the challenge DLQ. The fault is then removed and the operator redrives the DLQ with the CLI against the
emulator (`--endpoint-url`: the emulator lacks StartMessageMoveTask, so the command moves the message itself). The
run goes back through capacity, launches once and ends SUCCEEDED with exactly one task and one review, and its
history holds the operator's audit entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infrastructure.config import load_environment
from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import Scenario, parse_fault
from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from operator_tools.cli import main
from operator_tools.health import submissions_topic_arn
from operator_tools.smoke import publish_entry
from tests.builders import new_uuid

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-dead-letter-redrive")]

ROUTE_PLANNER = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
MEMBER = 40158994
POLL_LIMIT_SECONDS = 150  # a bound on waiting, never asserted


def _wait_for(what: str, found: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"never saw {what}")


def _routed(submission_id: str) -> RoutedSubmission:
    now = datetime.now(UTC)
    return RoutedSubmission(
        submission_id=submission_id,
        challenge_id=ROUTE_PLANNER,
        member_id=MEMBER,
        url=f"https://topcoder-submissions.s3.amazonaws.com/mm/{submission_id}.zip",
        submission_type="Contest Submission",
        correlation_id=f"dlq-e2e-{submission_id}",
        source=KafkaCoordinates(topic="submission.notification.create", partition=0, offset=1),
        routed_at=now,
    )


def _depth(pipeline: LocalPipeline, queue_name: str) -> int:
    sqs = pipeline.aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_a_dead_lettered_run_redriven_by_the_cli_is_scored_exactly_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_environment("example")
    submission_id = new_uuid()
    with LocalPipeline(config, log_dir=tmp_path / "logs") as pipeline:
        assert pipeline.standin is not None
        assert pipeline.fargate is not None
        names = pipeline.plan.names
        store = StatusStore(names.status_table, dynamodb_client=pipeline.aws.client("dynamodb"))
        run_id = f"{submission_id}#PROVISIONAL"  # a v5 challenge's single phase
        dlq_name = names.challenge_dlq(ROUTE_PLANNER)
        # Given a submission whose every RunTask fails definitely
        pipeline.apply_scenario(Scenario(faults=[parse_fault(f"{submission_id}=run-task-failures")]))
        pipeline.standin.add_submission(submission_id, ROUTE_PLANNER, MEMBER)
        pipeline.start_event_sources()
        pipeline.aws.client("sns").publish_batch(
            TopicArn=submissions_topic_arn(pipeline.plan),
            PublishBatchRequestEntries=[publish_entry(_routed(submission_id))],
        )

        def record() -> LifecycleRecord | None:
            return store.get(run_id)

        # When it dead-letters (its state, and its message in the challenge DLQ)
        _wait_for("DEAD_LETTERED", lambda: (r := record()) is not None and r.state is SubmissionState.DEAD_LETTERED)
        _wait_for("the message in the DLQ", lambda: _depth(pipeline, dlq_name) == 1)
        assert pipeline.fargate.tasks_for(submission_id) == []
        # The operator sees it: `dlq list` and `health` fail on the DLQ, `dlq show` names the run and its reason
        endpoint = ["--env", "example", "--endpoint-url", pipeline.aws.endpoint, "--json"]
        assert main(["dlq", "list", *endpoint]) == 1
        listed = {q["queue"]: q for q in json.loads(capsys.readouterr().out)["queues"]}
        assert listed[dlq_name]["visible"] == 1
        assert main(["health", *endpoint]) == 1
        failing = [c["name"] for c in json.loads(capsys.readouterr().out)["checks"] if not c["ok"]]
        assert f"dlq {ROUTE_PLANNER}" in failing
        assert main(["dlq", "show", dlq_name, *endpoint]) == 0
        (shown,) = json.loads(capsys.readouterr().out)["messages"]
        assert shown["runIds"] == [run_id]
        assert "DEAD_LETTERED" in shown["reason"]
        # and the fault is fixed, the operator redrives the DLQ
        pipeline.apply_scenario(Scenario())
        status = main(["dlq", "redrive", dlq_name, "--yes", "--reason", "capacity is back", *endpoint])
        output = json.loads(capsys.readouterr().out)
        assert status == 0, output
        assert (output["method"], output["moved"], output["failed"]) == ("move", 1, 0)
        assert output["auditedRuns"] == [run_id]

        # Then the run is scored once: one task, one review, and the audit entry in its history
        final = _wait_for(
            "SUCCEEDED", lambda: (r := record()) is not None and r.state is SubmissionState.SUCCEEDED and r
        )
        assert len(pipeline.fargate.tasks_for(submission_id)) == 1
        reviews = [r for r in pipeline.standin.reviews if str(r.get("submissionId")) == submission_id]
        assert len(reviews) == 1
        assert any(e.state == "OPERATOR" and "operator redrive" in e.detail for e in final.history)
        assert _depth(pipeline, dlq_name) == 0
        assert main(["dlq", "list", *endpoint]) == 0
