"""The dispatch trigger: one asynchronous Invoke of the deployed sweeper; a failure only says when the runs are
admitted anyway (moto's Lambda would need Docker to run a function: botocore's Stubber checks the call)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from infrastructure.config import EnvironmentConfig, load_environment
from infrastructure.wiring import ResourceNames
from operator_tools.dispatch import TRIGGER_SOURCE, trigger_dispatch, trigger_event


@dataclass
class _Context:
    config: EnvironmentConfig
    names: ResourceNames
    lambda_client: Any

    def client(self, service: str) -> Any:
        assert service == "lambda"
        return self.lambda_client


def _context() -> tuple[_Context, Stubber]:
    config = load_environment("example")
    client = boto3.client("lambda", region_name=config.region)
    return _Context(config, ResourceNames(config.environment), client), Stubber(client)


def test_trigger_invokes_the_sweeper_asynchronously_with_a_scheduled_event() -> None:
    context, stubber = _context()
    stubber.add_response(
        "invoke",
        {"StatusCode": 202},
        {"FunctionName": context.names.sweeper_function, "InvocationType": "Event", "Payload": ANY},
    )
    with stubber:
        sentence = trigger_dispatch(context, request_id="abc123")
    stubber.assert_no_pending_responses()
    assert sentence.startswith("sweep started")
    assert context.names.sweeper_function in sentence


def test_trigger_event_is_shaped_like_the_schedule_and_names_the_request() -> None:
    context, _ = _context()
    event = trigger_event(context, request_id="abc123")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == TRIGGER_SOURCE
    assert event["resources"] == [
        f"arn:aws:events:{context.config.region}:{context.config.account}:rule/{context.names.sweeper_schedule}"
    ]
    assert event["detail"] == {"requestId": "abc123"}
    json.dumps(event)  # an Invoke payload


def test_a_refused_invoke_says_the_next_scheduled_sweep_admits_them() -> None:
    context, stubber = _context()
    stubber.add_client_error("invoke", service_error_code="AccessDeniedException", http_status_code=403)
    with stubber:
        sentence = trigger_dispatch(context)
    interval = context.config.sweeper_interval_minutes
    assert "AccessDeniedException" in sentence
    assert sentence.endswith(f"the next scheduled sweep (every {interval} minutes) admits them")


def test_an_unexpected_status_is_not_reported_as_started() -> None:
    context, stubber = _context()
    stubber.add_response("invoke", {"StatusCode": 200}, None)
    with stubber:
        sentence = trigger_dispatch(context)
    assert sentence.startswith("could not start a sweep now")
