"""The fault matrix as figures (issue 7): every case of `tests/matrix/` run once in virtual time, with what survived.

Prints one line per case (kinds, virtual and wall time, problems) and the totals: kinds tried and survived, cases
that lost a record, duplicated a task or a report, or ended in the wrong final state. Prints, never asserts: the
test suite (`tests/matrix/test_matrix.py`) is what fails on a regression.
Run: `.venv/bin/python -m benchmarks.matrix_benchmark`.
"""

from __future__ import annotations

import os
import time
import warnings

# The functions' own logs would bury the table: quiet them before their loggers are built (at import).
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")

from moto import mock_aws

from fault_injection import FaultKind
from mm_adapters import aws as aws_clients
from tests.matrix.cases import CASES
from tests.matrix.test_matrix import case_problems, run_case


def _classify(problems: list[str]) -> set[str]:
    kinds = set()
    for problem in problems:
        if "record was lost" in problem:
            kinds.add("lost")
        elif "at most one may" in problem or "both won the launch claim" in problem:
            kinds.add("duplicate task")
        elif " reviews, expected" in problem and not problem.split(": ", 1)[-1].startswith("0 reviews"):
            kinds.add("duplicate or missing report")
        elif problem.split(": ", 1)[-1].startswith(("state ", "reason ", "report status")):
            kinds.add("wrong final state")
        else:
            kinds.add("other")
    return kinds


def main() -> None:
    warnings.simplefilter("ignore")
    survived_kinds: set[FaultKind] = set()
    failed_kinds: set[FaultKind] = set()
    totals = {"lost": 0, "duplicate task": 0, "duplicate or missing report": 0, "wrong final state": 0, "other": 0}
    survived_cases = 0
    began = time.monotonic()
    print(f"{'case':<72} {'virtual':>9} {'wall':>7}  result")
    for case in CASES:
        aws_clients.reset_clients()
        started = time.monotonic()
        with mock_aws():
            world = run_case(case)
            problems = case_problems(case, world)
        wall = time.monotonic() - started
        for kind in _classify(problems):
            totals[kind] += 1
        (failed_kinds if problems else survived_kinds).update(case.kinds)
        survived_cases += not problems
        result = "survived" if not problems else "FAILED: " + "; ".join(problems)[:200]
        print(f"{case.name[:72]:<72} {world.clock.elapsed:>8.0f}s {wall:>6.2f}s  {result}")
    aws_clients.reset_clients()
    tried = {kind for case in CASES for kind in case.kinds}
    print()
    print(f"cases: {len(CASES)}, survived: {survived_cases}")
    print(f"fault kinds tried: {len(tried)} of {len(FaultKind)}; survived in every case: {len(tried - failed_kinds)}")
    print(
        f"cases that lost a record: {totals['lost']}; duplicated a task: {totals['duplicate task']}; "
        f"duplicated or missed a report: {totals['duplicate or missing report']}; "
        f"ended in the wrong final state: {totals['wrong final state']}; other problems: {totals['other']}"
    )
    print(f"wall time: {time.monotonic() - began:.1f} s for {len(CASES)} cases")


if __name__ == "__main__":
    main()
