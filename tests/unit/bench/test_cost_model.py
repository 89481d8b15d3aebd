"""The cost model (`benchmarks/cost_model.py`, decision 117): fixed published figures give the expected dollars.

Driven through its command line (tests never import benchmarks); the prices are the table in benchmarks/prices.py,
so these sums change only when a price or the model does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.bench.support import run_module, write_report

# Per run: (invocations, mean duration ms, memory MB, cold start ms) for each function.
FUNCTIONS = {
    "router": (0.01, 200.0, 512, 500.0),
    "challenge_processor": (0.2, 100.0, 256, 500.0),
    "completion": (1.0, 50.0, 256, 500.0),
    "timeout_sweeper": (0.01, 1000.0, 256, 500.0),
}
PER_RUN = {
    "calls.per_run.dynamodb": 5,
    "sns.publish_requests_per_run": 0.1,
    "sqs.requests_per_run": 3,
    "dynamodb.write_units_per_run": 8,
    "dynamodb.read_units_per_run": 2,
    "logs.bytes_per_run": 4000,
    "logs.emf_bytes_per_run": 500,
    "events.per_run": 1,
}


def _figure(key: str, value: float) -> dict[str, Any]:
    return {"key": key, "label": key, "value": value, "unit": "x"}


def published_inputs(directory: Path) -> None:
    figures = [_figure(key, value) for key, value in PER_RUN.items()]
    for name, (invocations, duration, memory, cold) in FUNCTIONS.items():
        figures += [
            _figure(f"lambda.{name}.invocations_per_run", invocations),
            _figure(f"lambda.{name}.mean_duration_ms", duration),
            _figure(f"lambda.{name}.memory_mb", memory),
            _figure(f"cold_start.{name}", cold),
        ]
    write_report(directory, "aws_calls", "2026-12-02T03:00:00Z", figures)


@pytest.fixture(scope="module")
def costs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("bench")
    published_inputs(directory)
    run_module("benchmarks.cost_model", "--figures-dir", str(directory))
    report = json.loads((directory / "cost_model.json").read_text())
    return {figure["key"]: figure for figure in report["figures"]}


def test_each_part_is_the_published_use_times_its_list_price(costs: dict[str, dict[str, Any]]) -> None:
    invocations = 1.22  # per run, the four functions together
    gb_seconds = sum(n * (ms / 1000 + 0.01 * cold / 1000) * mb / 1024 for n, ms, mb, cold in FUNCTIONS.values())
    expected = {
        "lambda_requests": invocations * 0.20,
        "lambda_compute": gb_seconds * 1_000_000 * 0.0000133334,  # arm64
        "sns": 0.1 * 0.50,
        "sqs": 3 * 0.40,
        "dynamodb_writes": 8 * 0.625,
        "dynamodb_reads": 2 * 0.125,
        "eventbridge": 0.0,  # ECS events on the default bus are free
        "logs": (4000 + 500 + 350 * invocations) * 1_000_000 / 2**30 * 0.50,  # + platform lines
        "xray": invocations * 5.00,
    }
    got = {key.removeprefix("cost.per_million."): figure["value"] for key, figure in costs.items()}
    assert {part: got[part] for part in expected} == pytest.approx(expected)
    assert got["total"] == pytest.approx(sum(expected.values()))


def test_an_input_nobody_published_is_named_as_assumed(costs: dict[str, dict[str, Any]]) -> None:
    assert "1 inputs not published, assumed: runs.per_submission" in costs["cost.per_million.total"]["note"]


def test_the_step_functions_alternative_prices_its_transitions_on_the_same_front(
    costs: dict[str, dict[str, Any]],
) -> None:
    alternative = costs["cost.per_million.step_functions_alternative"]
    transitions = (0.9 * 3 + 0.1 * 4 + 0.02) * 1_000_000 / 1000 * 0.025  # success 3 states, failure 4, retries
    assert transitions == pytest.approx(78.0)
    assert "$78.00 per million" in alternative["note"]
    total = costs["cost.per_million.total"]["value"]
    assert transitions < alternative["value"] < transitions + total  # the front is part of ours
