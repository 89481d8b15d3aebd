"""Running a benchmark's command line from a test (tests never import benchmarks: an import contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
MACHINE = {"cpu_count": 2, "python": "3.11.7", "platform": "Linux"}


def write_report(directory: Path, benchmark: str, published_at: str, figures: list[dict[str, Any]]) -> None:
    """A reports/bench/<benchmark>.json as `benchmarks.figures.publish` writes it (the format is the interface)."""
    report = {"benchmark": benchmark, "published_at": published_at, "machine": MACHINE, "figures": figures}
    (directory / f"{benchmark}.json").write_text(json.dumps(report))


def run_module(
    module: str, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> <args>` from the repository root; `check`: fail the test when it exits non-zero."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"{module} exited {result.returncode}:\n{result.stderr}"
    return result
