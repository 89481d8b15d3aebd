"""The ECS Task State Change model: tolerant of AWS additions, and never holding a plain-text token."""

from __future__ import annotations

import pytest

from completion_lambda.events import InvalidEventError, parse_event
from mm_contracts.models.ecs_event import REDACTED, EcsTaskStateChangeEvent, is_sensitive_variable
from mm_contracts.models.task import TaskEnv
from tests.builders import ecs_task_stopped_event

TOKEN = "eyJhbGciOiJSUzI1NiJ9.plain-text-token-value.sig"


def test_parses_a_real_shaped_event_and_reads_the_overrides() -> None:
    raw = ecs_task_stopped_event(environment={TaskEnv.SUBMISSION_ID: "s-1", TaskEnv.CHALLENGE_ID: "c-1"}, exit_code=3)
    event = parse_event(raw)
    assert isinstance(event, EcsTaskStateChangeEvent)
    assert event.detail.environment() == {"MM_SUBMISSION_ID": "s-1", "MM_CHALLENGE_ID": "c-1"}
    assert event.detail.container("scorer") is not None
    assert event.detail.container("scorer").exit_code == 3  # type: ignore[union-attr]
    assert event.detail.started_by == raw["detail"]["startedBy"]


def test_unknown_fields_from_aws_do_not_break_parsing() -> None:
    raw = ecs_task_stopped_event()
    raw["detail"]["ephemeralStorage"] = {"sizeInGiB": 20}
    raw["detail"]["containers"][0]["managedAgents"] = []
    assert isinstance(parse_event(raw), EcsTaskStateChangeEvent)


def test_insecure_mode_token_is_redacted_while_parsing() -> None:
    raw = ecs_task_stopped_event(environment={TaskEnv.SUBMISSION_ID: "s-1", TaskEnv.M2M_TOKEN: TOKEN})
    event = parse_event(raw)
    assert isinstance(event, EcsTaskStateChangeEvent)
    assert event.detail.environment()[TaskEnv.M2M_TOKEN] == REDACTED
    assert TOKEN not in repr(event)
    assert TOKEN not in event.model_dump_json()


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("MM_M2M_TOKEN", True),
        ("AUTH0_CLIENT_SECRET", True),
        ("DB_PASSWORD", True),
        ("MM_TOKEN_PARAMETER", False),
        ("MM_SUBMISSION_ID", False),
    ],
)
def test_sensitive_variable_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_variable(name) is sensitive


def test_invalid_ecs_event_error_never_echoes_the_input() -> None:
    raw = ecs_task_stopped_event(environment={TaskEnv.M2M_TOKEN: TOKEN})
    del raw["detail"]["taskArn"]
    # a malformed pair whose (invalid) value is the token: pydantic would echo it as `input_value`
    raw["detail"]["overrides"]["containerOverrides"][0]["environment"].append({"name": "X", "value": [TOKEN]})
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw)
    assert "taskArn" in str(caught.value)
    assert "environment" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_another_event_kind_parses_as_a_bare_envelope() -> None:
    raw = {**ecs_task_stopped_event(), "detail-type": "ECS Container Instance State Change", "detail": {"x": 1}}
    assert not isinstance(parse_event(raw), EcsTaskStateChangeEvent)
