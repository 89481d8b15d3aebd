"""cdk-nag on the synthesized example: no unacknowledged finding, each acknowledgement scoped and
reasoned (`mm_constructs/nag.py`).

One synth per session (`tests.synth.synth_example`, fixtures in conftest.py); every test here runs on one
xdist worker.
"""

from __future__ import annotations

import json

import pytest

from infrastructure.stacks.pipeline import shard_stack_name
from infrastructure.wiring import WiringPlan
from tests.synth import Synthesized

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]


def test_example_synthesizes_offline_with_zero_unacknowledged_nag_findings(
    synthesized: Synthesized, plan: WiringPlan
) -> None:
    # Given the example app synthesized with AwsSolutions + Serverless checks (a finding fails synth)
    report = json.loads((synthesized.assembly_dir / "validation-report.json").read_text())
    # Then no plugin reported anything, and there is one core stack plus one per non-empty shard
    assert report["pluginReports"] == []
    shards = [shard_stack_name("example", shard) for shard in plan.challenge_shards()]
    assert sorted(synthesized.templates) == sorted(["mm-example-core", *shards])


def test_nag_acknowledgements_are_scoped_and_reasoned(synthesized: Synthesized) -> None:
    found: list[tuple[str, str, str]] = []
    for metadata_file in synthesized.assembly_dir.glob("*.metadata.json"):
        for path, entries in json.loads(metadata_file.read_text()).items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    found.extend((path, rule, reason) for rule, reason in entry["data"].items())
    assert len(found) > 20
    for path, rule, reason in found:
        # on a construct below the stack, never the whole stack
        assert path.count("/") >= 2, (path, rule)
        # IAM wildcard / managed-policy findings only ever acknowledged one finding at a time
        if "IAM5" in rule or "IAM4" in rule:
            assert rule.endswith("]"), (path, rule)
        assert len(reason) >= 20, (path, rule)
