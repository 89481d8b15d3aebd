"""The figures every benchmark publishes: one `Figure` per measured number, beside its floor and the issue's goal.

A benchmark builds its figures and calls `publish(benchmark, figures)`: the table is printed (figure | value |
floor | ratio | goal | met) and written to `reports/bench/<benchmark>.json` with the machine and the time.
`load_published()` reads every published file back (the cost model and `run_all`'s summary use it).
The ratio is value / floor: how far a figure is from the least it could be; `met` is ratio <= goal.
Nothing here asserts a figure: a goal not met is printed, never raised (benchmarks measure, tests assert).

    .venv/bin/python -m benchmarks.figures [--dir DIR] [--markdown]   # the published figures, as a table

`MM_BENCH_REPORTS_DIR` points publish and load at another directory (the tests use a temporary one).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

ROOT = Path(__file__).resolve().parent.parent
REPORTS_DIR_VARIABLE = "MM_BENCH_REPORTS_DIR"
# A goal is judged on the ratio as printed (2 decimals), so a table never shows "1.30 | <= 1.3 | NO".
RATIO_DECIMALS = 2

FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


class Figure(BaseModel):
    """One measured number: the value, the least it could be (the floor) and the issue's bound on value / floor."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")  # dotted and stable: "cold_start.router"
    label: str = Field(min_length=1)
    value: FiniteNumber
    unit: str
    floor: FiniteNumber | None = None
    floor_label: str = ""  # what the floor is: "import boto3 in the same run", "the bound"
    goal_ratio: FiniteNumber | None = Field(default=None, gt=0)
    note: str = ""

    def __init__(
        self,
        key: str,
        label: str,
        value: float,
        unit: str,
        floor: float | None = None,
        floor_label: str = "",
        goal_ratio: float | None = None,
        note: str = "",
        *,
        ratio: object = None,
        met: object = None,
    ) -> None:
        # Positional like a plain constructor: Figure(key, label, value, unit, ...). Validation calls this too, with
        # a published file's fields, so `ratio` and `met` (computed, written beside the others) are taken and dropped.
        del ratio, met
        super().__init__(
            key=key,
            label=label,
            value=value,
            unit=unit,
            floor=floor,
            floor_label=floor_label,
            goal_ratio=goal_ratio,
            note=note,
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float | None:
        """value / floor; None without a floor, or with a floor of 0 and a value above it (no finite ratio)."""
        if self.floor is None:
            return None
        if self.floor == 0:
            return 1.0 if self.value == 0 else None
        return self.value / self.floor

    @computed_field  # type: ignore[prop-decorator]
    @property
    def met(self) -> bool | None:
        """ratio (to RATIO_DECIMALS) <= goal; None when there is no goal or no floor to compare with."""
        if self.goal_ratio is None or self.floor is None:
            return None
        if self.ratio is None:  # floor 0, value above it
            return False
        return round(self.ratio, RATIO_DECIMALS) <= self.goal_ratio


class Machine(BaseModel):
    model_config = ConfigDict(frozen=True)

    cpu_count: int
    python: str
    platform: str

    @classmethod
    def this_one(cls) -> Machine:
        return cls(cpu_count=os.cpu_count() or 1, python=platform.python_version(), platform=platform.platform())

    def describe(self) -> str:
        return f"{self.cpu_count} CPUs, Python {self.python}"


class PublishedReport(BaseModel):
    """The contents of one reports/bench/<benchmark>.json."""

    model_config = ConfigDict(frozen=True)

    benchmark: str
    published_at: datetime.datetime
    machine: Machine
    figures: list[Figure]


def reports_dir() -> Path:
    return Path(os.environ.get(REPORTS_DIR_VARIABLE) or ROOT / "reports" / "bench")


def publish(benchmark: str, figures: Sequence[Figure], *, directory: Path | None = None) -> Path:
    """Print the figures as a table and write them to <directory>/<benchmark>.json; returns the file's path."""
    keys = [figure.key for figure in figures]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"{benchmark}: figure keys published twice: {', '.join(duplicates)}")
    report = PublishedReport(
        benchmark=benchmark,
        published_at=datetime.datetime.now(datetime.UTC).replace(microsecond=0),
        machine=Machine.this_one(),
        figures=list(figures),
    )
    print(f"\nfigures: {benchmark} ({report.machine.describe()})")
    print(render_table(report.figures))
    target = (directory or reports_dir()) / f"{benchmark}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report.model_dump_json(indent=2) + "\n")
    print(f"(written to {target})")
    return target


def load_reports(directory: Path | None = None) -> list[PublishedReport]:
    """Every published report in the directory, oldest first; a file that is not one is named on stderr, skipped."""
    reports: list[PublishedReport] = []
    for path in sorted((directory or reports_dir()).glob("*.json")):
        try:
            reports.append(PublishedReport.model_validate_json(path.read_text()))
        except (OSError, ValidationError) as error:
            print(f"skipped {path}: not a published figures file ({type(error).__name__})", file=sys.stderr)
    return sorted(reports, key=lambda report: (report.published_at, report.benchmark))


def load_published(directory: Path | None = None) -> dict[str, Figure]:
    """Every published figure by key; when two files publish one key, the later publication wins."""
    return {figure.key: figure for report in load_reports(directory) for figure in report.figures}


# Rendering -------------------------------------------------------------------------------------------------------


def format_number(value: float) -> str:
    """Few digits, scaled to the size: 12,345 | 615 | 61.5 | 6.15 | 0.0615 (a whole number: no decimals)."""
    magnitude = abs(value)
    if value == int(value) and magnitude < 1e15:  # counts print as counts: 12, not 12.0
        return f"{int(value):,}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _quantity(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{format_number(value)} {unit}".strip()


def _ratio(figure: Figure) -> str:
    if figure.floor is None:
        return "-"
    # A floor of 0 with a value above it has no finite ratio: "above 0" says what the figure misses by.
    return "above 0" if figure.ratio is None else f"{figure.ratio:.{RATIO_DECIMALS}f}"


def _goal(figure: Figure) -> str:
    return "-" if figure.goal_ratio is None else f"<= {figure.goal_ratio:g}"


def _met(figure: Figure) -> str:
    return {None: "-", True: "yes", False: "NO"}[figure.met]


def render_table(figures: Iterable[Figure]) -> str:
    """A fixed-width table for the terminal, then one line per figure with a floor label or a note."""
    rows = [("figure", "value", "floor", "ratio", "goal", "met")]
    notes: list[str] = []
    for figure in figures:
        rows.append(
            (
                figure.key,
                _quantity(figure.value, figure.unit),
                _quantity(figure.floor, figure.unit),
                _ratio(figure),
                _goal(figure),
                _met(figure),
            )
        )
        detail = "; ".join(
            part for part in (figure.label, figure.floor_label and f"floor: {figure.floor_label}", figure.note) if part
        )
        notes.append(f"  {figure.key}: {detail}")
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([*lines, *notes])


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# The cost model's answer beside its alternative; its parts are printed by `python -m benchmarks.figures`.
README_COSTS = ("cost.per_million.total", "cost.per_million.step_functions_alternative")
# Figures measured again for v6 runs end in this; the README names them in one line under the table.
V6_SUFFIX = ".v6"


def in_readme(figure: Figure) -> bool:
    """The README's table holds what the issue judges (a figure with a goal, v5) and the cost beside its alternative;
    the rest (floors without a goal, the cost model's inputs and parts) is counted under it."""
    if figure.key in README_COSTS:
        return True
    return figure.goal_ratio is not None and not figure.key.endswith(V6_SUFFIX)


def _v6_line(figures: Sequence[Figure]) -> str | None:
    """One line for the v6 repeats of goal figures: how many meet their goal, and each one that does not."""
    judged = [figure for figure in figures if figure.key.endswith(V6_SUFFIX) and figure.met is not None]
    if not judged:
        return None
    missed = [
        f"<code>{figure.key}</code> {_quantity(figure.value, figure.unit)}"
        f" (floor {_quantity(figure.floor, figure.unit)})"
        for figure in judged
        if not figure.met
    ]
    line = f"v6 runs: {sum(1 for figure in judged if figure.met)} of {len(judged)} goal figures met"
    return line + (f"; not met: {', '.join(missed)}." if missed else ".")


def _markdown_row(figure: Figure) -> str:
    floor = _quantity(figure.floor, figure.unit)
    if figure.floor is not None and figure.floor_label:
        floor = f"{floor} ({figure.floor_label})"
    goal = _goal(figure)
    if figure.met is not None:
        goal = f"{goal} ({'met' if figure.met else 'not met'})"
    measured = _quantity(figure.value, figure.unit)
    if figure.note:
        measured = f"{measured}; {figure.note}"
    # <code>, not backticks: a key is not a module path (the docs test checks backticked dotted names as modules).
    cells = (f"{figure.label} (<code>{figure.key}</code>)", measured, floor, _ratio(figure), goal)
    return "| " + " | ".join(_markdown_cell(cell) for cell in cells) + " |"


def render_markdown(reports: Sequence[PublishedReport]) -> str:
    """The README's figures table: one row per figure `in_readme` (later publications of a key win), a line
    counting the others by their first key part, then where they were measured."""
    latest = {figure.key: (figure, report) for report in reports for figure in report.figures}
    lines = ["| figure | measured | floor | ratio | goal |", "|---|---|---|---|---|"]
    figures = [figure for figure, _ in latest.values()]
    lines += [_markdown_row(figure) for figure in figures if in_readme(figure)]
    judged = [figure for figure in figures if figure.met is not None]
    lines += ["", f"Goals met: {sum(1 for figure in judged if figure.met)} of {len(judged)} figures with a goal."]
    v6_line = _v6_line(figures)
    if v6_line:
        lines += ["", v6_line]
    unlisted = [figure for figure in figures if not in_readme(figure) and not figure.key.endswith(V6_SUFFIX)]
    others = Counter(figure.key.split(".", 1)[0] for figure in unlisted)
    if others:
        counted = ", ".join(f"<code>{prefix}.*</code> {count}" for prefix, count in others.items())
        lines += [
            "",
            f"Not in the table (no goal): {counted}; `python -m benchmarks.figures` prints them.",
        ]
    machines = sorted({report.machine.describe() for _, report in latest.values()})
    dates = sorted({report.published_at.date().isoformat() for _, report in latest.values()})
    if machines:
        lines += ["", f"Measured with `make bench` on {'; '.join(machines)} ({', '.join(dates)})."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="the published files (default: reports/bench)")
    parser.add_argument("--markdown", action="store_true", help="print the README's table instead")
    args = parser.parse_args(argv)
    reports = load_reports(args.dir)
    if args.markdown:
        print(render_markdown(reports))
        return 0
    for report in reports:
        print(f"\n{report.benchmark} ({report.machine.describe()}, {report.published_at.isoformat()})")
        print(render_table(report.figures))
    if not reports:
        print(f"no published figures in {args.dir or reports_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
