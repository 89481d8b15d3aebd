"""The v6 report's bodies, the upsert's choices, the report-due event and the reporters' wiring (decision 086)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from completion_lambda import wiring as completion_wiring
from completion_lambda.events import parse_event
from completion_lambda.reporting import (
    ReporterUnavailableError,
    RunReport,
    SummationReporter,
    failed_summation,
    pending_success_summation,
    success_metadata_patch,
    upsert_target,
)
from mm_adapters.topcoder.review_summations import ReviewSummationsClient
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform, RunKey, ScoringPhase
from mm_contracts.models.report_due import parse_report_due_event, report_due_event
from mm_contracts.settings import CompletionSettings
from mm_contracts.topcoder import ReviewSummationRequest, ReviewSummationUpdate
from tests.unit.completion.fakes import challenge_config

SUBMISSION = "3G9RNcDiRX4ioW"
ARN = "arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef"


def run_report(
    phase: ScoringPhase = ScoringPhase.PROVISIONAL,
    code: OutcomeCode = OutcomeCode.FAILED,
    status: TestStatus = TestStatus.FAILED,
    **config: Any,
) -> RunReport:
    outcome = Outcome(code=code, test_status=status, reason="r", exit_code=1, stop_code="X", task_arn=ARN)
    return RunReport(RunKey(SUBMISSION, phase), outcome, challenge_config(platform=Platform.V6, **config), "c-1")


@pytest.mark.parametrize(
    ("phase", "flag", "process"),
    [
        (ScoringPhase.EXAMPLE, "isExample", "provisional"),
        (ScoringPhase.PROVISIONAL, "isProvisional", "provisional"),
        (ScoringPhase.SYSTEM, "isFinal", "system"),
    ],
)
def test_the_failed_summation_carries_the_phase_flag_and_is_spec_valid(
    phase: ScoringPhase, flag: str, process: str
) -> None:
    body = failed_summation(run_report(phase, scorecard_id="Sc0rEcArD-v6_1"), now=1_800_000_000)

    assert ReviewSummationRequest.model_validate(body).to_wire() == body  # nothing dropped, nothing invented
    assert (body["aggregateScore"], body["isPassing"], body[flag]) == (-1, False, True)
    assert {"isExample", "isProvisional", "isFinal"} - {flag} == {"isExample", "isProvisional", "isFinal"} - set(body)
    assert body["scorecardId"] == "Sc0rEcArD-v6_1"
    assert body["reviewedDate"] == "2027-01-15T08:00:00Z"
    assert (body["metadata"]["testType"], body["metadata"]["testProcess"]) == (phase.test_type, process)
    assert body["metadata"]["runId"] == f"{SUBMISSION}#{phase.value}"
    assert "timed_out" not in body["metadata"]


def test_no_scorecard_configured_means_no_scorecard_sent() -> None:
    assert "scorecardId" not in failed_summation(run_report(), now=0)


def test_only_a_timeout_says_timed_out() -> None:
    body = failed_summation(run_report(code=OutcomeCode.TIMED_OUT), now=0)
    assert body["metadata"]["timed_out"] is True


def test_a_success_patch_touches_only_metadata_and_keeps_the_scorers() -> None:
    report = run_report(code=OutcomeCode.SUCCEEDED, status=TestStatus.SUCCESS)
    existing = {"id": "s1", "metadata": {"testProgressDetails": {"completedTests": 3}, "testStatus": "IN PROGRESS"}}

    patch = success_metadata_patch(report, existing)

    assert set(ReviewSummationUpdate.model_validate(patch).to_wire()) == {"metadata"}
    assert patch["metadata"]["testProgressDetails"] == {"completedTests": 3}
    assert patch["metadata"]["testStatus"] == "SUCCESS"


def test_a_pending_success_has_no_score_and_says_so() -> None:
    body = pending_success_summation(run_report(code=OutcomeCode.SUCCEEDED, status=TestStatus.SUCCESS))
    ReviewSummationRequest.model_validate(body)
    assert (body["aggregateScore"], body["isPassing"], body["metadata"]["scoresPending"]) == (0, False, True)


def test_the_upsert_prefers_this_tasks_summation_then_the_newest_scorers() -> None:
    # Decision 106: (a) the summation naming the current task, (b) the newest the scorer posted, (c) the run's own.
    report = run_report()
    scorer_new = {"id": "b", "createdAt": "2027-01-02"}
    scorer_old = {"id": "a", "createdAt": "2027-01-01"}
    ours = {"id": "c", "createdAt": "2027-01-03", "metadata": {"runId": report.run.run_id, "taskArn": ARN}}

    assert upsert_target([scorer_new, scorer_old], report) == scorer_new
    assert upsert_target([scorer_new, ours, scorer_old], report) == ours
    assert upsert_target([{"createdAt": "x"}], report) is None  # nothing with an id to patch


class _ListingOnly:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.created: list[ReviewSummationRequest] = []

    def list_summations(self, *, submission_id: str, phase: ScoringPhase) -> list[dict[str, Any]]:
        return self.items

    def create_summation(self, body: ReviewSummationRequest) -> dict[str, Any]:
        self.created.append(body)
        return {"id": "new"}

    def patch_summation(self, summation_id: str, body: ReviewSummationUpdate) -> dict[str, Any]:
        raise AssertionError("no patch expected")


def test_a_summation_of_another_phase_or_submission_is_never_updated() -> None:
    # The API filters already; a loose match (another phase, another submission) must still create, not patch.
    api = _ListingOnly(
        [
            {"id": "x", "submissionId": SUBMISSION, "isExample": True, "isProvisional": False},
            {"id": "y", "submissionId": "AnotherSubmis1", "isProvisional": True},
        ]
    )
    sent = SummationReporter(api, now=lambda: 0).report(run_report(), retried=False)
    assert sent.detail == "summation_created"
    assert len(api.created) == 1


def test_the_report_due_event_round_trips_and_rejects_what_is_not_a_run() -> None:
    event = report_due_event(f"{SUBMISSION}#EXAMPLE")
    assert event == {
        "source": "mm-processor",
        "detail-type": "Run Report Due",
        "detail": {"runId": f"{SUBMISSION}#EXAMPLE"},
    }
    parsed = parse_report_due_event(event)
    assert parsed is not None
    assert parsed.detail.run_key == RunKey(SUBMISSION, ScoringPhase.EXAMPLE)
    assert parse_report_due_event({"source": "aws.ecs", "detail-type": "ECS Task State Change"}) is None
    for bad in (f"{SUBMISSION}#FINAL", SUBMISSION, "not-an-id#EXAMPLE", f"{SUBMISSION}!#SYSTEM"):
        with pytest.raises(ValidationError):
            parse_report_due_event({**event, "detail": {"runId": bad}})
        with pytest.raises(ValueError):  # noqa: PT011 - the builder refuses it too
            report_due_event(bad)


def test_the_handler_parses_a_report_due_event() -> None:
    assert parse_report_due_event(report_due_event(f"{SUBMISSION}#SYSTEM")) == parse_event(
        report_due_event(f"{SUBMISSION}#SYSTEM")
    )


def _settings(**values: Any) -> CompletionSettings:
    return CompletionSettings(
        environment_name="example",
        status_table_name="t",
        challenge_config_parameter_prefix="/mm-processor/challenges",
        capacity_table_name="mm-example-capacity",
        capacity_parameter_name="/mm-processor/capacity",
        **values,
    )


def test_only_the_configured_clients_are_built() -> None:
    v6_only = completion_wiring.CompletionDependencies(_settings(review_api_url="https://api.topcoder-dev.com/v6"))
    client = v6_only.summations_api()
    assert isinstance(client, ReviewSummationsClient)
    assert client is v6_only.summations_api()
    with pytest.raises(ReporterUnavailableError, match="SUBMISSION_API_URL"):
        v6_only.review_api()

    v5_only = completion_wiring.CompletionDependencies(_settings(submission_api_url="https://api.topcoder-dev.com/v5"))
    with pytest.raises(ReporterUnavailableError, match="REVIEW_API_URL"):
        v5_only.summations_api()
