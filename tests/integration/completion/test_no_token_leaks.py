"""The insecure compatibility mode puts the scorer's token in the overrides, so in every STOPPED event.

Whatever path the handler takes (report, transient failure, rejection, invalid event), the token must
appear in no log line, metric, exception message, review or status record.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from completion_lambda.events import InvalidEventError
from mm_adapters import aws as aws_clients
from mm_adapters.metrics import EmfMetricsSink
from mm_adapters.topcoder.submission_api import ApiRejectedError, ApiTransientError
from mm_contracts.models.task import TaskEnv
from tests.conftest import Clock
from tests.integration.completion.conftest import install_completion, stopped_event, task_environment
from tests.unit.completion.fakes import FakeReviewApi

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJpbnNlY3VyZS1tb2RlIn0.cGxhaW4tdGV4dC10b2tlbg"


def test_insecure_mode_token_never_appears_in_logs_metrics_errors_or_records(
    status_table: str,
    clock: Clock,
    lambda_context: Any,
    captured_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    completion = install_completion(
        status_table, clock, lambda_context, api=FakeReviewApi(), metrics=EmfMetricsSink(environment_name="example")
    )
    errors: list[str] = []

    def invoke(event: dict[str, Any]) -> None:
        try:
            completion.invoke(event)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error!r} {error}")

    def insecure_event(submission_id: str, arn: str, **kwargs: Any) -> dict[str, Any]:
        env = task_environment(submission_id, overrides={TaskEnv.M2M_TOKEN.value: TOKEN})
        return stopped_event(submission_id, arn, environment=env, **kwargs)

    # A transient failure, then the redelivery that reports
    submission_id, arn = completion.launched()
    completion.api.fail_next(ApiTransientError("POST /reviews: server error (500)"))
    invoke(insecure_event(submission_id, arn, exit_code=1))
    invoke(insecure_event(submission_id, arn, exit_code=1))
    # A rejection
    rejected_id, rejected_arn = completion.launched()
    completion.api.fail_next(ApiRejectedError(400, "bad request"))
    invoke(insecure_event(rejected_id, rejected_arn, exit_code=1))
    # A success, an ignored foreign task, and an invalid event whose malformed part holds the token
    ok_id, ok_arn = completion.launched()
    invoke(insecure_event(ok_id, ok_arn, exit_code=0))
    invoke(insecure_event(ok_id, ok_arn, exit_code=0, started_by="someone-else"))
    broken = insecure_event(ok_id, ok_arn)
    broken["detail"]["overrides"]["containerOverrides"][0]["environment"].append({"name": "X", "value": [TOKEN]})
    del broken["detail"]["taskArn"]
    invoke(broken)

    # The scenario ran: logs were written, a transient error and an invalid event were raised
    logs = captured_logs.getvalue()
    assert submission_id in logs
    assert rejected_id in logs
    assert any(e.startswith(ApiTransientError.__name__) for e in errors)
    assert any(e.startswith(InvalidEventError.__name__) for e in errors)
    # And the token is nowhere
    out = capsys.readouterr()
    assert TOKEN not in logs
    assert TOKEN not in out.out + out.err  # EMF metrics and anything printed
    assert TOKEN not in caplog.text
    assert all(TOKEN not in e for e in errors)
    assert TOKEN not in json.dumps(completion.api.reviews)
    items = aws_clients.client("dynamodb").scan(TableName=status_table)["Items"]
    assert items
    assert TOKEN not in json.dumps(items)


def test_log_lines_carry_the_submission_id_as_correlation_id(
    status_table: str, clock: Clock, lambda_context: Any, captured_logs: io.StringIO
) -> None:
    completion = install_completion(status_table, clock, lambda_context, api=FakeReviewApi())
    submission_id, arn = completion.launched()

    completion.invoke(stopped_event(submission_id, arn, exit_code=1))

    lines = [_json_or_none(line) for line in captured_logs.getvalue().splitlines()]
    reported = [line for line in lines if line and line.get("message") == "report sent"]
    assert reported
    assert reported[0]["correlation_id"] == submission_id
    assert reported[0]["task_arn"] == arn


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
