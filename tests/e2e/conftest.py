"""The example sets, each run once through the whole local pipeline and shared by the tests that read its outcome.

Every test that uses `example_run` (v5, environment `example`) is in the xdist group "e2e-example", and every
test that uses `example_run_v6` (v6, environment `dev`) in "e2e-example-v6", so each run happens once per
session (the suite runs `pytest -n 2 --dist loadgroup`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infrastructure.config import load_environment
from local_pipeline.engine import LocalPipeline, RunOutcome
from local_pipeline.scenario import Scenario, example_set
from local_pipeline.tracker import RecordResult


@dataclass
class ExampleRun:
    pipeline: LocalPipeline
    outcome: RunOutcome
    scenario: Scenario

    def record(self, line: int) -> RecordResult:
        return next(r for r in self.outcome.records if r.position == line)


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleRun]:
    records, scenario = example_set()
    log_dir: Path = tmp_path_factory.mktemp("example-run") / "logs"
    with LocalPipeline(load_environment("example"), log_dir=log_dir) as pipeline:
        outcome = pipeline.run(records, scenario, deadline_seconds=90)
        yield ExampleRun(pipeline, outcome, scenario)


@pytest.fixture(scope="module")
def example_run_v6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleRun]:
    records, scenario = example_set("v6")
    log_dir: Path = tmp_path_factory.mktemp("example-run-v6") / "logs"
    with LocalPipeline(load_environment("dev"), log_dir=log_dir) as pipeline:
        outcome = pipeline.run(records, scenario, deadline_seconds=150)
        yield ExampleRun(pipeline, outcome, scenario)
