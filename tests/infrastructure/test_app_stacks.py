"""The app and its stacks as a whole (`app.py`, `stacks/pipeline.py`): cfn-lint, CloudFormation limits and
sharding, tags, outputs, and configuration errors failing the synth by name.

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from infrastructure.config import MAX_CHALLENGES_PER_STACK, parse_environment
from infrastructure.wiring import WiringPlan
from tests.infrastructure.templates import functions, resources
from tests.synth import Synthesized, synth

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]
REPO = Path(__file__).resolve().parents[2]
IAM_ROLE_INLINE_POLICY_LIMIT = 10_240  # characters, all inline policies of one role together


def test_cfn_lint_reports_no_errors_on_any_template(synthesized: Synthesized) -> None:
    files = sorted(str(p) for p in synthesized.assembly_dir.glob("*.template.json"))
    assert len(files) == len(synthesized.templates)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", "--", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], errors


def test_every_stack_stays_under_the_cloudformation_resource_limit(synthesized: Synthesized) -> None:
    for stack, template in synthesized.templates.items():
        assert len(template["Resources"]) < 500, stack


def test_two_hundred_challenges_shard_into_stacks_under_500_resources() -> None:
    # Given 200 challenges generated from the example, pinned so that shards are full (challengesPerStack at its
    # maximum), with a maxConcurrency the account's default concurrency can serve (200 x 4 <= 1000 - reserved)
    raw = json.loads((REPO / "infrastructure" / "config" / "example.json").read_text())
    template = raw["challenges"][0]
    raw["challenges"] = [
        {
            **template,
            "challengeId": f"30a1c2d4-5b6e-4f70-8a91-{i:012x}",
            "name": f"MM {i}",
            "maxConcurrency": 4,
            "shard": i // MAX_CHALLENGES_PER_STACK + 1,
        }
        for i in range(200)
    ]
    raw["challengesPerStack"] = MAX_CHALLENGES_PER_STACK
    config = parse_environment(raw)
    # When synthesized (without the checks: the example synth covers them; same constructs)
    result = synth(config, label="scale", checks=False)
    # Then every challenge has a processor, and no stack reaches 500 resources
    counts = {stack: len(t["Resources"]) for stack, t in result.templates.items()}
    assert len(counts) == 1 + -(-200 // MAX_CHALLENGES_PER_STACK)
    assert max(counts.values()) < 500, counts
    processors = [
        r
        for t in result.templates.values()
        for _, r in resources(t, "AWS::Lambda::Function")
        if "-ch-" in str(r["Properties"].get("FunctionName"))
    ]
    assert len(processors) == 200
    # and no role's inline policies (decision 048: every statement is inline) grow toward IAM's 10,240-character
    # limit for a role's inline policies with the number of challenges
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)
    inline = {
        (stack, logical_id): sum(
            len(json.dumps(p["PolicyDocument"], separators=(",", ":"))) for p in r["Properties"].get("Policies", [])
        )
        for stack, t in result.templates.items()
        for logical_id, r in resources(t, "AWS::IAM::Role")
    }
    assert max(inline.values()) < IAM_ROLE_INLINE_POLICY_LIMIT / 2, max(inline.items(), key=lambda kv: kv[1])


def test_every_taggable_resource_carries_project_and_environment(synthesized: Synthesized, plan: WiringPlan) -> None:
    for stack, template in synthesized.templates.items():
        for lid, resource in template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if isinstance(tags, list):
                pairs = {t["Key"]: t["Value"] for t in tags}
                assert pairs.get("Project") == "mm-processor", (stack, lid)
                assert pairs.get("Environment") == "example", (stack, lid)
    for challenge in plan.config.challenges:
        _, _, fn = functions(synthesized)[plan.names.challenge_function(challenge.challenge_id)]
        assert {"Key": "ChallengeId", "Value": challenge.challenge_id} in fn["Properties"]["Tags"]


def test_core_outputs_name_topic_queues_tables_and_dashboard(synthesized: Synthesized) -> None:
    outputs = synthesized.templates["mm-example-core"]["Outputs"]
    for name in ("SubmissionsTopicArn", "ChallengeTableName", "StatusTableName", "DashboardName", "DashboardUrl"):
        assert name in outputs
    shard_outputs = [o for s, t in synthesized.templates.items() if s != "mm-example-core" for o in t["Outputs"]]
    assert sum(name.startswith("Queue") for name in shard_outputs) == 3


def run_app(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="cdk.out-invalid-") as outdir:
        return subprocess.run(
            [sys.executable, "-m", "infrastructure.app"],
            cwd=REPO,
            env={**os.environ, "CDK_OUTDIR": outdir, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


def test_an_invalid_override_fails_synthesis_naming_the_setting() -> None:
    result = run_app({"MSK_CLUSTER_ARN": "not-an-arn", "CDK_CONTEXT_JSON": json.dumps({"env": "example"})})
    assert result.returncode == 1
    assert "kafka.clusterArn" in result.stderr


def test_an_unknown_environment_from_context_fails_naming_env() -> None:
    result = run_app({"CDK_CONTEXT_JSON": json.dumps({"env": "nope"})})
    assert result.returncode == 1
    assert "env: no configuration 'nope.json'" in result.stderr
