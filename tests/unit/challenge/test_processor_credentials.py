"""challenge_lambda.processor: what the scorer task is told about its M2M credentials, per mode (decision 025); the
insecure mode's token never reaches a log line, a metric or a failure reason.

The world of `test_processor.py` (real StatusStore on moto, fakes for ECS, SSM and tokens, controlled clock)."""

from __future__ import annotations

import pytest

from challenge_lambda.launcher import (
    LaunchErrorKind,
    LaunchRejected,
)
from challenge_lambda.processor import (
    RecordFailed,
)
from mm_contracts.models.lifecycle import SubmissionState
from tests.conftest import Clock
from tests.unit.challenge.helpers import (
    SECRET_TOKEN,
    TOKEN_PARAMETER_NAME,
    env_of,
    iter_strings,
    log_lines,
    routed_submission,
)
from tests.unit.challenge.test_processor import World, v5_world


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock) -> World:
    return v5_world(status_table, clock)


# ------------------------------------------------------------------ credentials
def test_default_mode_passes_no_token_and_no_reference(world: World) -> None:
    world.deliver(routed_submission())

    env = env_of(world.launcher.requests[0])
    assert "MM_M2M_TOKEN" not in env
    assert "MM_TOKEN_PARAMETER" not in env
    assert world.tokens.calls == 0


def test_parameter_reference_mode_passes_only_the_parameter_name(world: World) -> None:
    world.set_config(scorerCredentialsMode="parameter_reference")

    world.deliver(routed_submission())

    env = env_of(world.launcher.requests[0])
    assert env["MM_TOKEN_PARAMETER"] == TOKEN_PARAMETER_NAME
    assert "MM_M2M_TOKEN" not in env
    assert world.tokens.calls == 0
    assert SECRET_TOKEN not in list(iter_strings(world.launcher.requests[0].kwargs))


def test_insecure_mode_puts_the_token_in_the_environment_but_never_in_logs_or_metrics(world: World) -> None:
    world.set_config(scorerCredentialsMode="environment_token_insecure")

    world.deliver(routed_submission())

    assert env_of(world.launcher.requests[0])["MM_M2M_TOKEN"] == SECRET_TOKEN
    assert SECRET_TOKEN not in world.logs.getvalue()
    assert SECRET_TOKEN not in repr(world.metrics.counts)
    assert any("environment_token_insecure" in line["message"] for line in log_lines(world.logs))


def test_insecure_mode_redacts_a_token_echoed_by_an_ecs_error(world: World) -> None:
    submission = routed_submission()
    world.set_config(scorerCredentialsMode="environment_token_insecure")
    world.launcher.script.append(
        LaunchRejected(
            "InvalidParameterException",
            f"InvalidParameterException: bad value {SECRET_TOKEN}",
            LaunchErrorKind.PERMANENT,
        )
    )

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission)

    assert SECRET_TOKEN not in str(raised.value)
    assert SECRET_TOKEN not in (world.record(submission).reason or "")
    assert SECRET_TOKEN not in world.logs.getvalue()


def test_insecure_mode_without_a_token_fails_definitely_without_runtask(world: World) -> None:
    submission = routed_submission()
    world.set_config(scorerCredentialsMode="environment_token_insecure")
    world.tokens.error = ConnectionError(f"proxy said {SECRET_TOKEN}")

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission)

    assert raised.value.reason_code == "TokenUnavailable"
    assert world.launcher.requests == []
    assert world.record(submission).state is SubmissionState.LAUNCH_FAILED
    assert SECRET_TOKEN not in world.logs.getvalue()
