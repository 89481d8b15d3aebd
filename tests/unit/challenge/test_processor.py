"""challenge_lambda.processor: one message -> at most one task, with the real StatusStore on moto DynamoDB.

The launcher, SSM and the token provider are fakes; the clock is controlled (leases)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest

from challenge_lambda.launcher import (
    LaunchErrorKind,
    LaunchRejected,
)
from challenge_lambda.processor import (
    ChallengeProcessor,
    InboundMessage,
    RecordFailed,
    RecordOutcome,
)
from challenge_lambda.wiring import ChallengeDependencies
from mm_adapters.status_store import StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import client_token
from mm_contracts.settings import ChallengeProcessorSettings
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.unit.challenge.helpers import (
    CAPACITY_PARAMETER_NAME,
    CHALLENGE_ID,
    OTHER_CHALLENGE_ID,
    PARAMETER_NAME,
    V5_PHASE,
    FakeLauncher,
    Fakes,
    FakeSsm,
    FakeTokenProvider,
    capacity_document,
    captured_logger,
    config_document,
    env_of,
    log_lines,
    processor_env,
    routed_submission,
)

LEASE_SECONDS = 120
MAX_RECEIVE = 3


@dataclass
class World:
    processor: ChallengeProcessor
    store: StatusStore
    ssm: FakeSsm
    launcher: FakeLauncher
    metrics: RecordingMetrics
    tokens: FakeTokenProvider
    logs: io.StringIO
    clock: Clock

    def deliver(self, body: RoutedSubmission | str, *, receive_count: int = 1) -> RecordOutcome:
        text = body if isinstance(body, str) else body.to_json()
        return self.processor.process(InboundMessage(message_id="m-1", body=text, receive_count=receive_count))

    def record(self, submission: RoutedSubmission, phase: ScoringPhase = V5_PHASE) -> LifecycleRecord:
        record = self.store.get(run_id(submission.submission_id, phase))
        assert record is not None
        return record

    def set_config(self, **overrides: Any) -> None:
        self.ssm.put(PARAMETER_NAME, config_document(**overrides))


def settings_for(table: str, **extra: str) -> ChallengeProcessorSettings:
    env = processor_env(
        table, MAX_RECEIVE_COUNT=str(MAX_RECEIVE), LAUNCH_LEASE_SECONDS=str(LEASE_SECONDS), CONFIG_CACHE_SECONDS="300"
    )
    return ChallengeProcessorSettings.from_env({**env, **extra})


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock) -> World:
    return v5_world(status_table, clock)


def v5_world(status_table: str, clock: Clock) -> World:
    """A v5 challenge's processor over the fakes (roomy caps), on the moto status and capacity tables."""
    fakes = Fakes.with_config(config_document())
    processor = fakes.processor(settings_for(status_table), clock)
    store = StatusStore(status_table, clock=clock)
    return World(processor, store, fakes.ssm, fakes.launcher, fakes.metrics, fakes.tokens, fakes.logs, clock)


# ------------------------------------------------------------------ the happy path
def test_valid_message_launches_one_task_and_records_it(world: World) -> None:
    submission = routed_submission()

    outcome = world.deliver(submission)

    assert outcome is RecordOutcome.LAUNCHED
    [request] = world.launcher.requests
    assert request.client_token == client_token(submission.submission_id, V5_PHASE, 1)
    assert request.kwargs["startedBy"] == f"mm-processor/dev/{CHALLENGE_ID}"
    assert env_of(request)["MM_SUBMISSION_ID"] == submission.submission_id
    record = world.record(submission)
    assert record.state is SubmissionState.LAUNCHED
    assert record.task_arn == world.launcher.tasks_by_token[request.client_token]
    assert record.scorer_type == "mm-scorer-java"
    assert record.timeout_at == int(world.clock.now) + 1800  # config timeout
    assert record.deadline_at == int(world.clock.now) + 900  # the sweeper's first liveness check comes first
    assert record.timeout_seconds == 1800
    assert RoutedSubmission.model_validate_json(record.routed_message or "") == submission
    assert world.metrics.total(Metric.TASKS_LAUNCHED) == 1


def test_same_submission_twice_launches_once(world: World) -> None:
    submission = routed_submission()

    first = world.deliver(submission)
    second = world.deliver(submission)

    assert (first, second) == (RecordOutcome.LAUNCHED, RecordOutcome.DUPLICATE)
    assert len(world.launcher.requests) == 1
    assert world.metrics.total(Metric.DUPLICATES_SKIPPED) == 1
    assert any(line["message"].startswith("duplicate delivery") for line in log_lines(world.logs))


def test_finished_submission_redelivered_is_acknowledged_without_runtask(world: World) -> None:
    submission = routed_submission()
    world.deliver(submission)
    task_arn = world.record(submission).task_arn
    assert task_arn is not None
    world.store.record_outcome(
        run_id(submission.submission_id, V5_PHASE),
        CHALLENGE_ID,
        Outcome(code=OutcomeCode.SUCCEEDED, test_status=TestStatus.SUCCESS, reason="exit 0", task_arn=task_arn),
        report_required=False,
    )

    assert world.deliver(submission, receive_count=2) is RecordOutcome.DUPLICATE
    assert len(world.launcher.requests) == 1


# ------------------------------------------------------------------ definite failures
def test_failures_array_fails_the_record_and_records_launch_failed(world: World) -> None:
    submission = routed_submission()
    world.launcher.script.append(
        LaunchRejected(
            "Capacity is unavailable at this time",
            "RunTask failures[]: Capacity is unavailable at this time",
            LaunchErrorKind.TRANSIENT,
        )
    )

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission)

    assert raised.value.reason_code == "Capacity is unavailable at this time"
    record = world.record(submission)
    assert record.state is SubmissionState.LAUNCH_FAILED
    assert record.task_arn is None
    assert "Capacity is unavailable" in (record.reason or "")
    assert SubmissionState.LAUNCHED.value not in [entry.state for entry in record.history]
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {"Capacity is unavailable at this time": 1}
    assert world.metrics.total(Metric.TASKS_LAUNCHED) == 0


def test_retry_after_a_definite_failure_uses_the_next_attempt_token(world: World) -> None:
    submission = routed_submission()
    world.launcher.script.append(
        LaunchRejected("RESOURCE:CPU", "failures[]: RESOURCE:CPU", LaunchErrorKind.TRANSIENT, token_settled=True)
    )
    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=1)

    assert world.deliver(submission, receive_count=2) is RecordOutcome.LAUNCHED

    assert world.launcher.tokens == [
        client_token(submission.submission_id, V5_PHASE, 1),
        client_token(submission.submission_id, V5_PHASE, 2),
    ]
    record = world.record(submission)
    assert (record.state, record.launch_attempt) == (SubmissionState.LAUNCHED, 2)


def test_throttling_puts_the_run_back_in_its_place_never_a_message_failure(world: World) -> None:
    submission = routed_submission()
    world.launcher.script.append(LaunchRejected("Throttling", "ThrottlingException: rate", LaunchErrorKind.THROTTLED))

    assert world.deliver(submission, receive_count=MAX_RECEIVE) is RecordOutcome.WAITING  # acknowledged, no DLQ

    record = world.record(submission)
    assert (record.state, record.launch_attempt, record.slot_pools) == (SubmissionState.WAITING, 1, [])
    assert world.metrics.reasons(Metric.LAUNCHES_THROTTLED) == {"Throttled": 1}
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {}
    assert world.metrics.total(Metric.DEAD_LETTERED) == 0


def test_failure_on_the_last_receive_is_dead_lettered(world: World) -> None:
    submission = routed_submission()
    world.launcher.script.append(
        LaunchRejected("Capacity is unavailable at this time", "capacity", LaunchErrorKind.TRANSIENT)
    )

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=MAX_RECEIVE)

    assert world.record(submission).state is SubmissionState.DEAD_LETTERED
    assert world.metrics.total(Metric.DEAD_LETTERED) == 1
    assert any("DLQ" in line["message"] for line in log_lines(world.logs))


def test_permanent_runtask_error_records_reason_and_forces_config_refresh(world: World) -> None:
    submission = routed_submission()
    world.deliver(routed_submission())  # warms the config cache
    assert world.ssm.calls_for(PARAMETER_NAME) == 1
    world.launcher.script.append(
        LaunchRejected("ClientException", "ClientException: TaskDefinition is inactive", LaunchErrorKind.PERMANENT)
    )

    with pytest.raises(RecordFailed):
        world.deliver(submission)
    record = world.record(submission)
    assert record.state is SubmissionState.LAUNCH_FAILED
    assert "TaskDefinition is inactive" in (record.reason or "")

    world.set_config(ecsTaskDefinition="mm-scorer-example:4")
    world.deliver(submission, receive_count=2)  # well within the cache TTL

    assert world.ssm.calls_for(PARAMETER_NAME) == 2
    assert world.launcher.requests[-1].kwargs["taskDefinition"] == "mm-scorer-example:4"


# ------------------------------------------------------------------ config
def test_missing_config_fails_back_with_a_clear_reason_and_no_claim(world: World) -> None:
    submission = routed_submission()
    world.ssm.values.clear()

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission)

    assert raised.value.reason_code == "ConfigError"
    assert "parameter_missing" in raised.value.detail
    assert PARAMETER_NAME in raised.value.detail
    assert world.store.get_runs(submission.submission_id) == []
    assert world.launcher.requests == []
    assert world.metrics.total(Metric.CONFIG_ERRORS) == 1
    [config_line] = [line for line in log_lines(world.logs) if line["message"].startswith("challenge config unusable")]
    assert config_line["config_error"] == "parameter_missing"


def test_invalid_config_names_the_fields_and_the_fix_is_picked_up_at_once(world: World) -> None:
    submission = routed_submission()
    world.deliver(routed_submission())  # cached, valid
    world.set_config(scorerType="bad type!")
    world.processor.configs.invalidate()  # the cache expired meanwhile

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission)
    assert "invalid_fields" in raised.value.detail
    assert "scorerType" in raised.value.detail

    world.set_config()
    assert world.deliver(submission, receive_count=2) is RecordOutcome.LAUNCHED
    assert world.ssm.calls_for(PARAMETER_NAME) == 3


def test_config_error_then_next_message_force_refreshes_even_with_a_cached_config(world: World) -> None:
    world.deliver(routed_submission())
    world.launcher.script.append(LaunchRejected("InvalidParameterException", "bad subnet", LaunchErrorKind.PERMANENT))
    with pytest.raises(RecordFailed):
        world.deliver(routed_submission())
    calls_before = world.ssm.calls_for(PARAMETER_NAME)

    world.deliver(routed_submission())
    world.deliver(routed_submission())

    assert world.ssm.calls_for(PARAMETER_NAME) == calls_before + 1  # refreshed once, then cached again


def test_config_without_subnets_is_a_config_error(world: World) -> None:
    world.set_config(subnets=[], securityGroups=[])

    with pytest.raises(RecordFailed) as raised:
        world.deliver(routed_submission())

    assert "subnets" in raised.value.detail
    assert world.launcher.requests == []


# ------------------------------------------------------------------ messages that must never launch
def test_wrong_challenge_message_never_launches_or_touches_the_table(world: World) -> None:
    submission = routed_submission(challenge_id=OTHER_CHALLENGE_ID)

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission, receive_count=MAX_RECEIVE)

    assert raised.value.reason_code == "WrongChallenge"
    assert world.launcher.requests == []
    assert world.ssm.calls == []
    assert world.store.get_runs(submission.submission_id) == []
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {"WrongChallenge": 1}
    assert world.metrics.total(Metric.DEAD_LETTERED) == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        json.dumps({"submissionId": "x"}),
        json.dumps({**json.loads(routed_submission().to_json()), "submissionId": "12345"}),
    ],
)
def test_unparseable_body_fails_back_without_launch(world: World, body: str) -> None:
    with pytest.raises(RecordFailed) as raised:
        world.deliver(body)

    assert raised.value.reason_code == "InvalidMessage"
    assert world.launcher.requests == []
    assert world.metrics.reasons(Metric.LAUNCH_FAILURES) == {"InvalidMessage": 1}


def test_challenge_id_case_is_normalized_before_comparing(status_table: str, capacity_table: str, clock: Clock) -> None:
    logger, _ = captured_logger()
    ssm = FakeSsm()
    ssm.put(PARAMETER_NAME, config_document())
    ssm.put(CAPACITY_PARAMETER_NAME, capacity_document())
    launcher = FakeLauncher()
    processor = ChallengeDependencies(
        settings_for(status_table, CHALLENGE_ID=CHALLENGE_ID.upper()),
        metrics=RecordingMetrics(),
        logger=logger,
        ssm_client=ssm,
        launcher=launcher,  # type: ignore[arg-type]
        clock=clock,
    ).processor

    outcome = processor.process(InboundMessage("m", routed_submission().to_json(), 1))

    assert outcome is RecordOutcome.LAUNCHED
