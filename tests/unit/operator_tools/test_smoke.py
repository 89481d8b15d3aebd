"""The smoke's synthetic submission against moto, with a stand-in for the pipeline that advances the status item.

The stand-in reads the message from the challenge queue the subscription delivered it to (so routing by the
filter policy is part of the test) and moves the item as the challenge processor and the completion function
would; the full path through the real functions is `tests/e2e/test_smoke_command.py`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from infrastructure.config import CONFIG_DIR, EnvironmentConfigError, load_environment, parse_environment
from infrastructure.wiring import WiringPlan
from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import V6_SUBMISSION_TOPIC, Platform, ScoringPhase, run_id
from mm_contracts.models.routed import RoutedSubmission
from operator_tools.smoke import (
    SmokeNotConfiguredError,
    SmokeOutcome,
    SmokeRun,
    publish_entry,
    routed_submission,
)
from router_lambda.publisher import OutboundMessage
from tests.unit.operator_tools.conftest import (
    IMAGE_DENOISE,
    ROUTE_PLANNER,
    V6_SMOKE_SUBMISSION,
    Deployed,
    raw_v6_environment,
)

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class PipelineStandIn:
    """Each `sleep` is one step of the pipeline: claim from the queue, launch, then the final state."""

    def __init__(self, deployed: Deployed, clock: FakeClock, final: tuple[SubmissionState, ReportStatus] | None):
        self.deployed = deployed
        self.clock = clock
        self.final = final
        self.store = StatusStore(deployed.plan.names.status_table, dynamodb_client=deployed.client("dynamodb"))
        self.routed: RoutedSubmission | None = None
        self.step = 0

    def _receive(self) -> None:
        queue = self.deployed.resources.challenges[ROUTE_PLANNER].queue_url
        messages = self.deployed.client("sqs").receive_message(QueueUrl=queue, MessageAttributeNames=["All"])
        (message,) = messages["Messages"]
        assert message["MessageAttributes"]["challengeId"]["StringValue"] == ROUTE_PLANNER
        self.routed = RoutedSubmission.model_validate_json(message["Body"])
        self.store.claim_launch(
            self.routed, phase=ScoringPhase.PROVISIONAL, scorer_type="route-planner", lease_seconds=60
        )

    def sleep(self, seconds: float) -> None:
        self.clock.now += seconds
        self.step += 1
        if self.step == 1:
            self._receive()
        elif self.step == 2 and self.routed is not None:
            self.store.mark_launched(
                run_id(self.routed.submission_id, ScoringPhase.PROVISIONAL),
                attempt=1,
                task_arn="arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcdef",
                cluster_arn=self.deployed.plan.config.ecs.cluster_arn,
                timeout_seconds=60,
            )
        elif self.step == 3 and self.routed is not None and self.final is not None:
            state, report = self.final
            _set_final(self.deployed, run_id(self.routed.submission_id, ScoringPhase.PROVISIONAL), state, report)


def _smoke(deployed: Deployed, final: tuple[SubmissionState, ReportStatus] | None) -> tuple[SmokeRun, PipelineStandIn]:
    clock = FakeClock()
    pipeline = PipelineStandIn(deployed, clock, final)
    run = SmokeRun(deployed.plan, deployed.clients, clock=clock, sleep=pipeline.sleep, now=lambda: NOW)
    return run, pipeline


def _item(deployed: Deployed) -> dict | None:
    smoke = deployed.plan.config.smoke
    assert smoke is not None
    return (
        deployed.client("dynamodb")
        .get_item(
            TableName=deployed.plan.names.status_table,
            Key={"runId": {"S": run_id(smoke.submission_id, ScoringPhase.PROVISIONAL)}},
        )
        .get("Item")
    )


def test_a_scored_submission_passes_and_its_status_item_is_deleted(deployed: Deployed) -> None:
    run, _ = _smoke(deployed, (SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED))
    result = run.run(poll_interval=5)
    assert result.outcome is SmokeOutcome.PASSED, result.detail
    assert result.states_seen == ["LAUNCHING", "LAUNCHED", "SUCCEEDED/NOT_REQUIRED"]
    assert result.elapsed_seconds == 15.0
    assert result.cleaned_up
    assert _item(deployed) is None
    # It went only to its own challenge's queue (the filter policy routed it)
    other = deployed.resources.challenges[IMAGE_DENOISE].queue_url
    assert "Messages" not in deployed.client("sqs").receive_message(QueueUrl=other)


def test_a_failed_scorer_fails_the_smoke_and_is_cleaned_up(deployed: Deployed) -> None:
    run, _ = _smoke(deployed, (SubmissionState.FAILED, ReportStatus.REPORTED))
    result = run.run(poll_interval=5)
    assert result.outcome is SmokeOutcome.FAILED
    assert "scorer exited 3" in result.detail
    assert result.cleaned_up


def test_a_rejected_report_fails_the_smoke(deployed: Deployed) -> None:
    run, _ = _smoke(deployed, (SubmissionState.SUCCEEDED, ReportStatus.REJECTED))
    assert run.run(poll_interval=5).outcome is SmokeOutcome.FAILED


def test_a_submission_still_in_flight_at_the_timeout_is_left_in_place(deployed: Deployed) -> None:
    run, _ = _smoke(deployed, None)  # never gets past LAUNCHED
    result = run.run(timeout_seconds=60, poll_interval=5)
    assert result.outcome is SmokeOutcome.TIMED_OUT
    assert result.state == "LAUNCHED"
    assert not result.cleaned_up
    assert _item(deployed) is not None
    # ... and the next smoke refuses while it is in flight, publishing nothing
    again, _ = _smoke(deployed, None)
    refused = again.run(timeout_seconds=60, poll_interval=5)
    assert refused.outcome is SmokeOutcome.REFUSED
    assert "still in flight" in refused.detail
    queue = deployed.resources.challenges[ROUTE_PLANNER].queue_url
    assert "Messages" not in deployed.client("sqs").receive_message(QueueUrl=queue)


def test_a_kept_finished_item_is_deleted_before_the_next_smoke(deployed: Deployed) -> None:
    first, _ = _smoke(deployed, (SubmissionState.SUCCEEDED, ReportStatus.REPORTED))
    kept = first.run(poll_interval=5, keep=True)
    assert kept.outcome is SmokeOutcome.PASSED
    assert not kept.cleaned_up
    assert _item(deployed) is not None
    second, _ = _smoke(deployed, (SubmissionState.SUCCEEDED, ReportStatus.REPORTED))
    result = second.run(poll_interval=5)
    assert result.outcome is SmokeOutcome.PASSED
    assert result.states_seen[0] == "LAUNCHING"  # a new launch, not the old item
    assert _item(deployed) is None


def test_the_smoke_message_is_the_routers_message() -> None:
    plan_config = load_environment("example")
    plan = WiringPlan(plan_config)
    assert plan_config.smoke is not None
    routed = routed_submission(plan, plan_config.smoke, NOW)
    router_entry = OutboundMessage(key=0, body=routed.to_json(), challenge_id=routed.challenge_id).entry()
    ours = publish_entry(routed)
    assert {k: v for k, v in ours.items() if k != "Id"} == {k: v for k, v in router_entry.items() if k != "Id"}
    assert RoutedSubmission.model_validate_json(ours["Message"]) == routed
    assert routed.correlation_id.startswith("smoke-example-")


def _raw_example() -> dict:
    return json.loads((CONFIG_DIR / "example.json").read_text())


def test_a_smoke_url_the_router_would_refuse_is_a_config_error() -> None:
    raw = _raw_example()
    raw["smoke"] = {**raw["smoke"], "url": "https://evil.example.com/x.zip"}
    with pytest.raises(EnvironmentConfigError, match="url_host_not_allowed"):
        parse_environment(raw)


@pytest.mark.parametrize(
    "challenge_id",
    [
        "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f603",  # closed: the router would not route it
        "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f6ff",  # not deployed (e.g. a CHALLENGE_IDS subset)
    ],
)
def test_a_smoke_challenge_that_is_not_deployed_and_active_cannot_run(deployed: Deployed, challenge_id: str) -> None:
    raw = _raw_example()
    raw["smoke"] = {**raw["smoke"], "challengeId": challenge_id}
    config = parse_environment(raw)  # the synth still works
    with pytest.raises(SmokeNotConfiguredError, match="active challenges"):
        SmokeRun(WiringPlan(config), deployed.clients)


def test_without_a_smoke_block_the_run_cannot_be_built(deployed: Deployed) -> None:
    raw = _raw_example()
    del raw["smoke"]
    with pytest.raises(SmokeNotConfiguredError, match="--health-only"):
        SmokeRun(WiringPlan(parse_environment(raw)), deployed.clients)


# ---------------------------------------------------------------------------------------------- v6: a run per phase
V6_PHASES = (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL)
Final = tuple[SubmissionState, ReportStatus]


class MultiRunStandIn:
    """The challenge processor and completion function of a v6 submission: each `sleep` is one step. Step 1
    claims every phase the challenge triggers, step 2 launches them, step 3 ends each phase given a final, step 4
    each phase given a later final."""

    def __init__(
        self,
        deployed: Deployed,
        clock: FakeClock,
        finals: dict[ScoringPhase, Final],
        later: dict[ScoringPhase, Final] | None = None,
    ) -> None:
        self.deployed = deployed
        self.clock = clock
        self.finals = finals
        self.later = later or {}
        self.store = StatusStore(deployed.plan.names.status_table, dynamodb_client=deployed.client("dynamodb"))
        self.routed: RoutedSubmission | None = None
        self.step = 0

    def sleep(self, seconds: float) -> None:
        self.clock.now += seconds
        self.step += 1
        if self.step == 1:
            queue = self.deployed.resources.challenges[ROUTE_PLANNER].queue_url
            (message,) = self.deployed.client("sqs").receive_message(QueueUrl=queue)["Messages"]
            self.routed = RoutedSubmission.model_validate_json(message["Body"])
            for phase in V6_PHASES:
                self.store.claim_launch(self.routed, phase=phase, scorer_type="route-planner", lease_seconds=60)
        elif self.step == 2 and self.routed is not None:
            for index, phase in enumerate(V6_PHASES):
                self.store.mark_launched(
                    run_id(self.routed.submission_id, phase),
                    attempt=1,
                    task_arn=f"arn:aws:ecs:us-east-1:123456789012:task/mm-scorers/0123456789abcde{index}",
                    cluster_arn=self.deployed.plan.config.ecs.cluster_arn,
                    timeout_seconds=60,
                )
        elif self.step in (3, 4) and self.routed is not None:
            for phase, (state, report) in (self.finals if self.step == 3 else self.later).items():
                _set_final(self.deployed, run_id(self.routed.submission_id, phase), state, report)


def _set_final(deployed: Deployed, key: str, state: SubmissionState, report: ReportStatus) -> None:
    deployed.client("dynamodb").update_item(
        TableName=deployed.plan.names.status_table,
        Key={"runId": {"S": key}},
        UpdateExpression="SET #state = :state, reportStatus = :report, reason = :reason",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={
            ":state": {"S": state.value},
            ":report": {"S": report.value},
            ":reason": {"S": "scorer exited 0" if state is SubmissionState.SUCCEEDED else "scorer exited 3"},
        },
    )


def _smoke_v6(
    deployed: Deployed, finals: dict[ScoringPhase, Final], later: dict[ScoringPhase, Final] | None = None
) -> tuple[SmokeRun, MultiRunStandIn]:
    clock = FakeClock()
    pipeline = MultiRunStandIn(deployed, clock, finals, later)
    return SmokeRun(deployed.plan, deployed.clients, clock=clock, sleep=pipeline.sleep, now=lambda: NOW), pipeline


def _v6_items(deployed: Deployed) -> dict[ScoringPhase, dict | None]:
    return {
        phase: deployed.client("dynamodb")
        .get_item(
            TableName=deployed.plan.names.status_table,
            Key={"runId": {"S": run_id(V6_SMOKE_SUBMISSION, phase)}},
        )
        .get("Item")
        for phase in V6_PHASES
    }


PASSED_BOTH: dict[ScoringPhase, Final] = {
    ScoringPhase.EXAMPLE: (SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED),
    ScoringPhase.PROVISIONAL: (SubmissionState.SUCCEEDED, ReportStatus.REPORTED),
}


def test_a_v6_smoke_follows_every_phase_of_the_submission_and_deletes_each_item(deployed_v6: Deployed) -> None:
    run, pipeline = _smoke_v6(deployed_v6, PASSED_BOTH)
    assert run.run_ids == (run_id(V6_SMOKE_SUBMISSION, "EXAMPLE"), run_id(V6_SMOKE_SUBMISSION, "PROVISIONAL"))
    result = run.run(poll_interval=5)
    assert result.outcome is SmokeOutcome.PASSED, result.detail
    assert result.platform == "v6"
    assert [(r.phase, r.outcome, r.states_seen) for r in result.runs] == [
        ("EXAMPLE", SmokeOutcome.PASSED, ["LAUNCHING", "LAUNCHED", "SUCCEEDED/NOT_REQUIRED"]),
        ("PROVISIONAL", SmokeOutcome.PASSED, ["LAUNCHING", "LAUNCHED", "SUCCEEDED/REPORTED"]),
    ]
    assert result.cleaned_up
    assert all(r.cleaned_up for r in result.runs)
    assert _v6_items(deployed_v6) == {ScoringPhase.EXAMPLE: None, ScoringPhase.PROVISIONAL: None}
    # The message was the v6 router's: platform v6, from the v6 topic, no phase (the processor picks them)
    assert pipeline.routed is not None
    assert pipeline.routed.platform is Platform.V6
    assert pipeline.routed.source.topic == V6_SUBMISSION_TOPIC
    assert pipeline.routed.phase is None
    assert pipeline.routed.submission_type is None
    assert result.to_dict()["runs"][1]["outcome"] == "passed"


def test_a_v6_smoke_passes_only_when_every_run_passed(deployed_v6: Deployed) -> None:
    finals = {**PASSED_BOTH, ScoringPhase.PROVISIONAL: (SubmissionState.FAILED, ReportStatus.REPORTED)}
    run, _ = _smoke_v6(deployed_v6, finals)
    result = run.run(poll_interval=5)
    assert result.outcome is SmokeOutcome.FAILED
    assert [r.outcome for r in result.runs] == [SmokeOutcome.PASSED, SmokeOutcome.FAILED]
    assert (result.state, result.reason) == ("FAILED", "scorer exited 3")  # the run that decided it
    assert "run PROVISIONAL ended FAILED" in result.detail
    assert result.cleaned_up  # both finished: both deleted


def test_a_v6_smoke_waits_for_the_last_run_to_settle(deployed_v6: Deployed) -> None:
    first = {ScoringPhase.EXAMPLE: PASSED_BOTH[ScoringPhase.EXAMPLE]}
    run, _ = _smoke_v6(deployed_v6, first, later={ScoringPhase.PROVISIONAL: PASSED_BOTH[ScoringPhase.PROVISIONAL]})
    result = run.run(poll_interval=5)
    assert result.outcome is SmokeOutcome.PASSED, result.detail
    assert result.elapsed_seconds == 20.0  # one poll after EXAMPLE settled, PROVISIONAL had not
    assert result.runs[1].states_seen == ["LAUNCHING", "LAUNCHED", "SUCCEEDED/REPORTED"]


def test_a_v6_run_still_in_flight_keeps_every_item_and_the_next_smoke_refuses(deployed_v6: Deployed) -> None:
    only_example = {ScoringPhase.EXAMPLE: PASSED_BOTH[ScoringPhase.EXAMPLE]}  # PROVISIONAL never ends
    run, _ = _smoke_v6(deployed_v6, only_example)
    result = run.run(timeout_seconds=60, poll_interval=5)
    assert result.outcome is SmokeOutcome.TIMED_OUT
    assert [r.outcome for r in result.runs] == [SmokeOutcome.PASSED, SmokeOutcome.TIMED_OUT]
    assert result.state == "LAUNCHED"
    assert not result.cleaned_up
    assert all(item is not None for item in _v6_items(deployed_v6).values())  # the finished one stays too
    # ... the next smoke refuses, naming the run in flight, and publishes nothing
    again, _ = _smoke_v6(deployed_v6, PASSED_BOTH)
    refused = again.run(timeout_seconds=60, poll_interval=5)
    assert refused.outcome is SmokeOutcome.REFUSED
    assert f"run {run_id(V6_SMOKE_SUBMISSION, 'PROVISIONAL')}" in refused.detail
    assert "still in flight" in refused.detail
    queue = deployed_v6.resources.challenges[ROUTE_PLANNER].queue_url
    assert "Messages" not in deployed_v6.client("sqs").receive_message(QueueUrl=queue)
    # ... and once that run has ended, the next smoke deletes both leftovers and runs both phases again
    _set_final(deployed_v6, run_id(V6_SMOKE_SUBMISSION, "PROVISIONAL"), SubmissionState.FAILED, ReportStatus.REPORTED)
    third, _ = _smoke_v6(deployed_v6, PASSED_BOTH)
    passed = third.run(poll_interval=5)
    assert passed.outcome is SmokeOutcome.PASSED, passed.detail
    assert all(r.states_seen[0] == "LAUNCHING" for r in passed.runs)  # new launches, not the old items


def test_a_v6_smoke_message_is_the_v6_routers_message(deployed_v6: Deployed) -> None:
    plan = deployed_v6.plan
    assert plan.config.smoke is not None
    routed = routed_submission(plan, plan.config.smoke, NOW)
    assert (routed.platform, routed.source.topic, routed.submission_id) == (
        Platform.V6,
        V6_SUBMISSION_TOPIC,
        V6_SMOKE_SUBMISSION,
    )
    entry = publish_entry(routed)
    assert entry["MessageAttributes"]["challengeId"]["StringValue"] == ROUTE_PLANNER
    assert RoutedSubmission.model_validate_json(entry["Message"]) == routed


def test_in_a_migrating_environment_the_v6_smoke_is_published_as_from_the_v6_topic() -> None:
    raw = raw_v6_environment()
    raw["platforms"] = ["v5", "v6"]
    raw["submissionApiUrl"] = "https://api.topcoder-dev.com/v5"
    for challenge in raw["challenges"]:
        challenge["platform"] = "v6"
    plan = WiringPlan(parse_environment(raw))
    assert plan.kafka_source().platform is Platform.V5  # the first source is v5's: not the smoke's
    assert plan.config.smoke is not None
    routed = routed_submission(plan, plan.config.smoke, NOW)
    assert (routed.platform, routed.source.topic) == (Platform.V6, V6_SUBMISSION_TOPIC)


def test_a_v6_smoke_needs_a_nanoid_submission_id() -> None:
    with pytest.raises(EnvironmentConfigError, match="14-character nanoid"):
        parse_environment(raw_v6_environment(submissionId="30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f699"))


def test_a_smoke_challenge_that_triggers_no_phase_cannot_run(deployed_v6: Deployed) -> None:
    raw = raw_v6_environment()
    route_planner = next(c for c in raw["challenges"] if c["challengeId"] == ROUTE_PLANNER)
    for phase in route_planner["phases"]:
        phase["onSubmission"] = False
    with pytest.raises(SmokeNotConfiguredError, match="no onSubmission phase"):
        SmokeRun(WiringPlan(parse_environment(raw)), deployed_v6.clients)
