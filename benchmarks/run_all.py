"""Run every benchmark script in benchmarks/ (`*_benchmark.py`, then `burst.py`, `capacity_burst.py` and
`fuzz.py`), one after the other, and print their figures.

Benchmarks print; nothing here asserts a figure. The exit status is non-zero only when a script could not run.
Run: `.venv/bin/python -m benchmarks.run_all` (or `make bench`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed: list[str] = []
    # The burst (issue 7: 2,000 submissions with faults; about 10 minutes) runs last.
    scripts = [*sorted(HERE.glob("*_benchmark.py")), HERE / "burst.py"]
    scripts.append(HERE / "capacity_burst.py")  # issue 11: >= 2,000 runs under caps 5/5/2 and 10, with faults
    scripts.append(HERE / "fuzz.py")  # >= 10,000 fuzz inputs per function, 15-25 minutes (decision 078)
    for script in scripts:
        module = f"benchmarks.{script.stem}"
        print(f"\n=== {module}", flush=True)
        began = time.monotonic()
        result = subprocess.run([sys.executable, "-m", module], cwd=HERE.parent, check=False)
        print(f"=== {module}: exit {result.returncode} in {time.monotonic() - began:.1f}s", flush=True)
        if result.returncode != 0:
            failed.append(module)
    if failed:
        print(f"\nbenchmarks that did not run: {', '.join(failed)}")
        return 1
    print(f"\n{len(scripts)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
