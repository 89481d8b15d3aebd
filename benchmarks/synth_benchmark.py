"""Synth benchmark: resources per challenge, the largest stack, the largest template's size, and synth time.

    .venv/bin/python -m benchmarks.synth_benchmark [--counts 1 200] [--checks]

Challenges are generated from the example environment with `config.parse_environment` and hashed into shards
as in production (decision 050). A further run pins `MAX_CHALLENGES_PER_STACK` challenges to one shard (with
`challengesPerStack` raised to that) to show the largest stack the config allows. Resources per challenge are
measured from the synthesized shard stacks (shard resources = fixed + per challenge x challenges), never
counted by hand, and listed by resource type. Publishes `resources.per_challenge` (floor: the issue's bound of 12)
and `resources.per_challenge_structural` (floor: the resources a challenge cannot share, `STRUCTURAL` below;
decision 117). Prints figures, never asserts. All runs share one process (jsii starts once; the first figure
includes its start-up). Without `--checks` cdk-nag is off, which is how the figures compare with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from benchmarks.figures import Figure, publish
from infrastructure.config import CONFIG_DIR, MAX_CHALLENGES_PER_STACK, EnvironmentConfig, parse_environment
from infrastructure.packaging import BUILD_DIR

ISSUE_BOUND_PER_CHALLENGE = 12  # issue 13: "Resources per challenge no more than 12"
# What one challenge cannot share with another (decision 117): its own queue (isolation and the mapping's
# maxConcurrency), the subscription carrying its filter policy, the mapping, a function and role scoped to its task
# definition and roles, that function's log group, its runtime config parameter, its DLQ and the DLQ's alarm.
# The rest can fold: the queue's and the DLQ's policies into one AWS::SQS::QueuePolicy (it takes a list of queues),
# the table-rows custom resource into one per shard.
STRUCTURAL: Counter[str] = Counter(
    {
        "AWS::SQS::Queue": 2,
        "AWS::SNS::Subscription": 1,
        "AWS::Lambda::EventSourceMapping": 1,
        "AWS::Lambda::Function": 1,
        "AWS::IAM::Role": 1,
        "AWS::Logs::LogGroup": 1,
        "AWS::SSM::Parameter": 1,
        "AWS::CloudWatch::Alarm": 1,
    }
)

STACK_RESOURCE_LIMIT = 500  # CloudFormation resources per stack
TEMPLATE_S3_LIMIT_BYTES = 1_048_576  # a template uploaded to S3 (how CDK deploys)
TEMPLATE_DIRECT_LIMIT_BYTES = 51_200  # a template passed in the request body


@dataclass(frozen=True)
class Run:
    label: str
    challenges: int
    seconds: float
    resources: dict[str, int]  # stack -> resources
    template_bytes: dict[str, int]  # stack -> template size
    shard_sizes: dict[str, int]  # shard stack -> challenges in it
    shard_types: dict[str, Counter[str]]  # shard stack -> resources by type


def generated_config(count: int, *, pin_to_shard: int | None = None) -> EnvironmentConfig:
    raw: dict[str, Any] = json.loads((CONFIG_DIR / "example.json").read_text())
    template = raw["challenges"][0]
    pin = {"shard": pin_to_shard} if pin_to_shard is not None else {}
    # The lowest queue concurrency, so 200 challenges fit the account's concurrency (config validates the sum).
    template = {**template, "maxConcurrency": 2}
    raw["challenges"] = [
        {**template, "challengeId": f"30a1c2d4-5b6e-4f70-8a91-{i:012x}", "name": f"Generated MM {i}", **pin}
        for i in range(count)
    ]
    if pin_to_shard is not None:
        raw["challengesPerStack"] = count
    return parse_environment(raw, source=f"<{count} generated challenges>")


def synthesize(label: str, config: EnvironmentConfig, checks: bool) -> Run:
    from infrastructure.app import build_app

    outdir = BUILD_DIR / f"cdk.out-bench-{label}"
    shutil.rmtree(outdir, ignore_errors=True)
    try:
        started = time.perf_counter()
        build_app(config, outdir=str(outdir), checks=checks).synth()
        elapsed = time.perf_counter() - started
        resources, sizes, members, types = {}, {}, {}, {}
        for path in outdir.glob("*.template.json"):
            stack = path.name.removesuffix(".template.json")
            template = json.loads(path.read_text())
            resources[stack] = len(template["Resources"])
            sizes[stack] = path.stat().st_size
            if not stack.endswith("-core"):
                types[stack] = Counter(r["Type"] for r in template["Resources"].values())
                members[stack] = types[stack]["AWS::Lambda::EventSourceMapping"]
    finally:
        shutil.rmtree(outdir, ignore_errors=True)  # only the figures are needed; assemblies are ~100 MB
    return Run(label, len(config.challenges), elapsed, resources, sizes, members, types)


def per_challenge(runs: list[Run]) -> tuple[float, float] | None:
    """(resources per challenge, fixed resources per shard stack) from two shards holding different counts."""
    points = {(run.shard_sizes[s], run.resources[s]) for run in runs for s in run.shard_sizes}
    if len({n for n, _ in points}) < 2:
        return None
    (n1, r1), (n2, r2) = min(points), max(points)
    slope = (r2 - r1) / (n2 - n1)
    return slope, r1 - slope * n1


def per_challenge_by_type(runs: list[Run]) -> dict[str, float]:
    """Resources one more challenge adds, by type: the difference between the smallest and the largest shard."""
    shards = [(run.shard_sizes[s], run.shard_types[s]) for run in runs for s in run.shard_sizes]
    (n1, small), (n2, large) = min(shards, key=lambda x: x[0]), max(shards, key=lambda x: x[0])
    if n1 == n2:
        return {}
    return {kind: (large[kind] - small[kind]) / (n2 - n1) for kind in sorted(large) if large[kind] != small[kind]}


def resource_figures(slope: float, by_type: dict[str, float], context: str = "") -> list[Figure]:
    listed = ", ".join(f"{kind.removeprefix('AWS::')} {count:g}" for kind, count in by_type.items())
    listed = f"{listed}; {context}" if context else listed
    foldable = {kind: count - STRUCTURAL[kind] for kind, count in by_type.items() if count > STRUCTURAL[kind]}
    folds = ", ".join(f"{kind.removeprefix('AWS::')} {count:g}" for kind, count in foldable.items()) or "none"
    return [
        Figure(
            "resources.per_challenge",
            "CloudFormation resources one more challenge adds",
            slope,
            "resources",
            floor=ISSUE_BOUND_PER_CHALLENGE,
            floor_label="the issue's bound",
            goal_ratio=1.0,
            note=listed,
        ),
        Figure(
            "resources.per_challenge_structural",
            "resources per challenge beside those a challenge cannot share",
            slope,
            "resources",
            floor=sum(STRUCTURAL.values()),
            floor_label="own queue, DLQ, subscription, mapping, function, role, log group, parameter, DLQ alarm",
            note=f"foldable: {folds}",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 200])
    parser.add_argument("--checks", action="store_true", help="run cdk-nag during synth as well")
    args = parser.parse_args(argv)
    runs = [synthesize(str(count), generated_config(count), args.checks) for count in args.counts]
    full = synthesize("full-shard", generated_config(MAX_CHALLENGES_PER_STACK, pin_to_shard=1), args.checks)
    print(
        f"{'run':>10} {'challenges':>10} {'stacks':>6} {'largest stack':>13} {'core':>5} "
        f"{'largest template B':>18} {'synth s':>8}"
    )
    for run in (*runs, full):
        core = next(v for k, v in run.resources.items() if k.endswith("-core"))
        print(
            f"{run.label:>10} {run.challenges:>10} {len(run.resources):>6} {max(run.resources.values()):>13} "
            f"{core:>5} {max(run.template_bytes.values()):>18,} {run.seconds:>8.1f}"
        )
    fit = per_challenge([*runs, full])
    figures: list[Figure] = []
    if fit is not None:
        slope, fixed = fit
        by_type = per_challenge_by_type([*runs, full])
        print(f"resources per challenge: {slope:g} (plus {fixed:g} fixed per shard stack)")
        for kind, count in by_type.items():
            print(f"  {kind:<36}{count:>5g}{'' if count <= STRUCTURAL[kind] else '   (foldable)'}")
        full_stack = max(full.resources.values())
        biggest_template = max(max(run.template_bytes.values()) for run in (*runs, full))
        context = (
            f"plus {fixed:g} fixed per shard stack; a full shard ({MAX_CHALLENGES_PER_STACK}): {full_stack} of "
            f"CloudFormation's {STACK_RESOURCE_LIMIT}; largest template "
            f"{biggest_template / TEMPLATE_S3_LIMIT_BYTES:.0%} of 1 MB"
        )
        figures = resource_figures(slope, by_type, context)
    largest = max(full.resources.values())
    print(
        f"largest stack at challengesPerStack={MAX_CHALLENGES_PER_STACK} (the maximum allowed): {largest} resources "
        f"(CloudFormation limit {STACK_RESOURCE_LIMIT})"
    )
    biggest = max(max(run.template_bytes.values()) for run in (*runs, full))
    print(
        f"largest template: {biggest:,} bytes = {biggest / TEMPLATE_S3_LIMIT_BYTES:.0%} of the "
        f"{TEMPLATE_S3_LIMIT_BYTES:,}-byte limit for S3-uploaded templates (CDK uploads through S3; "
        f"{TEMPLATE_DIRECT_LIMIT_BYTES:,} bytes would apply only to a template sent in the request)"
    )
    if figures:
        publish("synth", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
