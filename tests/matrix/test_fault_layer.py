"""The fault-injection layer itself (decision 077): plans, targeting, and what each adapter makes a caller see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from fault_injection import (
    CONFLICT_MARKER_ENV,
    FAULT_PLAN_ENV,
    FaultKind,
    FaultLayer,
    FaultPlan,
    FaultRule,
    FaultWindow,
    SimulatedCrash,
    install_botocore_faults,
    parse_cli,
    with_http_faults,
)
from mm_adapters.topcoder.transport import HttpResponse, ReadTimedOut, Transport, prepare
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY
from mm_contracts.tables import status_table_definition
from tests.fakes import boto_session
from tests.fakes.clock import Scheduler, VirtualClock
from tests.fakes.ecs import FakeEcs, fake_ecs_client
from tests.fakes.queues import FakeQueue
from tests.fakes.sns import FakeSns, fake_sns_client
from tests.fakes.topcoder import BASE_URL, FakeSubmissionApi

SUBMISSION = "0b7a4c1e-1111-4a2b-9c3d-000000000001"
CHALLENGE = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6b"


# ---------------------------------------------------------------- plans
def test_cli_form_and_the_local_pipelines_old_names() -> None:
    assert parse_cli(f"{SUBMISSION}=capacity:2") == FaultRule(
        kind=FaultKind.RUN_TASK_FAILURES, target=SUBMISSION, first_n=2
    )
    assert parse_cli("*=throttle").kind is FaultKind.RUN_TASK_THROTTLING
    assert parse_cli("*=throttle").target is None
    assert parse_cli("x=lose-stopped-event").kind is FaultKind.STOPPED_EVENT_LOST
    for bad in ("x", "x=", "x=no-such-kind", "x=capacity:0", "x=capacity:two"):
        with pytest.raises(ValueError, match=r"fault|kind"):
            parse_cli(bad)


def test_a_rule_has_a_firing_mode() -> None:
    with pytest.raises(ValueError, match="every"):
        FaultRule(kind=FaultKind.SNS_OUTAGE)
    with pytest.raises(ValueError, match="every"):
        FaultRule(kind=FaultKind.SNS_OUTAGE, every=True, first_n=1)


def test_first_n_counts_per_rule_and_targets_match_any_id() -> None:
    plan = FaultPlan.of(FaultRule(kind=FaultKind.TOPCODER_5XX, target=SUBMISSION, first_n=2))
    assert plan.fire(FaultKind.TOPCODER_5XX, ids=("other",)) is None
    assert plan.fire(FaultKind.TOPCODER_429, ids=(SUBMISSION,)) is None
    fired = [plan.fire(FaultKind.TOPCODER_5XX, ids=("other", SUBMISSION)) for _ in range(3)]
    assert [rule is not None for rule in fired] == [True, True, False]
    assert plan.fire_count(FaultKind.TOPCODER_5XX) == 2


def test_a_window_is_relative_to_the_epoch_and_can_be_combined_with_a_count() -> None:
    plan = FaultPlan.of(
        FaultRule(kind=FaultKind.SSM_OUTAGE, window=FaultWindow(start=10, end=20)),
        FaultRule(kind=FaultKind.SNS_OUTAGE, window=FaultWindow(start=10, end=20), first_n=1),
        epoch=1000.0,
    )
    assert plan.fire(FaultKind.SSM_OUTAGE, now=1005.0) is None
    assert plan.fire(FaultKind.SSM_OUTAGE, now=1010.0) is not None
    assert plan.fire(FaultKind.SSM_OUTAGE, now=1019.0) is not None
    assert plan.fire(FaultKind.SSM_OUTAGE, now=1020.0) is None
    assert plan.fire(FaultKind.SSM_OUTAGE) is None  # no clock, no window
    assert plan.fire(FaultKind.SNS_OUTAGE, now=1011.0) is not None
    assert plan.fire(FaultKind.SNS_OUTAGE, now=1012.0) is None


def test_a_plan_crosses_a_process_boundary_as_json() -> None:
    plan = FaultPlan.of(
        FaultRule(kind=FaultKind.TOPCODER_SLOW_COMMIT, first_n=1, params={"commit_delay_seconds": 45}),
        parse_cli(f"{CHALLENGE}=capacity"),
        epoch=5.0,
    )
    env = plan.to_env()
    assert set(env) == {FAULT_PLAN_ENV}
    again = FaultPlan.from_env(env)
    assert again is not None
    assert again.rules == plan.rules
    assert again.epoch == 5.0
    assert FaultPlan.from_env({}) is None
    assert FaultPlan.from_json(plan.to_json()).rules[0].param("commit_delay_seconds", 0) == 45


def test_every_kind_has_a_layer() -> None:
    assert FaultKind.RUN_TASK_5XX_AFTER_START.layer is FaultLayer.BOTOCORE
    assert FaultKind.TOPCODER_401_ROTATED.layer is FaultLayer.HTTP
    assert FaultKind.STOPPED_EVENT_LOST.layer is FaultLayer.EVENT
    assert all(kind.value == kind.value.lower() and " " not in kind.value for kind in FaultKind)


# ---------------------------------------------------------------- botocore: RunTask on the fake ECS
@pytest.fixture
def ecs() -> tuple[Any, FakeEcs, VirtualClock]:
    clock = VirtualClock()
    scheduler = Scheduler(clock)
    fake = FakeEcs(clock, lambda at, action, label: scheduler.at(at, action, label))
    return fake_ecs_client(fake), fake, clock


def run_task_params(token: str = f"{SUBMISSION}-1") -> dict[str, Any]:
    return {
        "cluster": "mm-scorers",
        "taskDefinition": "mm-scorer-example:3",
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": f"mm-processor/matrix/{CHALLENGE}",
        "clientToken": token,
        "overrides": {
            "containerOverrides": [
                {"name": "scorer", "environment": [{"name": "MM_SUBMISSION_ID", "value": SUBMISSION}]}
            ]
        },
    }


@pytest.mark.parametrize(
    ("kind", "code", "status", "started"),
    [
        (FaultKind.RUN_TASK_THROTTLING, "ThrottlingException", 400, 0),
        (FaultKind.RUN_TASK_5XX_BEFORE_START, "ServerException", 500, 0),
        (FaultKind.RUN_TASK_5XX_AFTER_START, "ServerException", 500, 1),
    ],
)
def test_run_task_errors_are_real_shaped(
    ecs: tuple[Any, FakeEcs, VirtualClock], kind: FaultKind, code: str, status: int, started: int
) -> None:
    client, fake, clock = ecs
    install_botocore_faults(client, FaultPlan.of(FaultRule(kind=kind, target=SUBMISSION, first_n=1)), clock=clock)
    with pytest.raises(ClientError) as raised:
        client.run_task(**run_task_params())
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert len(fake.tasks) == started
    # the fault is spent: the same call now starts (or, idempotently, returns) the task
    task = client.run_task(**run_task_params())["tasks"][0]
    assert len(fake.tasks) == 1
    assert task["taskArn"] in fake.tasks


def test_run_task_failures_timeouts_and_crashes(ecs: tuple[Any, FakeEcs, VirtualClock]) -> None:
    client, fake, clock = ecs
    plan = FaultPlan.of(
        FaultRule(kind=FaultKind.RUN_TASK_FAILURES, first_n=1),
        FaultRule(kind=FaultKind.RUN_TASK_TIMEOUT_BEFORE_START, first_n=1),
        FaultRule(kind=FaultKind.RUN_TASK_TIMEOUT_AFTER_START, first_n=1),
        FaultRule(kind=FaultKind.CRASH_AFTER_RUN_TASK, first_n=1),
    )
    install_botocore_faults(client, plan, clock=clock)
    answer = client.run_task(**run_task_params())
    assert answer["tasks"] == []
    assert "Capacity is unavailable" in answer["failures"][0]["reason"]
    with pytest.raises(ReadTimeoutError):
        client.run_task(**run_task_params())
    assert not fake.tasks
    with pytest.raises(ReadTimeoutError):
        client.run_task(**run_task_params())
    assert len(fake.tasks) == 1  # it started; the caller could not know
    with pytest.raises(SimulatedCrash):
        client.run_task(**run_task_params(f"{SUBMISSION}-2"))
    assert len(fake.tasks) == 2
    assert not isinstance(SimulatedCrash("x"), Exception)


def test_run_task_conflict_names_the_task_that_holds_the_token(ecs: tuple[Any, FakeEcs, VirtualClock]) -> None:
    client, fake, clock = ecs
    install_botocore_faults(client, FaultPlan.of(FaultRule(kind=FaultKind.RUN_TASK_CONFLICT, first_n=1)), clock=clock)
    with pytest.raises(ClientError) as raised:
        client.run_task(**run_task_params())
    assert raised.value.response["Error"]["Code"] == "ConflictException"
    holder: str = dict(raised.value.response)["resourceIds"][0]  # type: ignore[index]
    assert CONFLICT_MARKER_ENV in fake.tasks[holder].environment
    # the fake ECS itself answers the same when the token comes back with other parameters
    with pytest.raises(ClientError, match="ConflictException"):
        client.run_task(**run_task_params())


def test_fake_ecs_keeps_the_token_24h_and_forgets_stopped_tasks(ecs: tuple[Any, FakeEcs, VirtualClock]) -> None:
    client, fake, clock = ecs
    first = client.run_task(**run_task_params())["tasks"][0]["taskArn"]
    clock.advance(23 * 3600)
    assert client.run_task(**run_task_params())["tasks"][0]["taskArn"] == first
    client.stop_task(cluster="mm-scorers", task=first, reason="test")
    fake.tasks[first].last_status = "STOPPED"
    fake.tasks[first].forgotten_at = clock() + 3600
    assert client.describe_tasks(cluster="mm-scorers", tasks=[first])["tasks"]
    clock.advance(3601)
    assert client.describe_tasks(cluster="mm-scorers", tasks=[first])["failures"] == [
        {"arn": first, "reason": "MISSING"}
    ]
    clock.advance(3600)
    assert client.run_task(**run_task_params())["tasks"][0]["taskArn"] != first


# ---------------------------------------------------------------- botocore: DynamoDB, SSM on moto; SNS fake
@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


def test_dynamodb_throttling_outage_and_condition_race(moto: None) -> None:
    clock = VirtualClock()
    ddb = boto_session().client("dynamodb", region_name="us-east-1")
    ddb.create_table(**status_table_definition("t"))
    plan = FaultPlan.of(
        FaultRule(kind=FaultKind.DYNAMODB_THROTTLING, target=SUBMISSION, first_n=1),
        FaultRule(kind=FaultKind.DYNAMODB_OUTAGE, target=SUBMISSION, first_n=1),
        FaultRule(kind=FaultKind.DYNAMODB_CONDITION_RACE, target=SUBMISSION, first_n=1),
    )
    install_botocore_faults(ddb, plan, clock=clock)
    # the status key is the run id; a rule naming the submission matches each of its runs
    key = {STATUS_TABLE_PARTITION_KEY: {"S": f"{SUBMISSION}#PROVISIONAL"}}
    with pytest.raises(ddb.exceptions.ProvisionedThroughputExceededException):
        ddb.get_item(TableName="t", Key=key)
    with pytest.raises(ClientError) as raised:
        ddb.get_item(TableName="t", Key=key)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    item = {**key, "state": {"S": "LAUNCHING"}}
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):  # the concurrent writer's copy won
        ddb.put_item(TableName="t", Item=item, ConditionExpression="attribute_not_exists(runId)")
    assert ddb.get_item(TableName="t", Key=key)["Item"]["state"] == {"S": "LAUNCHING"}
    assert ddb.get_item(TableName="t", Key={STATUS_TABLE_PARTITION_KEY: {"S": "other#PROVISIONAL"}}).get("Item") is None


def test_ssm_faults_target_by_parameter_path(moto: None) -> None:
    ssm = boto_session().client("ssm", region_name="us-east-1")
    name = f"/mm-processor/challenges/{CHALLENGE}/config"
    ssm.put_parameter(Name=name, Value="{}", Type="String")
    install_botocore_faults(ssm, FaultPlan.of(FaultRule(kind=FaultKind.SSM_THROTTLING, target=CHALLENGE, first_n=1)))
    with pytest.raises(ClientError, match="ThrottlingException"):
        ssm.get_parameter(Name=name)
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "{}"


def test_sns_partial_failure_drops_only_the_matching_entries() -> None:
    clock = VirtualClock()
    queues = {c: FakeQueue(c, clock, lambda _at: None) for c in (CHALLENGE, "other")}
    fake = FakeSns()
    for challenge, queue in queues.items():
        fake.subscribe(challenge, queue)
    client = fake_sns_client(fake)
    install_botocore_faults(
        client, FaultPlan.of(FaultRule(kind=FaultKind.SNS_PUBLISH_PARTIAL_FAILURE, target=CHALLENGE, every=True))
    )

    def entry(index: int, challenge: str) -> dict[str, Any]:
        attribute = {"challengeId": {"DataType": "String", "StringValue": challenge}}
        return {"Id": str(index), "Message": json.dumps({"n": index}), "MessageAttributes": attribute}

    answer = client.publish_batch(
        TopicArn="arn:aws:sns:us-east-1:1:t", PublishBatchRequestEntries=[entry(1, CHALLENGE), entry(2, "other")]
    )
    assert [f["Id"] for f in answer["Failed"]] == ["1"]
    assert [s["Id"] for s in answer["Successful"]] == ["2"]
    assert not queues[CHALLENGE].messages
    assert len(queues["other"].messages) == 1
    everything_failed = client.publish_batch(
        TopicArn="arn:aws:sns:us-east-1:1:t", PublishBatchRequestEntries=[entry(3, CHALLENGE)]
    )
    assert everything_failed["Successful"] == []
    assert [f["Id"] for f in everything_failed["Failed"]] == ["3"]


# ---------------------------------------------------------------- HTTP
def call(transport: Transport, method: str, url: str, *, json_body: Any = None, **headers: str) -> HttpResponse:
    return transport.send(prepare(method, url, json_body=json_body, headers=headers), timeout=10)


def post_review(transport: Transport, token: str = "token-1") -> HttpResponse:  # noqa: S107 - a fake token
    body = {"submissionId": SUBMISSION, "score": 1}
    return call(transport, "POST", f"{BASE_URL}/reviews", json_body=body, Authorization=f"Bearer {token}")


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FaultKind.TOPCODER_5XX, 503),
        (FaultKind.TOPCODER_429, 429),
        (FaultKind.TOPCODER_400, 400),
        (FaultKind.TOPCODER_404, 404),
        (FaultKind.TOPCODER_401_REVOKED, 401),
    ],
)
def test_http_error_answers_commit_nothing(kind: FaultKind, status: int) -> None:
    api = FakeSubmissionApi(VirtualClock())
    session = with_http_faults(api, FaultPlan.of(FaultRule(kind=kind, target=SUBMISSION, first_n=1)))
    assert post_review(session).status_code == status
    assert not api.reviews
    assert post_review(session).status_code == 200
    assert len(api.reviews) == 1


def test_http_timeouts_slow_commits_rotation_and_crashes() -> None:
    clock = VirtualClock()
    scheduler = Scheduler(clock)
    api = FakeSubmissionApi(clock)
    plan = FaultPlan.of(
        FaultRule(kind=FaultKind.TOPCODER_TIMEOUT, first_n=1),
        FaultRule(kind=FaultKind.TOPCODER_SLOW_COMMIT, first_n=1, params={"commit_delay_seconds": 30}),
        FaultRule(kind=FaultKind.TOPCODER_401_ROTATED, first_n=1),
        FaultRule(kind=FaultKind.CRASH_AFTER_REVIEW_POST, first_n=1),
    )
    session = with_http_faults(api, plan, clock=clock, defer=scheduler.defer)
    assert post_review(session).status_code == 401  # the token in use was rotated
    assert post_review(session).status_code == 401  # and stays refused
    assert plan.fire_count(FaultKind.TOPCODER_401_ROTATED) == 1
    with pytest.raises(ReadTimedOut):
        post_review(session, token="token-2")  # the plain timeout: nothing committed
    with pytest.raises(ReadTimedOut):
        post_review(session, token="token-2")  # the slow commit
    assert not api.reviews
    while scheduler.run_one():
        pass
    assert clock.elapsed == 30
    assert len(api.reviews) == 1
    with pytest.raises(SimulatedCrash):
        post_review(session, token="token-2")
    assert len(api.reviews) == 2  # committed before the crash


# ---------------------------------------------------------------- the v6 summations fake the matrix reports to
def test_the_v6_summations_fake_enforces_the_spec_and_the_phase_filters() -> None:
    # Given the fake review-api-v6 and an issued token
    from tests.fakes.topcoder import V6_BASE_URL, FakeReviewSummationsApi

    clock = VirtualClock()
    api = FakeReviewSummationsApi(clock)
    auth = {"Authorization": "Bearer token-1"}
    body = {"submissionId": "V6matrixSub001", "aggregateScore": -1, "isPassing": False, "isProvisional": True}

    # When it gets a valid POST, a POST with a field the spec does not allow, and phase-filtered lists
    created = call(api, "POST", f"{V6_BASE_URL}/reviewSummations", json_body=body, **auth)
    refused = call(api, "POST", f"{V6_BASE_URL}/reviewSummations", json_body={**body, "score": 3}, **auth)
    url = f"{V6_BASE_URL}/reviewSummations?submissionId=V6matrixSub001&metadata=true&perPage=100&page=1"
    provisional = call(api, "GET", url + "&provisional=true", **auth).json()
    example = call(api, "GET", url + "&example=true", **auth).json()
    unauthorized = call(api, "GET", url, Authorization="Bearer stolen")

    # Then only the valid one is stored, the breach is kept, and each phase sees only its own summation
    assert created.status_code == 201
    assert refused.status_code == 400
    assert len(api.store.items) == 1
    assert [w.method for w in api.writes] == ["POST"]
    assert api.violations
    assert "score" in " ".join(api.violations)
    assert [s["id"] for s in provisional["data"]] == [created.json()["id"]]
    assert example["data"] == []
    assert unauthorized.status_code == 401
