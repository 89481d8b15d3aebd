"""Shared by the dlq and health command tests: status items, a client source with some operations stubbed, and the
commands run with --json."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.stub import Stubber

from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from operator_tools.context import OperatorContext, run_guarded
from tests.unit.operator_tools.conftest import Deployed

_serializer = TypeSerializer()


def put_run(
    deployed: Deployed,
    submission_id: str,
    challenge_id: str,
    *,
    phase: str = "PROVISIONAL",
    state: SubmissionState = SubmissionState.DEAD_LETTERED,
    reason: str | None = "Capacity is unavailable at this time",
    deadline_at: int | None = None,
    report_status: ReportStatus | None = None,
) -> str:
    run_id = f"{submission_id}#{phase}"
    now = datetime.now(UTC).isoformat()
    item: dict[str, Any] = {
        "runId": run_id,
        "submissionId": submission_id,
        "phase": phase,
        "platform": "v5",
        "challengeId": challenge_id,
        "state": state.value,
        "createdAt": now,
        "updatedAt": now,
        "history": [],
    }
    optional = {"reason": reason, "deadlineAt": deadline_at, "reportStatus": report_status}
    item.update({k: (v.value if isinstance(v, ReportStatus) else v) for k, v in optional.items() if v is not None})
    deployed.client("dynamodb").put_item(
        TableName=deployed.plan.names.status_table, Item={k: _serializer.serialize(v) for k, v in item.items()}
    )
    return run_id


class StubbedClients:
    """The deployed environment's clients, with the named operations of a service answered by a Stubber (what moto
    does not implement: SQS message move tasks; Lambda invokes, which moto runs only in Docker)."""

    def __init__(self, deployed: Deployed, service: str, operations: set[str]) -> None:
        self.deployed = deployed
        self.service = service
        self.operations = operations
        self.stubbed = boto3.client(service, region_name=deployed.plan.config.region)  # type: ignore[call-overload]
        self.stubber = Stubber(self.stubbed)
        self.stubber.activate()

    def client(self, service_name: str) -> Any:
        real = self.deployed.client(service_name)
        if service_name != self.service:
            return real
        return _Routed(real, self.stubbed, self.operations)


class _Routed:
    def __init__(self, real: Any, stubbed: Any, operations: set[str]) -> None:
        self._real, self._stubbed, self._operations = real, stubbed, operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stubbed if name in self._operations else self._real, name)


def run_command(
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    clients: Any,
    **extra: Any,
) -> tuple[int, Any]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([*argv, "--env", "example", "--json"])
    context = OperatorContext.from_args(args, clients=clients)
    status = run_guarded(lambda: run(args, context, **extra))
    captured = capsys.readouterr()
    sys.stderr.write(captured.err)  # for the test to read
    return status, (json.loads(captured.out) if captured.out.strip() else None)


def history_details(deployed: Deployed, run_id: str) -> list[str]:
    from mm_adapters.status_store import StatusStore

    record = StatusStore(deployed.plan.names.status_table, dynamodb_client=deployed.client("dynamodb")).get(run_id)
    assert record is not None
    return [entry.detail for entry in record.history]
