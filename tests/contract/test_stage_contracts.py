"""Contracts between stages: what one stage emits is exactly what the next one parses.

Each test runs the real code of the emitting stage (wired from the same plan the stacks use) and feeds its
output, unchanged, to the parsing model or matcher of the next stage:

  router --SNS PublishBatch--> filter policy --raw SQS--> challenge processor's RoutedSubmission
  challenge processor --RunTask overrides/startedBy--> STOPPED event --> rule pattern + completion's event model
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest

from challenge_lambda.launcher import build_run_task_request
from infrastructure.config import load_environment
from infrastructure.wiring import ResourceRefs, WiringPlan, dynamodb_item
from mm_adapters import aws as aws_clients
from mm_contracts.models import RoutedSubmission, TaskEnv
from mm_contracts.models.ecs_event import EcsTaskStateChangeEvent
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE, started_by_prefix
from mm_contracts.tables import challenge_table_definition
from tests.builders import (
    FakeLambdaContext,
    KafkaRecord,
    bus_envelope,
    ecs_task_stopped_event,
    msk_event,
    new_uuid,
    submission_payload,
)

PLAN = WiringPlan(load_environment("example"))
ACTIVE = [c for c in PLAN.config.challenges if c.active]


@pytest.fixture
def routed_queues(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Topic, per-challenge queues subscribed with the plan's filter policies, challenge table, router env."""
    from router_lambda import wiring as router_wiring

    sns, sqs, ddb = (aws_clients.client(name) for name in ("sns", "sqs", "dynamodb"))
    topic_arn = sns.create_topic(Name=PLAN.names.submissions_topic)["TopicArn"]
    queue_urls: dict[str, str] = {}
    for challenge in PLAN.config.challenges:
        queue = PLAN.queue_plan(challenge)
        url = sqs.create_queue(QueueName=queue.queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(queue.filter_policy)},
        )
        queue_urls[challenge.challenge_id] = url
    ddb.create_table(**challenge_table_definition(PLAN.names.challenge_table))
    for record in PLAN.challenge_records():
        ddb.put_item(TableName=PLAN.names.challenge_table, Item=dynamodb_item(record))
    audit_url = sqs.create_queue(QueueName=PLAN.names.audit_queue)["QueueUrl"]
    refs = ResourceRefs(topic_arn, PLAN.names.challenge_table, PLAN.names.status_table, audit_url)
    for name, value in PLAN.router_settings(refs).to_env().items():
        monkeypatch.setenv(name, value)
    router_wiring.use_dependencies(None)
    yield queue_urls
    router_wiring.use_dependencies(None)


def _receive_all(url: str) -> list[dict[str, Any]]:
    response = aws_clients.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )
    return list(response.get("Messages", []))


def test_router_output_reaches_only_its_challenge_queue_and_parses_as_the_processor_expects(
    routed_queues: dict[str, str],
) -> None:
    from router_lambda.handler import handler

    # Given one valid submission per active challenge, as a producer writes them
    submissions = {c.challenge_id: new_uuid() for c in ACTIVE}
    records = [
        KafkaRecord(bus_envelope(submission_payload(submission_id=sid, challenge_id=cid)), partition=i)
        for i, (cid, sid) in enumerate(submissions.items())
    ]

    # When the real router handles the MSK event
    response = handler(msk_event(records), FakeLambdaContext())

    # Then nothing failed, and each challenge queue holds exactly its own submission, parseable by the
    # challenge processor's model and carrying the attribute the filter policy matched on
    assert response == {"batchItemFailures": []}
    for challenge in PLAN.config.challenges:
        messages = _receive_all(routed_queues[challenge.challenge_id])
        if challenge.challenge_id not in submissions:
            assert messages == []
            continue
        assert len(messages) == 1
        routed = RoutedSubmission.model_validate_json(messages[0]["Body"])
        assert routed.submission_id == submissions[challenge.challenge_id]
        assert routed.challenge_id == challenge.challenge_id
        assert routed.correlation_id == routed.source.correlation_id
        attribute = messages[0]["MessageAttributes"][CHALLENGE_ID_ATTRIBUTE]
        assert attribute == {"StringValue": challenge.challenge_id, "DataType": "String"}


def test_legacy_numeric_challenge_id_is_routed_under_its_uuid(routed_queues: dict[str, str]) -> None:
    from router_lambda.handler import handler

    legacy = next(c for c in ACTIVE if c.legacy_id is not None)
    sid = new_uuid()
    payload = submission_payload(submission_id=sid, challenge_id=str(legacy.legacy_id))

    assert handler(msk_event([KafkaRecord(bus_envelope(payload))]), FakeLambdaContext()) == {"batchItemFailures": []}

    [message] = _receive_all(routed_queues[legacy.challenge_id])
    routed = RoutedSubmission.model_validate_json(message["Body"])
    assert (routed.submission_id, routed.challenge_id, routed.legacy_challenge_id) == (
        sid,
        legacy.challenge_id,
        legacy.legacy_id,
    )


def _rule_matches(event: dict[str, Any]) -> bool:
    """The plan's completion rule pattern, applied by the emulator's EventBridge matcher (moto has no
    TestEventPattern; this is the matcher its PutEvents uses, and so the local pipeline's)."""
    from moto.events.models import EventPattern

    return bool(EventPattern.load(json.dumps(PLAN.completion_rule_pattern())).matches_event(cast(Any, event)))


def _stopped_event_for(request_kwargs: dict[str, Any], container: str, exit_code: int) -> dict[str, Any]:
    """What ECS puts in the STOPPED event for a task started with these RunTask parameters."""
    [override] = request_kwargs["overrides"]["containerOverrides"]
    return ecs_task_stopped_event(
        cluster_arn=PLAN.config.ecs.cluster_arn,
        started_by=request_kwargs["startedBy"],
        container_name=container,
        environment={pair["name"]: pair["value"] for pair in override["environment"]},
        exit_code=exit_code,
        task_definition_arn=request_kwargs["taskDefinition"],
    )


@pytest.mark.parametrize("challenge", ACTIVE, ids=lambda c: c.scorer_type)
def test_the_stopped_event_of_a_launched_task_matches_the_rule_and_identifies_the_submission(
    aws: None, challenge: Any
) -> None:
    # Given the challenge processor's RunTask request for a routed submission
    routed = RoutedSubmission.model_validate(
        {
            "submissionId": new_uuid(),
            "challengeId": challenge.challenge_id,
            "legacyChallengeId": challenge.legacy_id,
            "memberId": 40158994,
            "url": "https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
            "correlationId": "submission.notification.create-0-7",
            "source": {"topic": "submission.notification.create", "partition": 0, "offset": 7},
            "routedAt": "2026-11-23T06:00:00Z",
        }
    )
    config = PLAN.challenge_config(challenge)
    request = build_run_task_request(routed, config, environment_name=PLAN.config.environment, attempt=1)

    # When ECS reports the task STOPPED
    event = _stopped_event_for(request.kwargs, config.scorer_container_name, exit_code=1)

    # Then the deployed rule's pattern delivers it ...
    assert _rule_matches(event)
    # ... and the completion function's model reads back who it was for, and which container decides
    parsed = EcsTaskStateChangeEvent.model_validate(event)
    env = parsed.detail.environment()
    assert env[TaskEnv.SUBMISSION_ID] == routed.submission_id
    assert env[TaskEnv.CHALLENGE_ID] == routed.challenge_id
    assert env[TaskEnv.CORRELATION_ID] == routed.correlation_id
    assert (parsed.detail.started_by or "").startswith(started_by_prefix(PLAN.config.environment))
    scorer = parsed.detail.container(config.scorer_container_name)
    assert scorer is not None
    assert scorer.exit_code == 1


def test_a_task_started_by_another_environment_does_not_match_the_rule() -> None:
    event = ecs_task_stopped_event(cluster_arn=PLAN.config.ecs.cluster_arn, started_by="mm-processor/prod/x")
    assert not _rule_matches(event)
