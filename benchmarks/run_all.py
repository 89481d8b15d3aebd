"""Run the benchmarks one after the other, each in its own interpreter, then print every published figure.

    .venv/bin/python -m benchmarks.run_all                    # make bench: the issue's figures, a few minutes
    .venv/bin/python -m benchmarks.run_all --long             # make bench-long: matrix, burst, capacity burst, fuzz
    .venv/bin/python -m benchmarks.run_all --update-readme    # rewrite the README's figures block from reports/bench

`make bench` runs the short ones in the issue's order: cold start, router CPU, AWS calls per run, the local
pipeline's 1,000 submissions, resources per challenge, and the cost model last (it reads the others' figures);
then the summary: each figure beside its floor, the ratio and the goal. The long runs (10-30 minutes each) are
`make bench-long`. Benchmarks print; nothing here asserts a figure. The exit status is non-zero only when a script
could not run (missing, or it exited non-zero).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.figures import (
    REPORTS_DIR_VARIABLE,
    PublishedReport,
    load_reports,
    render_markdown,
    render_table,
    reports_dir,
)

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
README_BEGIN = "<!-- figures:begin -->"
README_END = "<!-- figures:end -->"

# The figures, in its order; the cost model last because it reads what the others published.
SHORT = [
    "cold_start_benchmark",
    "router_cpu_benchmark",
    "aws_calls_benchmark",
    "local_pipeline_benchmark",
    "synth_benchmark",
    "cost_model",
]
# 10-30 minutes each: the fault matrix, the 2,000-submission burst, the capacity burst, >= 10,000 fuzz inputs.
LONG = ["matrix_benchmark", "burst", "capacity_burst", "fuzz"]


def run_scripts(names: list[str], directory: Path | None = None) -> list[str]:
    """Run each `benchmarks.<name>` in a subprocess (publishing into `directory`); those that could not run."""
    env = {**os.environ, REPORTS_DIR_VARIABLE: str(directory.resolve())} if directory else None
    failed: list[str] = []
    for name in names:
        module = f"benchmarks.{name}"
        print(f"\n=== {module}", flush=True)
        if not (HERE / f"{name}.py").is_file():
            print(f"=== {module}: missing", flush=True)
            failed.append(module)
            continue
        began = time.monotonic()
        result = subprocess.run([sys.executable, "-m", module], cwd=HERE.parent, env=env, check=False)
        print(f"=== {module}: exit {result.returncode} in {time.monotonic() - began:.1f}s", flush=True)
        if result.returncode != 0:
            failed.append(module)
    return failed


def in_bench_order(reports: list[PublishedReport]) -> list[PublishedReport]:
    """The reports in `make bench`'s order (a report is named by its script: "synth" for synth_benchmark), then
    the others; oldest first within one name."""

    def position(report: PublishedReport) -> int:
        names = [*SHORT, *LONG]
        return next((i for i, name in enumerate(names) if name.startswith(report.benchmark)), len(names))

    return sorted(reports, key=lambda report: (position(report), report.published_at))


def summary(reports: list[PublishedReport], since: datetime.datetime | None = None) -> str:
    """Every published figure, by benchmark; a report older than `since` is marked as from an earlier run."""
    sections = []
    for report in reports:
        stale = since is not None and report.published_at < since
        when = f"{report.published_at.isoformat()}{', from an earlier run' if stale else ''}"
        sections.append(f"{report.benchmark} ({report.machine.describe()}, {when})\n{render_table(report.figures)}")
    if not sections:
        return "no published figures"
    figures = [figure for report in reports for figure in report.figures]
    judged = [figure for figure in figures if figure.met is not None]
    missed = [figure.key for figure in judged if not figure.met]
    tally = f"{len(figures)} figures, {len(judged)} with a goal: {len(judged) - len(missed)} met"
    return "\n\n".join([*sections, tally + (f"; not met: {', '.join(missed)}" if missed else "")])


def replace_block(text: str, block: str) -> str:
    """`text` with what lies between the figures markers replaced by `block`; a README without them is refused."""
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} block")
    return f"{text[: begin + len(README_BEGIN)]}\n{block}\n{text[end:]}"


def update_readme(readme: Path, directory: Path | None) -> None:
    reports = in_bench_order(load_reports(directory))
    readme.write_text(replace_block(readme.read_text(), render_markdown(reports)))
    figures = sum(len(report.figures) for report in reports)
    print(f"{readme}: figures block rewritten from {len(reports)} reports ({figures} figures)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", action="store_true", help="run the long benchmarks instead (make bench-long)")
    parser.add_argument("--update-readme", action="store_true", help="only rewrite the README's figures block")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--reports-dir", type=Path, default=None, help="the published figures (reports/bench)")
    args = parser.parse_args(argv)
    if args.update_readme:
        update_readme(args.readme, args.reports_dir)
        return 0
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    names = LONG if args.long else SHORT
    failed = run_scripts(names, args.reports_dir)
    print(f"\n=== summary: every figure published in {args.reports_dir or reports_dir()}\n")
    print(summary(in_bench_order(load_reports(args.reports_dir)), since=started))
    if failed:
        print(f"\nbenchmarks that did not run: {', '.join(failed)}")
        return 1
    print(f"\n{len(names)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
