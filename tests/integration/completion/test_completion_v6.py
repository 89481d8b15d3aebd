"""v6 reporting end to end: the completion handler on moto against the stand-in's review-api-v6 (decision 086).

Wired as in production from `CompletionSettings` (REVIEW_API_URL, the Auth0 proxy token provider, the challenge
config from moto SSM). The stand-in validates every request and response against `review-api-v6-summations.yaml`
and checks the token's scopes; the fixture fails a test that sent anything the spec rejects.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Any

import pytest

from completion_lambda import handler as completion_handler
from completion_lambda import wiring as completion_wiring
from completion_lambda.wiring import CompletionDependencies
from mm_adapters import aws as aws_clients
from mm_adapters.status_store import StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import PhaseConfig, Platform, ScoringPhase, run_id
from mm_contracts.models.report_due import report_due_event
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import TIMEOUT_STOP_REASON_PREFIX, challenge_config_parameter_name, started_by
from mm_contracts.settings import CompletionSettings, TokenSource
from tests.builders import ecs_task_stopped_event
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import (
    CAPACITY_PARAMETER,
    CAPACITY_TABLE,
    CLUSTER_ARN,
    ENVIRONMENT,
    create_auth0_secret,
    launch_task,
    routed,
    task_arn,
)
from tests.unit.completion.fakes import CHALLENGE_ID, challenge_config
from topcoder_standin import TopcoderStandIn

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

SUMMATIONS = "/v6/reviewSummations"
SCORECARD_ID = "Sc0rEcArD-v6_1"
NANOID_ALPHABET = string.ascii_letters + string.digits + "_-"


def nanoid() -> str:
    return "".join(random.choices(NANOID_ALPHABET, k=14))


def v6_config(**overrides: Any) -> ChallengeConfig:
    values: dict[str, Any] = {
        "platform": Platform.V6,
        "scorecard_id": SCORECARD_ID,
        "phases": (PhaseConfig(phase=ScoringPhase.EXAMPLE), PhaseConfig(phase=ScoringPhase.PROVISIONAL)),
    }
    values.update(overrides)
    return challenge_config(**values)


class Harness:
    def __init__(self, standin: TopcoderStandIn, store: StatusStore, context: Any, clock: Clock) -> None:
        self.standin = standin
        self.store = store
        self.context = context
        self.clock = clock
        self.metrics = RecordingMetrics()

    def install(self, config: ChallengeConfig, settings: CompletionSettings) -> None:
        aws_clients.client("ssm").put_parameter(
            Name=challenge_config_parameter_name(CHALLENGE_ID), Type="String", Value=config.to_json(), Overwrite=True
        )
        completion_wiring.use_dependencies(
            CompletionDependencies(settings, store=self.store, metrics_sink=self.metrics)
        )

    def launched(self, phase: ScoringPhase = ScoringPhase.PROVISIONAL) -> tuple[str, str]:
        submission_id, arn = nanoid(), task_arn()
        self.standin.add_submission(submission_id, CHALLENGE_ID, 40_158_994)
        launch_task(self.store, submission_id, arn, CLUSTER_ARN, phase=phase, platform=Platform.V6)
        return submission_id, arn

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return completion_handler.handler(event, self.context)

    def record(self, submission_id: str, phase: ScoringPhase = ScoringPhase.PROVISIONAL) -> LifecycleRecord:
        record = self.store.get(run_id(submission_id, phase))
        assert record is not None
        return record

    def posts(self) -> int:
        return len(self.standin.requests_to("POST", SUMMATIONS))

    def patches(self) -> int:
        return len([r for r in self.standin.requests if r.method == "PATCH"])


def stopped(
    submission_id: str, arn: str, phase: ScoringPhase | None = ScoringPhase.PROVISIONAL, **kwargs: Any
) -> dict[str, Any]:
    """A STOPPED event of a v6 task as the challenge processor starts it (task contract: MM_PHASE, MM_PLATFORM)."""
    environment = {
        TaskEnv.SUBMISSION_ID.value: submission_id,
        TaskEnv.CHALLENGE_ID.value: CHALLENGE_ID,
        TaskEnv.PLATFORM.value: "v6",
        TaskEnv.CORRELATION_ID.value: "marathonmatch.submission.received-0-7",
    }
    if phase is not None:
        environment[TaskEnv.PHASE.value] = phase.value
    kwargs.setdefault("environment", environment)
    return ecs_task_stopped_event(
        task_arn=arn, cluster_arn=CLUSTER_ARN, started_by=started_by(ENVIRONMENT, CHALLENGE_ID), **kwargs
    )


def settings_for(standin: TopcoderStandIn, status_table: str, secret_arn: str, **values: Any) -> CompletionSettings:
    base: dict[str, Any] = {
        "environment_name": ENVIRONMENT,
        "status_table_name": status_table,
        "challenge_config_parameter_prefix": "/mm-processor/challenges",
        "review_api_url": standin.v6_base_url,
        "api_timeout_seconds": 5,
        "api_max_retries": 0,
        "token_source": TokenSource.AUTH0_PROXY,
        "auth0_proxy_url": standin.token_url,
        "auth0_credentials_secret_arn": secret_arn,
        "capacity_table_name": CAPACITY_TABLE,
        "capacity_parameter_name": CAPACITY_PARAMETER,
    }
    return CompletionSettings(**{**base, **values})


@pytest.fixture
def v6(status_table: str, clock: Clock, lambda_context: Any) -> Iterator[tuple[Harness, Any]]:
    secret_arn = create_auth0_secret()
    with TopcoderStandIn() as standin:
        harness = Harness(standin, StatusStore(status_table, clock=clock), lambda_context, clock)

        def install(config: ChallengeConfig | None = None, **settings: Any) -> Harness:
            harness.install(config or v6_config(), settings_for(standin, status_table, secret_arn, **settings))
            return harness

        yield harness, install
        completion_wiring.use_dependencies(None)
        assert standin.violations() == [], [(r.method, r.path, r.errors) for r in standin.violations()]


def test_a_failed_v6_run_gets_one_terminal_summation_in_the_platforms_format(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id, arn = harness.launched()

    result = harness.invoke(stopped(submission_id, arn, exit_code=3))

    assert result["disposition"] == "reported"
    assert result["runId"] == f"{submission_id}#PROVISIONAL"
    [summation] = harness.standin.summations_for(submission_id, "PROVISIONAL")
    assert summation["aggregateScore"] == -1
    assert summation["isPassing"] is False
    assert summation["isProvisional"] is True
    assert summation.get("isExample") is not True
    assert summation["scorecardId"] == SCORECARD_ID
    assert summation["reviewedDate"]
    assert summation["metadata"] == {
        "testType": "provisional",
        "testProcess": "provisional",
        "testStatus": "FAILED",
        "testProgress": 1,
        "reason": "scorer exited with code 3",
        "exitCode": 3,
        "stopCode": "EssentialContainerExited",
        "taskArn": arn,
        "runId": f"{submission_id}#PROVISIONAL",
        "phase": "PROVISIONAL",
        "correlationId": "marathonmatch.submission.received-0-7",
        "outcome": "FAILED",
        "reportedBy": "mm-processor",
    }
    # the upsert looked first (metadata=true, the phase's filter), then created
    [listing] = harness.standin.requests_to("GET", SUMMATIONS)
    assert listing.query["provisional"] == ["true"]
    assert listing.query["metadata"] == ["true"]
    assert harness.posts() == 1
    record = harness.record(submission_id)
    assert (record.state, record.report_status) == (SubmissionState.FAILED, ReportStatus.REPORTED)
    assert harness.standin.reviews == []  # nothing went to the v5 API


def test_a_redelivered_stopped_event_writes_no_second_summation(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id, arn = harness.launched()
    event = stopped(submission_id, arn, exit_code=1)

    harness.invoke(event)
    again = harness.invoke(event)

    assert again["disposition"] == "duplicate"
    assert len(harness.standin.summations_for(submission_id, "PROVISIONAL")) == 1
    assert harness.posts() == 1


def test_a_crash_after_the_post_updates_the_same_summation_on_the_retry(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id, arn = harness.launched()
    # Given the POST was stored but its answer lost (ambiguous), so the invocation failed
    harness.standin.fail_next("POST", SUMMATIONS, status=502, after_store=True)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whichever transient error the client raises
        harness.invoke(stopped(submission_id, arn, exit_code=1))
    assert harness.record(submission_id).report_status is ReportStatus.PENDING

    # When the event is redelivered after the slow-commit window
    harness.clock.advance(120)
    result = harness.invoke(stopped(submission_id, arn, exit_code=1))

    # Then the retry found the summation it had written: still one, not a second POST
    assert result["disposition"] == "already_reported"
    assert len(harness.standin.summations_for(submission_id, "PROVISIONAL")) == 1
    assert harness.posts() == 1
    assert harness.record(submission_id).report_status is ReportStatus.REPORTED


def test_a_failure_updates_the_scorers_own_summation_instead_of_adding_one(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id, arn = harness.launched()
    scorer = harness.standin.add_summation(
        submissionId=submission_id,
        aggregateScore=12.5,
        isPassing=True,
        isProvisional=True,
        metadata={"testType": "provisional", "testStatus": "IN PROGRESS", "testProgress": 0.4},
    )

    harness.invoke(stopped(submission_id, arn, exit_code=137))

    [summation] = harness.standin.summations_for(submission_id, "PROVISIONAL")
    assert summation["id"] == scorer["id"]
    assert (summation["aggregateScore"], summation["isPassing"]) == (-1, False)
    assert summation["metadata"]["testStatus"] == "FAILED"
    assert summation["metadata"]["exitCode"] == 137
    assert harness.posts() == 0
    assert harness.patches() == 1


def test_a_timed_out_system_run_is_final_and_says_timed_out(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    phases = (PhaseConfig(phase=ScoringPhase.SYSTEM),)
    install(v6_config(phases=phases))
    submission_id, arn = harness.launched(ScoringPhase.SYSTEM)

    harness.invoke(
        stopped(
            submission_id,
            arn,
            ScoringPhase.SYSTEM,
            exit_code=None,
            stop_code="UserInitiated",
            stopped_reason=f"{TIMEOUT_STOP_REASON_PREFIX} exceeded 3600 s",
        )
    )

    [summation] = harness.standin.summations_for(submission_id, "SYSTEM")
    assert summation["isFinal"] is True
    assert summation["aggregateScore"] == -1
    metadata = summation["metadata"]
    assert (metadata["testType"], metadata["testProcess"], metadata["testStatus"]) == ("system", "system", "FAILED")
    assert metadata["timed_out"] is True
    assert metadata["outcome"] == "TIMED_OUT"


def test_an_operator_stop_is_cancelled_and_not_a_timeout(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id, arn = harness.launched()

    harness.invoke(stopped(submission_id, arn, exit_code=None, stop_code="UserInitiated", stopped_reason="superseded"))

    [summation] = harness.standin.summations_for(submission_id, "PROVISIONAL")
    assert summation["metadata"]["testStatus"] == "CANCELLED"
    assert "timed_out" not in summation["metadata"]


def test_the_report_due_event_of_a_skipped_run_writes_one_failed_summation(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id = nanoid()
    harness.standin.add_submission(submission_id, CHALLENGE_ID, 40_158_994)
    submission = routed(submission_id, platform=Platform.V6)
    assert harness.store.record_skipped(
        submission, phase=ScoringPhase.EXAMPLE, scorer_type="example-scorer", reason="challenge is not active"
    )
    event = report_due_event(run_id(submission_id, ScoringPhase.EXAMPLE))

    first = harness.invoke(event)
    second = harness.invoke(event)  # the sweeper's re-drive, or a duplicate invoke

    assert (first["disposition"], second["disposition"]) == ("reported", "duplicate")
    [summation] = harness.standin.summations_for(submission_id, "EXAMPLE")
    assert (summation["aggregateScore"], summation["isPassing"], summation["isExample"]) == (-1, False, True)
    metadata = summation["metadata"]
    assert (metadata["testStatus"], metadata["reason"], metadata["testType"]) == (
        "FAILED",
        "challenge is not active",
        "example",
    )
    assert metadata["taskArn"] is None
    assert harness.standin.summations_for(submission_id, "PROVISIONAL") == []
    assert harness.record(submission_id, ScoringPhase.EXAMPLE).report_status is ReportStatus.REPORTED


def test_success_reports_nothing_without_report_on_success(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install()
    submission_id, arn = harness.launched()

    result = harness.invoke(stopped(submission_id, arn, exit_code=0))

    assert result["disposition"] == "not_required"
    assert harness.standin.requests_to("GET", SUMMATIONS) == []
    assert harness.record(submission_id).report_status is ReportStatus.NOT_REQUIRED


def test_success_with_report_on_success_patches_only_the_scorers_metadata(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install(v6_config(report_on_success=True))
    submission_id, arn = harness.launched()
    scorer = harness.standin.add_summation(
        submissionId=submission_id,
        aggregateScore=87.25,
        isPassing=True,
        isProvisional=True,
        metadata={"testType": "provisional", "testStatus": "SUCCESS", "testProgressDetails": {"completedTests": 10}},
    )

    harness.invoke(stopped(submission_id, arn, exit_code=0))

    [summation] = harness.standin.summations_for(submission_id, "PROVISIONAL")
    assert summation["id"] == scorer["id"]
    assert (summation["aggregateScore"], summation["isPassing"]) == (87.25, True)  # the scorer's, untouched
    assert summation["metadata"]["testProgressDetails"] == {"completedTests": 10}  # kept
    assert (summation["metadata"]["testStatus"], summation["metadata"]["taskArn"]) == ("SUCCESS", arn)
    [patch] = [r for r in harness.standin.requests if r.method == "PATCH"]
    assert set(patch.json) == {"metadata"}


def test_success_with_report_on_success_and_no_scorer_summation_posts_a_pending_one(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install(v6_config(report_on_success=True))
    submission_id, arn = harness.launched()

    harness.invoke(stopped(submission_id, arn, exit_code=0))

    [summation] = harness.standin.summations_for(submission_id, "PROVISIONAL")
    assert (summation["aggregateScore"], summation["isPassing"]) == (0, False)
    assert summation["metadata"]["testStatus"] == "SUCCESS"
    assert summation["metadata"]["scoresPending"] is True


def test_a_v6_challenge_without_review_api_url_is_rejected_with_its_reason(v6: tuple[Harness, Any]) -> None:
    harness, install = v6
    install(review_api_url=None, submission_api_url=harness.standin.base_url)
    submission_id, arn = harness.launched()

    result = harness.invoke(stopped(submission_id, arn, exit_code=1))

    assert result["disposition"] == "rejected"
    assert "REVIEW_API_URL" in result["reason"]
    record = harness.record(submission_id)
    assert record.report_status is ReportStatus.REJECTED
    assert "REVIEW_API_URL" in (record.report_response or "")
    assert (Metric.REPORT_FAILURES, "no_report_client") in harness.metrics.counts
    assert harness.standin.requests_to("GET", SUMMATIONS) == []


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        ({TaskEnv.PHASE.value: "FINAL"}, "phase_invalid"),
        ({TaskEnv.SUBMISSION_ID.value: "short-id"}, "submission_id_invalid"),
        ({TaskEnv.SUBMISSION_ID.value: "3G9RNcDiRX4ioW!"}, "submission_id_invalid"),
        ({TaskEnv.PHASE.value: ""}, "phase_unidentified"),  # two phases configured: which run is unknowable
    ],
)
def test_a_task_of_unusable_identity_is_ignored_with_its_reason(
    v6: tuple[Harness, Any], environment: dict[str, str], reason: str
) -> None:
    harness, install = v6
    install()
    submission_id, arn = harness.launched()
    env = {
        TaskEnv.SUBMISSION_ID.value: submission_id,
        TaskEnv.CHALLENGE_ID.value: CHALLENGE_ID,
        TaskEnv.PHASE.value: "PROVISIONAL",
        **environment,
    }

    result = harness.invoke(stopped(submission_id, arn, environment=env, exit_code=1))

    assert (result["disposition"], result["reason"]) == ("ignored", reason)
    assert harness.record(submission_id).state is SubmissionState.LAUNCHED
    assert harness.standin.summations == []
