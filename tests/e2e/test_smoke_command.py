"""`mm-processor smoke` end to end: the health checks, then the synthetic submission through the real functions.

The local pipeline runs the challenge processor, fake Fargate (a real scorer process), the completion function
and the Topcoder stand-in; the test plays only AWS's side of it (the event source mappings, the rule target,
the schedule), as `LocalPipeline.run` does, while the command publishes to SNS and polls the status table
through `--endpoint-url`. The router is not in this path: the smoke publishes as the router would (decision 083).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator

import pytest

from infrastructure.config import load_environment
from local_pipeline.cli import main
from local_pipeline.engine import LocalPipeline
from local_pipeline.scenario import Scenario

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


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    config = load_environment("example")
    assert config.smoke is not None
    with LocalPipeline(config, log_dir=tmp_path_factory.mktemp("smoke") / "logs") as running:
        assert running.resources is not None
        assert running.standin is not None
        _register_task_definitions(running)
        running.apply_scenario(Scenario())
        # The fixed test submission exists in the environment's Topcoder
        running.standin.add_submission(config.smoke.submission_id, config.smoke.challenge_id, config.smoke.member_id)
        for challenge in running.resources.challenges.values():
            running._thread(
                f"esm-{challenge.challenge_id[:8]}", functools.partial(running._poll_challenge_queue, challenge)
            )
        running._thread("completion-target", running._poll_completion_events)
        running._thread("sweeper-schedule", running._sweep_on_schedule)
        yield running


def _smoke(pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:
    argv = ["smoke", "--env", "example", "--endpoint-url", pipeline.aws.endpoint, "--json", *extra]
    status = main([*argv, "--poll-interval", "0.5", "--timeout", "25"])
    return status, json.loads(capsys.readouterr().out)


def test_the_smoke_passes_through_the_real_functions_and_cleans_up(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
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
    assert second["smoke"]["states_seen"][0].startswith("LAUNCH")


def test_the_promotion_gate_fails_on_a_dead_letter(pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]) -> None:
    assert pipeline.resources is not None
    sqs = pipeline.aws.client("sqs")
    sqs.send_message(QueueUrl=pipeline.resources.completion_dlq_url, MessageBody="{}")
    try:
        status, document = _smoke(pipeline, capsys, "--health-only")
        assert status == 1
        assert [c["name"] for c in document["health"]["checks"] if not c["ok"]] == ["dlq completion"]
    finally:
        sqs.purge_queue(QueueUrl=pipeline.resources.completion_dlq_url)
