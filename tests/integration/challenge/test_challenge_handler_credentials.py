"""The challenge handler against moto: the scorer's credentials per mode (decision 025; the insecure mode's token
never reaches a log line or a metric) and an ambiguous RunTask whose retry reuses its clientToken (decision 070).
The world of `conftest.py`; helpers from `test_challenge_handler.py`."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from challenge_lambda import wiring
from mm_adapters import aws as aws_clients
from mm_contracts.models.lifecycle import SubmissionState
from mm_contracts.models.phase import run_id
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY, client_token
from tests.integration.challenge.conftest import EcsWorld
from tests.integration.challenge.test_challenge_handler import (
    failed_ids,
    invoke,
    message,
    status,
)
from tests.unit.challenge.helpers import (
    SECRET_TOKEN,
    V5_PHASE,
    FakeTokenProvider,
    routed_submission,
)


# ------------------------------------------------------------------ credentials
def test_parameter_reference_mode_passes_only_the_name(ecs_world: EcsWorld) -> None:
    ecs_world.put_config(ecs_world.config(scorerCredentialsMode="parameter_reference"))

    invoke(message(routed_submission()))

    [task] = ecs_world.tasks()
    environment = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert environment["MM_TOKEN_PARAMETER"] == "/mm-processor/auth0/token"
    assert "MM_M2M_TOKEN" not in environment


def test_insecure_mode_token_never_reaches_a_log_line_or_metric(
    ecs_world: EcsWorld, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import challenge_lambda.wiring as wiring_module

    provider = FakeTokenProvider()
    monkeypatch.setattr(wiring_module, "default_token_provider_factory", lambda settings: lambda: provider)
    wiring.use_dependencies(None)
    ecs_world.put_config(ecs_world.config(scorerCredentialsMode="environment_token_insecure"))
    ok, throttled = routed_submission(), routed_submission()

    invoke(message(ok))
    with Stubber(aws_clients.client("ecs")) as stub:
        stub.add_client_error("run_task", service_error_code="ThrottlingException", service_message="Rate exceeded")
        invoke(message(throttled))

    assert provider.calls == 2
    assert status(throttled).state is SubmissionState.WAITING
    [task] = ecs_world.tasks()
    environment = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert environment["MM_M2M_TOKEN"] == SECRET_TOKEN  # the documented risk of this mode
    captured = capsys.readouterr()
    assert SECRET_TOKEN not in captured.out
    assert SECRET_TOKEN not in captured.err
    assert SECRET_TOKEN not in ecs_world.logs.getvalue()
    assert any("environment_token_insecure" in line["message"] for line in ecs_world.log_lines())
    assert SECRET_TOKEN not in (status(throttled).reason or "")


# ------------------------------------------------------------------ ambiguous outcome
def test_read_timeout_keeps_the_lease_and_the_retry_reuses_the_token(ecs_world: EcsWorld) -> None:
    import os

    from botocore.exceptions import ReadTimeoutError

    submission = routed_submission()
    ecs = aws_clients.client("ecs")
    timing_out = {"on": True}

    def time_out(**_: Any) -> None:
        if timing_out["on"]:
            raise ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com/")

    # before-call: raised outside botocore's retry loop, so no backoff sleeps in the test.
    ecs.meta.events.register("before-call.ecs.RunTask", time_out)

    first = invoke(message(submission, message_id="m-timeout"))

    assert failed_ids(first) == ["m-timeout"]
    assert status(submission).state is SubmissionState.LAUNCHING  # lease kept, not marked failed

    # The SQS retry arrives after the visibility timeout, when the lease has expired.
    timing_out["on"] = False
    aws_clients.client("dynamodb").update_item(
        TableName=os.environ["STATUS_TABLE_NAME"],
        Key={STATUS_TABLE_PARTITION_KEY: {"S": run_id(submission.submission_id, V5_PHASE)}},
        UpdateExpression="SET leaseUntil = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    second = invoke(message(submission, receive_count=2))

    assert second == {"batchItemFailures": []}
    token = client_token(submission.submission_id, V5_PHASE, 1)
    assert [call["clientToken"] for call in ecs_world.runtask_calls] == [token, token]
    assert status(submission).state is SubmissionState.LAUNCHED
    assert len(ecs_world.tasks()) == 1


def test_insecure_mode_with_the_real_static_parameter_provider(ecs_world: EcsWorld, capsys: Any) -> None:
    # Given the seed design's SecureString token and a challenge that opted into the insecure mode
    aws_clients.client("ssm").put_parameter(
        Name="/mm-processor/auth0/token", Value=SECRET_TOKEN, Type="SecureString", Overwrite=True
    )
    ecs_world.put_config(ecs_world.config(scorerCredentialsMode="environment_token_insecure"))

    # When a submission arrives
    response = invoke(message(routed_submission()))

    # Then the token reaches the task environment (the documented risk) and nothing else
    assert response == {"batchItemFailures": []}
    [task] = ecs_world.tasks()
    environment = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert environment["MM_M2M_TOKEN"] == SECRET_TOKEN
    captured = capsys.readouterr()
    assert SECRET_TOKEN not in captured.out + captured.err + ecs_world.logs.getvalue()


def test_default_mode_never_builds_a_token_provider(ecs_world: EcsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    import challenge_lambda.wiring as wiring_module

    built: list[object] = []

    def factory(settings: object) -> Any:
        def build() -> FakeTokenProvider:
            built.append(settings)
            return FakeTokenProvider()

        return build

    monkeypatch.setattr(wiring_module, "default_token_provider_factory", factory)
    wiring.use_dependencies(None)

    invoke(message(routed_submission()))

    assert built == []
    assert len(ecs_world.tasks()) == 1
