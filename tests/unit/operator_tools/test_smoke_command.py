"""`mm-processor smoke` through the CLI: exit status 0/1/2 and the JSON document scripts read."""

from __future__ import annotations

import json

import pytest

import operator_tools.smoke_command
from infrastructure.config import load_environment
from operator_tools.cli import main
from tests.unit.operator_tools.conftest import IMAGE_DENOISE, Deployed


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_health_only_on_a_healthy_environment_exits_0(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke", "--env", "example", "--health-only", "--json"]) == 0
    document = _json(capsys)
    assert document["ok"] is True
    assert document["health"]["ok"] is True
    assert "smoke" not in document


def test_health_only_with_a_dead_letter_exits_1_and_names_it(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.client("sqs").send_message(QueueUrl=deployed.resources.challenges[IMAGE_DENOISE].dlq_url, MessageBody="{}")
    assert main(["smoke", "--env", "example", "--health-only", "--json"]) == 1
    failed = [c["name"] for c in _json(capsys)["health"]["checks"] if not c["ok"]]
    assert failed == [f"dlq {IMAGE_DENOISE}"]


def test_an_unhealthy_environment_gets_no_synthetic_submission(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed.client("sqs").send_message(QueueUrl=deployed.resources.fanout_dlq_url, MessageBody="{}")
    assert main(["smoke", "--env", "example"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "the synthetic submission was not sent" in out
    queue = deployed.resources.challenges["30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"].queue_url
    assert "Messages" not in deployed.client("sqs").receive_message(QueueUrl=queue)


def test_an_environment_without_a_smoke_block_cannot_run_the_submission(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `dev` without its smoke block; refused before any AWS call (there is no moto here)
    without_smoke = load_environment("dev").model_copy(update={"smoke": None})
    monkeypatch.setattr(operator_tools.smoke_command, "load_environment", lambda *_args, **_kwargs: without_smoke)
    assert main(["smoke", "--env", "dev", "--json"]) == 2
    assert "no `smoke` block" in _json(capsys)["summary"]


def test_an_unknown_environment_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke", "--env", "nowhere"]) == 2
    assert "could not run" in capsys.readouterr().out


def test_human_output_prints_details_verbatim(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich folds long values at the default 80 columns
    assert main(["smoke", "--env", "example", "--health-only"]) == 0
    out = capsys.readouterr().out
    # `[mm-processor example]` looks like rich markup: it must be printed, not swallowed
    assert "[mm-processor example]" in out
    assert "healthy" in out
