"""`mm-processor smoke` end to end: the health checks, then the synthetic submission through the real functions.

The local pipeline runs the challenge processor, fake Fargate (a real scorer process), the completion function
and the Topcoder stand-in; the test plays only AWS's side of it (the event source mappings, the rule target,
the schedule), as `LocalPipeline.run` does, while the command publishes to SNS and polls the status table
through `--endpoint-url`. The router is not in this path: the smoke publishes as the router would (decision 083).

The in-process moto servers of one process share their backends (starting one resets all), so the v5 and the
v6 pipeline each live for one test class only and never at the same time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from infrastructure.config import EnvironmentConfig, load_environment, parse_environment
from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import Scenario
from operator_tools.cli import main
from tests.unit.operator_tools.conftest import raw_v6_environment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-smoke")]


def _register_task_definitions(pipeline: LocalPipeline) -> None:
    """The scorer task definitions are imported by the stacks (created outside them); register them in the
    emulator's ECS up to the revision each ARN names, so the health check can describe them."""
    ecs = pipeline.aws.client("ecs")
    for challenge in pipeline.config.challenges:
        for _ in range(int(challenge.task_definition_arn.rsplit(":", 1)[1])):
            ecs.register_task_definition(
                family=challenge.task_definition_family,
                containerDefinitions=[{"name": challenge.scorer_container_name, "image": "scorer:1", "memory": 512}],
            )


@contextmanager
def _serving(config: EnvironmentConfig, log_dir: Path) -> Iterator[LocalPipeline]:
    """The local pipeline with AWS's side played (event source mappings, the rule target, the schedule), the
    smoke's fixed test submission existing in the stand-in's Topcoder."""
    assert config.smoke is not None
    with LocalPipeline(config, log_dir=log_dir) as running:
        assert running.resources is not None
        assert running.standin is not None
        _register_task_definitions(running)
        running.apply_scenario(Scenario())
        running.standin.add_submission(config.smoke.submission_id, config.smoke.challenge_id, config.smoke.member_id)
        running.start_event_sources()
        yield running


@pytest.fixture(scope="class")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    with _serving(load_environment("example"), tmp_path_factory.mktemp("smoke") / "logs") as running:
        yield running


def _smoke(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str], *extra: str, env: str = "example"
) -> tuple[int, dict]:
    argv = ["smoke", "--env", env, "--endpoint-url", pipeline.aws.endpoint, "--json", *extra]
    status = main([*argv, "--poll-interval", "0.5", "--timeout", "25"])
    return status, json.loads(capsys.readouterr().out)


class TestExampleEnvironment:
    """v5: one run per submission (its challenge's single phase)."""

    def test_the_smoke_passes_through_the_real_functions_and_cleans_up(
        self, pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = pipeline.config
        assert config.smoke is not None
        assert pipeline.standin is not None
        status, document = _smoke(pipeline, capsys)
        assert document["health"]["ok"], [c for c in document["health"]["checks"] if not c["ok"]]
        smoke = document["smoke"]
        assert status == 0, smoke
        assert smoke["outcome"] == "passed"
        assert smoke["state"] == "SUCCEEDED"
        assert smoke["states_seen"][-1].startswith("SUCCEEDED/")
        assert smoke["cleaned_up"] is True
        # The scorer reported its score to the environment's Topcoder for the test submission
        assert any(str(r.get("submissionId")) == config.smoke.submission_id for r in pipeline.standin.reviews)
        # The status item is gone, so the same submission runs again: a second smoke passes too
        table = pipeline.plan.names.status_table
        key = {"runId": {"S": f"{config.smoke.submission_id}#PROVISIONAL"}}  # the run of its v5 challenge's phase
        assert "Item" not in pipeline.aws.client("dynamodb").get_item(TableName=table, Key=key)
        again, second = _smoke(pipeline, capsys)
        assert again == 0, second["smoke"]
        # It ran afresh: the first state the poll saw is one before its task (how far it got before the first poll
        # depends on timing: waiting for capacity, admitted, or launching), never the first smoke's final state.
        assert second["smoke"]["states_seen"][0].split("/")[0] in {"WAITING", "ADMITTED", "LAUNCHING", "LAUNCHED"}

    def test_the_promotion_gate_fails_on_a_dead_letter(
        self, pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert pipeline.resources is not None
        sqs = pipeline.aws.client("sqs")
        sqs.send_message(QueueUrl=pipeline.resources.completion_dlq_url, MessageBody="{}")
        try:
            status, document = _smoke(pipeline, capsys, "--health-only")
            assert status == 1
            assert [c["name"] for c in document["health"]["checks"] if not c["ok"]] == ["dlq completion"]
        finally:
            sqs.purge_queue(QueueUrl=pipeline.resources.completion_dlq_url)

    def test_the_health_check_fails_on_caps_that_admit_nothing(
        self, pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # Given an operator's put-parameter of the environment's caps with maxRunningTasks 0
        ssm = pipeline.aws.client("ssm")
        name = pipeline.plan.capacity_parameter()
        good = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        ssm.put_parameter(Name=name, Value=json.dumps({"maxRunningTasks": 0}), Type="String", Overwrite=True)
        try:
            # When the health check runs
            status, document = _smoke(pipeline, capsys, "--health-only")
            # Then it fails on the capacity check alone, saying why
            failing = [c for c in document["health"]["checks"] if not c["ok"]]
            assert status == 1
            assert [c["name"] for c in failing] == ["capacity"]
            assert "admits no run" in json.dumps(failing)
        finally:
            ssm.put_parameter(Name=name, Value=good, Type="String", Overwrite=True)


class TestV6Environment:
    """v6: a run per phase the challenge launches on a new submission."""

    def test_a_v6_smoke_passes_when_both_of_its_phases_ran_and_deletes_both_items(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # `dev` (v6: EXAMPLE and PROVISIONAL on every new submission) with a smoke block (dev.json has none yet)
        config = parse_environment(raw_v6_environment())
        assert config.smoke is not None
        monkeypatch.setattr("operator_tools.smoke_command.load_environment", lambda name: config)
        with _serving(config, tmp_path / "logs") as running:
            assert running.fargate is not None
            assert running.standin is not None
            status, document = _smoke(running, capsys, env="dev")
            smoke = document["smoke"]
            assert status == 0, smoke
            assert (smoke["outcome"], smoke["platform"]) == ("passed", "v6")
            assert [(r["phase"], r["outcome"], r["cleaned_up"]) for r in smoke["runs"]] == [
                ("EXAMPLE", "passed", True),
                ("PROVISIONAL", "passed", True),
            ]
            # One task per phase, through the real challenge processor, and each phase's scorer summation
            assert len(running.fargate.tasks_for(config.smoke.submission_id)) == 2
            for phase in ("EXAMPLE", "PROVISIONAL"):
                assert len(running.standin.summations_for(config.smoke.submission_id, phase)) == 1
            table = running.plan.names.status_table
            for phase in ("EXAMPLE", "PROVISIONAL"):
                key = {"runId": {"S": f"{config.smoke.submission_id}#{phase}"}}
                assert "Item" not in running.aws.client("dynamodb").get_item(TableName=table, Key=key)
