"""The published figures (`benchmarks/figures.py`, decision 117): from fixed files, the README's table is exact.

Tests never import benchmarks (import contract `tests-import-no-benchmarks`), so these drive the benchmarks' command
lines in a subprocess over files written here in the published format. No timing is measured or asserted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.bench.support import run_module, write_report


def _figure(key: str, label: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "label": label, "value": value, "unit": unit, **extra}


def fixed_reports(directory: Path) -> None:
    write_report(
        directory,
        "cold_start",
        "2026-12-02T03:00:00Z",
        [
            # 1.304 prints as 1.30: judged as printed, so it meets a goal of 1.3.
            _figure("cold_start.router", "router import", 652.0, "ms", floor=500.0, floor_label="import boto3",
                    goal_ratio=1.3),
            _figure("cold_start.completion", "completion import", 700.0, "ms", floor=500.0, goal_ratio=1.3,
                    ratio=99.0, met=True),  # a file's own ratio and met are recomputed, never trusted
        ],
    )  # fmt: skip
    write_report(
        directory,
        "aws_calls",
        "2026-12-02T03:10:00Z",
        [
            _figure("calls.per_run.ssm", "SSM calls per run", 0, "calls", floor=0, goal_ratio=1.0),
            _figure("calls.per_run.sns", "SNS publishes per run", 0.1, "calls", floor=0, goal_ratio=1.0),
            _figure("local_pipeline.seconds_1000", "1,000 submissions", 120, "s", floor=60, goal_ratio=1.0),
            _figure("local_pipeline.throughput", "throughput", 8.3, "submissions/s"),  # no floor: counted only
            # v6 repeats are named in one line under the table; a floor without a goal is counted only.
            _figure("calls.per_run.ssm.v6", "SSM calls per v6 run", 0.2, "calls", floor=0, goal_ratio=1.0),
            _figure("calls.per_run.sns.v6", "SNS publishes per v6 run", 0, "calls", floor=0, goal_ratio=1.0),
            _figure("cold_start.pydantic_floor", "pydantic floor", 560.0, "ms", floor=500.0),
        ],
    )  # fmt: skip
    write_report(
        directory,
        "cost_model",
        "2026-12-02T03:20:00Z",
        [
            _figure("cost.per_million.sqs", "SQS", 0.5, "USD"),  # a part: counted only
            _figure("cost.per_million.total", "total", 40.0, "USD"),
            _figure("cost.per_million.step_functions_alternative", "Step Functions", 80.0, "USD"),
        ],
    )
    # A later publication of a key replaces the earlier one.
    write_report(
        directory,
        "rerun",
        "2026-12-02T04:00:00Z",
        [
            _figure(
                "local_pipeline.seconds_1000",
                "1,000 submissions",
                45.5,
                "s",
                floor=60,
                goal_ratio=1.0,
                note="a | b",
            )
        ],
    )
    (directory / "not-figures.json").write_text('{"something": "else"}')


EXPECTED_MARKDOWN = """\
| figure | measured | floor | ratio | goal |
|---|---|---|---|---|
| router import (<code>cold_start.router</code>) | 652 ms | 500 ms (import boto3) | 1.30 | <= 1.3 (met) |
| completion import (<code>cold_start.completion</code>) | 700 ms | 500 ms | 1.40 | <= 1.3 (not met) |
| SSM calls per run (<code>calls.per_run.ssm</code>) | 0 calls | 0 calls | 1.00 | <= 1 (met) |
| SNS publishes per run (<code>calls.per_run.sns</code>) | 0.1 calls | 0 calls | above 0 | <= 1 (not met) |
| 1,000 submissions (<code>local_pipeline.seconds_1000</code>) | 45.5 s; a \\| b | 60 s | 0.76 | <= 1 (met) |
| total (<code>cost.per_million.total</code>) | 40 USD | - | - | - |
| Step Functions (<code>cost.per_million.step_functions_alternative</code>) | 80 USD | - | - | - |

Goals met: 4 of 7 figures with a goal.

v6 runs: 1 of 2 goal figures met; not met: <code>calls.per_run.ssm.v6</code> 0.2 calls (floor 0 calls).

Not in the table (no goal): <code>local_pipeline.*</code> 1, <code>cold_start.*</code> 1, <code>cost.*</code> 1; \
`python -m benchmarks.figures` prints them.

Measured with `make bench` on 2 CPUs, Python 3.11.7 (2026-12-02).
"""


def test_the_readme_table_from_fixed_figures_is_exact(tmp_path: Path) -> None:
    fixed_reports(tmp_path)

    result = run_module("benchmarks.figures", "--dir", str(tmp_path), "--markdown")

    assert result.stdout == EXPECTED_MARKDOWN
    assert "not-figures.json: not a published figures file" in result.stderr


def test_the_terminal_table_says_which_goals_are_not_met(tmp_path: Path) -> None:
    fixed_reports(tmp_path)

    lines = run_module("benchmarks.figures", "--dir", str(tmp_path)).stdout.splitlines()

    row = {line.split()[0]: line.split() for line in lines if line.startswith(("cold_start.", "calls."))}
    assert row["cold_start.router"][-1] == "yes"
    assert row["cold_start.completion"][-1] == "NO"
    assert row["calls.per_run.sns"][-5:] == ["above", "0", "<=", "1", "NO"]


README_BEFORE = """\
# Project

## Figures

Intro kept.

<!-- figures:begin -->
| old | table |
<!-- figures:end -->

### Long runs (hand-kept)

| benchmark | figure |
|---|---|
| fault matrix | 71 cases survived |
"""


def test_update_readme_rewrites_only_the_figures_block(tmp_path: Path) -> None:
    reports = tmp_path / "bench"
    reports.mkdir()
    fixed_reports(reports)
    readme = tmp_path / "README.md"
    readme.write_text(README_BEFORE)

    run_module("benchmarks.run_all", "--update-readme", "--readme", str(readme), "--reports-dir", str(reports))

    before, after = README_BEFORE.split("<!-- figures:begin -->"), readme.read_text().split("<!-- figures:begin -->")
    assert after[0] == before[0]
    block, rest = after[1].split("<!-- figures:end -->")
    assert block == "\n" + EXPECTED_MARKDOWN
    assert rest == before[1].split("<!-- figures:end -->")[1]  # the hand-kept long-run table stays


def test_update_readme_refuses_a_readme_without_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")

    result = run_module("benchmarks.run_all", "--update-readme", "--readme", str(readme), check=False)

    assert result.returncode != 0
    assert "no <!-- figures:begin -->" in result.stderr
    assert readme.read_text() == "# no block\n"
