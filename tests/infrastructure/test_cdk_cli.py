"""The README's deploy path works through the pinned CDK CLI from npm (not only the in-process synth).

Runs `cdk synth` exactly as a platform engineer would (`npx cdk synth -c env=example`), offline, with no AWS
credentials, and checks the cloud assembly it writes; and that a bad environment fails naming the setting.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infrastructure.config import load_environment
from infrastructure.stacks.pipeline import core_stack_name, shard_stack_name
from infrastructure.wiring import WiringPlan

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"

# Its own group: a separate process, so it can run beside the in-process synth on the other worker.
pytestmark = pytest.mark.xdist_group("cdk-cli")


def _cdk(*args: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in {"AWS_DEFAULT_REGION", "AWS_REGION"}
    }
    env.update({"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", "CDK_DISABLE_VERSION_CHECK": "1"})
    return subprocess.run(
        [str(CDK), *args, "--output", str(outdir), "--no-notices"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_pinned_cli_synthesizes_every_stack_of_the_example_environment_offline(tmp_path: Path) -> None:
    assert CDK.exists(), "the pinned CDK CLI is installed by `make install` (npm ci)"
    plan = WiringPlan(load_environment("example"))

    result = _cdk("synth", "--quiet", "-c", "env=example", outdir=tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = {
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    }
    expected = {core_stack_name("example")} | {shard_stack_name("example", shard) for shard in plan.challenge_shards()}
    assert stacks == expected
    for stack in expected:
        template = json.loads((tmp_path / f"{stack}.template.json").read_text())
        assert template["Resources"], stack


def test_pinned_cli_reports_an_invalid_setting_by_name(tmp_path: Path) -> None:
    result = _cdk("synth", "--quiet", "-c", "env=example", "-c", "ECS_CLUSTER_ARN=not-an-arn", outdir=tmp_path)

    assert result.returncode != 0
    assert "ecs.clusterArn" in result.stderr
