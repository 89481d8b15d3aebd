"""Synth benchmark: resources per challenge, the largest stack's resource count, and synth time.

    .venv/bin/python -m benchmarks.synth_benchmark [--counts 1 50 200] [--checks]

Challenges are generated from the example environment with `config.parse_environment`. Prints figures,
never asserts. Each count is synthesized in the same process (jsii starts once; the first figure includes
its start-up). Without `--checks` cdk-nag is off, which is how the figures compare with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infrastructure.config import CONFIG_DIR, EnvironmentConfig, parse_environment
from infrastructure.packaging import BUILD_DIR


def generated_config(count: int) -> EnvironmentConfig:
    raw: dict[str, Any] = json.loads((CONFIG_DIR / "example.json").read_text())
    template = raw["challenges"][0]
    raw["challenges"] = [
        {**template, "challengeId": f"30a1c2d4-5b6e-4f70-8a91-{i:012x}", "name": f"Generated MM {i}"}
        for i in range(count)
    ]
    return parse_environment(raw, source=f"<{count} generated challenges>")


def synth_counts(config: EnvironmentConfig, checks: bool) -> tuple[float, dict[str, int]]:
    from infrastructure.app import build_app

    outdir = BUILD_DIR / f"cdk.out-bench-{len(config.challenges)}"
    shutil.rmtree(outdir, ignore_errors=True)
    try:
        started = time.perf_counter()
        build_app(config, outdir=str(outdir), checks=checks).synth()
        elapsed = time.perf_counter() - started
        counts = {
            path.name.removesuffix(".template.json"): len(json.loads(path.read_text())["Resources"])
            for path in outdir.glob("*.template.json")
        }
    finally:
        shutil.rmtree(outdir, ignore_errors=True)  # only the counts are needed; assemblies are ~100 MB
    return elapsed, counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--checks", action="store_true", help="run cdk-nag during synth as well")
    args = parser.parse_args(argv)
    rows = []
    for count in args.counts:
        config = generated_config(count)
        elapsed, counts = synth_counts(config, args.checks)
        core = next(v for k, v in counts.items() if k.endswith("-core"))
        shard_total = sum(v for k, v in counts.items() if not k.endswith("-core"))
        rows.append((count, len(counts), (shard_total) / count, max(counts.values()), elapsed, core))
    print(f"{'challenges':>10} {'stacks':>6} {'res/challenge':>13} {'largest stack':>13} {'core':>5} {'synth s':>8}")
    for count, stacks, per_challenge, largest, elapsed, core in rows:
        print(f"{count:>10} {stacks:>6} {per_challenge:>13.1f} {largest:>13} {core:>5} {elapsed:>8.1f}")
    print("res/challenge = shard-stack resources / challenges (includes each shard's layer and rows role)")


if __name__ == "__main__":
    main()
