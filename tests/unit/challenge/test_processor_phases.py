"""challenge_lambda.processor: one run per (submission, phase), and v6 skips made visible (decisions 085, 086).

The real StatusStore on moto DynamoDB; the launcher, SSM, Lambda and the token provider are fakes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from challenge_lambda.launcher import LaunchErrorKind, LaunchRejected, LaunchResult, RunTaskRequest
from challenge_lambda.processor import (
    ChallengeProcessor,
    FailureReason,
    InboundMessage,
    RecordFailed,
    RecordOutcome,
    SkipReason,
)
from mm_adapters.status_store import StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.models.task import EcsRunnerEnv
from mm_contracts.names import client_token
from mm_contracts.settings import ChallengeProcessorSettings
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.unit.challenge.helpers import (
    PARAMETER_NAME,
    SECRET_TOKEN,
    FakeLambda,
    FakeLauncher,
    Fakes,
    FakeSqs,
    FakeSsm,
    config_document,
    env_of,
    iter_strings,
    log_lines,
    phases_of,
    processor_env,
    routed_submission,
    v6_config_document,
    v6_submission,
)

MAX_RECEIVE = 3
COMPLETION_FUNCTION = "mm-processor-dev-completion"
EXAMPLE, PROVISIONAL, SYSTEM = ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL, ScoringPhase.SYSTEM
EXAMPLE_TASK = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"


@dataclass
class World:
    processor: ChallengeProcessor
    store: StatusStore
    ssm: FakeSsm
    launcher: FakeLauncher
    lambda_: FakeLambda
    metrics: RecordingMetrics
    logs: io.StringIO
    clock: Clock
    sqs: FakeSqs

    def deliver(self, body: RoutedSubmission, *, receive_count: int = 1) -> RecordOutcome:
        message = InboundMessage(message_id="m-1", body=body.to_json(), receive_count=receive_count)
        return self.processor.process(message)

    def run(self, submission: RoutedSubmission, phase: ScoringPhase) -> LifecycleRecord:
        record = self.store.get(run_id(submission.submission_id, phase))
        assert record is not None, f"no run {phase}"
        return record

    def phases_launched(self) -> list[str]:
        return [env_of(request)["MM_PHASE"] for request in self.launcher.requests]

    def set_config(self, document: dict[str, Any] | str) -> None:
        self.ssm.put(PARAMETER_NAME, document)


def _world(table: str, clock: Clock, *, completion_function: str | None = COMPLETION_FUNCTION) -> World:
    env = processor_env(table, MAX_RECEIVE_COUNT=str(MAX_RECEIVE))
    if completion_function is not None:
        env["COMPLETION_FUNCTION_NAME"] = completion_function
    fakes = Fakes.with_config(v6_config_document())
    lambda_, sqs = FakeLambda(), FakeSqs()
    processor = fakes.processor(ChallengeProcessorSettings.from_env(env), clock, sqs=sqs, lambda_=lambda_)
    store = StatusStore(table, clock=clock)
    return World(processor, store, fakes.ssm, fakes.launcher, lambda_, fakes.metrics, fakes.logs, clock, sqs)


@pytest.fixture
def world(status_table: str, capacity_table: str, clock: Clock) -> World:
    return _world(status_table, clock)


def _capacity() -> LaunchRejected:
    return LaunchRejected(
        "RESOURCE:CPU", "RunTask failures[]: RESOURCE:CPU", LaunchErrorKind.TRANSIENT, token_settled=True
    )


# ------------------------------------------------------------------ one task per phase
def test_a_v6_submission_launches_one_task_per_submission_phase(world: World) -> None:
    submission = v6_submission()

    assert world.deliver(submission) is RecordOutcome.LAUNCHED

    assert sorted(world.phases_launched()) == ["EXAMPLE", "PROVISIONAL"]  # SYSTEM is not triggered by a submission
    by_phase = {env_of(request)["MM_PHASE"]: request for request in world.launcher.requests}
    assert by_phase["EXAMPLE"].client_token == client_token(submission.submission_id, "EXAMPLE", 1)
    assert by_phase["PROVISIONAL"].client_token == client_token(submission.submission_id, "PROVISIONAL", 1)
    example_env, provisional_env = env_of(by_phase["EXAMPLE"]), env_of(by_phase["PROVISIONAL"])
    assert (example_env["MM_PHASE_START_SEED"], example_env["MM_PHASE_NUMBER_OF_TESTS"]) == ("1", "10")
    assert (provisional_env["MM_PHASE_START_SEED"], provisional_env["MM_PHASE_NUMBER_OF_TESTS"]) == ("1001", "100")
    for phase, timeout in ((EXAMPLE, 600), (PROVISIONAL, 2400)):
        record = world.run(submission, phase)
        tags = {tag["key"]: tag["value"] for tag in by_phase[phase.value].kwargs["tags"]}
        assert (record.state, record.phase, record.platform.value) == (SubmissionState.LAUNCHED, phase, "v6")
        assert record.task_arn == world.launcher.tasks_by_token[by_phase[phase.value].client_token]
        assert record.timeout_seconds == timeout
        assert tags["Phase"] == phase.value
    assert world.store.get(run_id(submission.submission_id, SYSTEM)) is None
    assert phases_of(world.metrics, Metric.TASKS_LAUNCHED) == {"EXAMPLE": 1, "PROVISIONAL": 1}
    assert world.metrics.total(Metric.TASKS_LAUNCHED) == 2
    launched = [line for line in log_lines(world.logs) if line["message"] == "scorer task launched"]
    assert sorted((line["run_id"], line["phase"]) for line in launched) == [
        (run_id(submission.submission_id, EXAMPLE), "EXAMPLE"),
        (run_id(submission.submission_id, PROVISIONAL), "PROVISIONAL"),
    ]


def test_the_same_submission_delivered_twice_launches_each_phase_once(world: World) -> None:
    submission = v6_submission()

    first = world.deliver(submission)
    second = world.deliver(submission, receive_count=2)
    relaunch_message = world.deliver(v6_submission(submission_id=submission.submission_id, phase=EXAMPLE))

    assert (first, second, relaunch_message) == (
        RecordOutcome.LAUNCHED,
        RecordOutcome.DUPLICATE,
        RecordOutcome.DUPLICATE,
    )
    assert sorted(world.phases_launched()) == ["EXAMPLE", "PROVISIONAL"]
    assert world.metrics.total(Metric.DUPLICATES_SKIPPED) == 3


def test_a_failing_phase_is_retried_alone_after_the_other_launched(world: World) -> None:
    submission = v6_submission()

    def refuse_provisional(request: RunTaskRequest) -> LaunchResult:
        if env_of(request)["MM_PHASE"] == "PROVISIONAL":
            raise _capacity()
        return LaunchResult(task_arn=EXAMPLE_TASK, cluster_arn=world.launcher.cluster_arn)

    world.launcher.script += [refuse_provisional, refuse_provisional]

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission, receive_count=1)

    assert raised.value.reason_code == "RESOURCE:CPU"
    assert (world.run(submission, EXAMPLE).state, world.run(submission, EXAMPLE).task_arn) == (
        SubmissionState.LAUNCHED,
        EXAMPLE_TASK,
    )
    assert world.run(submission, PROVISIONAL).state is SubmissionState.LAUNCH_FAILED
    assert phases_of(world.metrics, Metric.LAUNCH_FAILURES) == {"PROVISIONAL": 1}
    assert world.metrics.total(Metric.LAUNCH_FAILURES) == 1

    assert world.deliver(submission, receive_count=2) is RecordOutcome.LAUNCHED

    assert world.launcher.tokens[2:] == [client_token(submission.submission_id, "PROVISIONAL", 2)]  # EXAMPLE not again
    assert world.run(submission, PROVISIONAL).state is SubmissionState.LAUNCHED


def test_the_last_receive_dead_letters_only_the_failing_run(world: World) -> None:
    submission = v6_submission()
    world.launcher.script += [_capacity(), _capacity()]  # both phases refused ...

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission, receive_count=MAX_RECEIVE)

    assert {world.run(submission, phase).state for phase in (EXAMPLE, PROVISIONAL)} == {SubmissionState.DEAD_LETTERED}
    assert "EXAMPLE: RESOURCE:CPU" in raised.value.detail
    assert "PROVISIONAL: RESOURCE:CPU" in raised.value.detail
    assert world.metrics.total(Metric.DEAD_LETTERED) == 1  # one message in the DLQ

    world.clock.advance(3600)  # ... an operator redrives the DLQ: each run launches once, with a new token
    assert world.deliver(submission) is RecordOutcome.LAUNCHED
    assert sorted(world.launcher.tokens[2:]) == [
        client_token(submission.submission_id, "EXAMPLE", 2),
        client_token(submission.submission_id, "PROVISIONAL", 2),
    ]


def test_a_message_naming_a_phase_launches_exactly_that_phase(world: World) -> None:
    submission = v6_submission(phase=SYSTEM)

    assert world.deliver(submission) is RecordOutcome.LAUNCHED

    assert world.phases_launched() == ["SYSTEM"]
    assert env_of(world.launcher.requests[0])["MM_PHASE_START_SEED"] == "5001"
    assert world.store.get_runs(submission.submission_id) == [world.run(submission, SYSTEM)]


def test_a_phase_the_config_lacks_is_a_recorded_failure_never_a_launch(world: World) -> None:
    document = v6_config_document()
    document["phases"] = [entry for entry in document["phases"] if entry["phase"] != "SYSTEM"]
    world.set_config(document)
    submission = v6_submission(phase=SYSTEM)

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission, receive_count=1)
    assert raised.value.reason_code == FailureReason.PHASE_NOT_CONFIGURED.value
    assert world.run(submission, SYSTEM).state is SubmissionState.LAUNCH_FAILED
    assert "SYSTEM is not among" in (world.run(submission, SYSTEM).reason or "")

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=MAX_RECEIVE)
    assert world.run(submission, SYSTEM).state is SubmissionState.DEAD_LETTERED
    assert world.launcher.requests == []


def test_a_v5_submission_keeps_its_single_run(world: World) -> None:
    world.set_config(config_document())
    submission = routed_submission()

    assert world.deliver(submission) is RecordOutcome.LAUNCHED

    assert world.phases_launched() == ["PROVISIONAL"]
    assert [record.phase for record in world.store.get_runs(submission.submission_id)] == [PROVISIONAL]


# ------------------------------------------------------------------ v6 skips: recorded, reported, acknowledged
def test_a_skipped_submission_records_each_phase_and_hands_it_to_the_completion_function(world: World) -> None:
    reason = "Marathon Match scoring skipped because the challenge configuration is inactive."
    submission = v6_submission(skip_reason=reason)

    assert world.deliver(submission) is RecordOutcome.SKIPPED

    assert world.launcher.requests == []
    for phase in (EXAMPLE, PROVISIONAL):
        record = world.run(submission, phase)
        assert (record.state, record.reason, record.task_arn) == (SubmissionState.FAILED, reason, None)
        assert record.report_status is ReportStatus.PENDING
    assert [(call["FunctionName"], call["InvocationType"]) for call in world.lambda_.invocations] == [
        (COMPLETION_FUNCTION, "Event"),
        (COMPLETION_FUNCTION, "Event"),
    ]
    assert sorted(payload["detail"]["runId"] for payload in world.lambda_.payloads()) == [
        run_id(submission.submission_id, EXAMPLE),
        run_id(submission.submission_id, PROVISIONAL),
    ]
    assert {(p["source"], p["detail-type"]) for p in world.lambda_.payloads()} == {("mm-processor", "Run Report Due")}


def test_a_skip_delivered_twice_records_once_and_never_launches(world: World) -> None:
    submission = v6_submission(skip_reason="inactive")
    world.deliver(submission)
    first = [world.run(submission, phase) for phase in (EXAMPLE, PROVISIONAL)]

    assert world.deliver(submission, receive_count=2) is RecordOutcome.SKIPPED

    assert [world.run(submission, phase) for phase in (EXAMPLE, PROVISIONAL)] == first
    assert world.launcher.requests == []


def test_a_skip_never_touches_a_run_that_was_launched(world: World) -> None:
    submission = v6_submission()
    world.deliver(submission)
    launched = world.run(submission, EXAMPLE)

    assert world.deliver(v6_submission(submission_id=submission.submission_id, skip_reason="inactive")) is (
        RecordOutcome.SKIPPED
    )

    assert world.run(submission, EXAMPLE) == launched
    assert world.lambda_.invocations == []


def test_a_config_triggering_no_phase_is_a_visible_skip(world: World) -> None:
    document = v6_config_document()
    for entry in document["phases"]:
        entry["onSubmission"] = False
    world.set_config(document)
    submission = v6_submission()

    assert world.deliver(submission) is RecordOutcome.SKIPPED

    [record] = world.store.get_runs(submission.submission_id)
    assert (record.phase, record.state, record.reason) == (
        PROVISIONAL,  # the phase Topcoder's processor marks a skip on
        SubmissionState.FAILED,
        SkipReason.NO_PHASE_TRIGGERED.value,
    )
    assert len(world.lambda_.invocations) == 1


def test_an_unusable_v6_config_is_retried_then_skipped_on_the_last_receive(world: World) -> None:
    world.ssm.values.clear()
    submission = v6_submission()

    with pytest.raises(RecordFailed) as raised:
        world.deliver(submission, receive_count=1)
    assert raised.value.reason_code == FailureReason.CONFIG_ERROR.value
    assert world.store.get_runs(submission.submission_id) == []

    assert world.deliver(submission, receive_count=MAX_RECEIVE) is RecordOutcome.SKIPPED

    [record] = world.store.get_runs(submission.submission_id)
    assert (record.phase, record.state) == (PROVISIONAL, SubmissionState.FAILED)
    assert record.reason == f"{SkipReason.CONFIG_UNUSABLE.value} (parameter_missing)."
    assert PARAMETER_NAME not in (record.reason or "")  # member-visible: the code, not our parameter names
    assert [payload["detail"]["runId"] for payload in world.lambda_.payloads()] == [record.run_id]
    assert world.metrics.total(Metric.DEAD_LETTERED) == 0


def test_an_unusable_v5_config_still_goes_to_the_dlq(world: World) -> None:
    world.ssm.values.clear()
    submission = routed_submission()

    with pytest.raises(RecordFailed):
        world.deliver(submission, receive_count=MAX_RECEIVE)

    assert world.store.get_runs(submission.submission_id) == []
    assert world.lambda_.invocations == []


def test_a_v5_message_with_a_skip_reason_is_refused(world: World) -> None:
    body = routed_submission().model_copy(update={"skip_reason": "inactive"})

    with pytest.raises(RecordFailed) as raised:
        world.deliver(body)

    assert raised.value.reason_code == FailureReason.INVALID_MESSAGE.value
    assert world.launcher.requests == []
    assert world.lambda_.invocations == []


def test_a_message_of_the_other_platform_is_refused_and_never_launched(world: World) -> None:
    # A v5 body in a v6 challenge's queue (sent by hand or replayed past the router's platform_mismatch skip):
    # launching it would run a scorer the platform never asked for and report it on the wrong platform.
    body = routed_submission()

    with pytest.raises(RecordFailed) as raised:
        world.deliver(body)

    assert raised.value.reason_code == FailureReason.PLATFORM_MISMATCH.value
    assert world.launcher.requests == []
    assert world.lambda_.invocations == []
    assert world.store.get_runs(body.submission_id) == []


def test_without_a_completion_function_the_skip_is_left_to_the_sweeper(
    status_table: str, capacity_table: str, clock: Clock
) -> None:
    world = _world(status_table, clock, completion_function=None)
    submission = v6_submission(skip_reason="inactive")

    assert world.deliver(submission) is RecordOutcome.SKIPPED

    assert world.run(submission, PROVISIONAL).deadline_at == int(clock.now)  # due now: the sweeper's next pass
    assert any("sweeper re-drives" in line["message"] for line in log_lines(world.logs))


def test_a_failed_report_due_invoke_still_acknowledges_the_recorded_skip(world: World) -> None:
    world.lambda_.error = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "rate"}}, "Invoke")
    submission = v6_submission(skip_reason="inactive")

    assert world.deliver(submission) is RecordOutcome.SKIPPED

    assert world.run(submission, PROVISIONAL).report_status is ReportStatus.PENDING
    assert any(line["message"].startswith("report-due invoke failed") for line in log_lines(world.logs))


# ------------------------------------------------------------------ the token never in overrides
@pytest.mark.parametrize("scorer_environment", ["mm_processor", "topcoder_ecs_runner"])
@pytest.mark.parametrize("mode", ["task_definition_secrets", "parameter_reference", "environment_token_insecure"])
def test_no_token_in_overrides_except_the_documented_insecure_mode(
    world: World, mode: str, scorer_environment: str
) -> None:
    world.set_config(v6_config_document(scorerCredentialsMode=mode, scorerEnvironment=scorer_environment))

    world.deliver(v6_submission())

    for request in world.launcher.requests:
        env = env_of(request)
        assert "ACCESS_TOKEN" not in env  # Topcoder's runner gets it from the task definition's `secrets` only
        assert (EcsRunnerEnv.TEST_PHASE.value in env) is (scorer_environment == "topcoder_ecs_runner")
        holders = [name for name, value in env.items() if value == SECRET_TOKEN]
        assert holders == (["MM_M2M_TOKEN"] if mode == "environment_token_insecure" else [])
        if mode != "environment_token_insecure":
            assert SECRET_TOKEN not in list(iter_strings(request.kwargs))
    assert SECRET_TOKEN not in world.logs.getvalue()
