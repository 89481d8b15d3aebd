"""Cold-start import time of each handler: a fresh interpreter per sample, like a new Lambda container.

Prints figures (median and max over N samples, and the heaviest imports from `-X importtime`); asserts nothing.
Run: `.venv/bin/python -m benchmarks.cold_start_benchmark [--samples N]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = {
    "router": "router_lambda.handler",
    "challenge-processor": "challenge_lambda.handler",
    "completion": "completion_lambda.handler",
    "timeout-sweeper": "sweeper_lambda.handler",
}
# Handlers read settings lazily, but Powertools wants a service name and region at import.
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"}


def _sample(module: str) -> float:
    code = f"import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True, timeout=60
    )
    return float(out.stdout.strip().splitlines()[-1])


def _heaviest(module: str, top: int = 5) -> list[tuple[int, str]]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows: list[tuple[int, str]] = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if not name.startswith(" "):  # top-level imports only (no indentation)
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"cold-start import time ({args.samples} fresh interpreters each, {sys.version.split()[0]})")
    print(f"{'function':<22}{'median ms':>12}{'max ms':>10}   heaviest top-level imports (cumulative ms)")
    started = time.perf_counter()
    for name, module in HANDLERS.items():
        try:
            samples = [_sample(module) * 1000 for _ in range(args.samples)]
            heavy = ", ".join(f"{mod} {us / 1000:.0f}" for us, mod in _heaviest(module, 3))
        except subprocess.CalledProcessError as error:
            print(f"{name:<22}{'import failed':>22}   {error.stderr.strip().splitlines()[-1:]}")
            continue
        print(f"{name:<22}{statistics.median(samples):>12.1f}{max(samples):>10.1f}   {heavy}")
    print(f"(took {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
