"""The fuzz targets: each function's input strategy with the checker that judges it, shared by the short run
(`test_fuzz_inputs.py`, asserted) and the long run (`benchmarks/fuzz.py`, counted).

The benchmarks import this (never the reverse: an import contract keeps tests free of benchmarks), so both runs
fuzz the same inputs against the same checkers, and a new target is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mm_contracts.models.phase import Platform
from tests.fuzz.completion_checker import CompletionChecker
from tests.fuzz.completion_v6_checker import V6CompletionChecker
from tests.fuzz.ecs_inputs import ecs_event_sequences, v6_completion_sequences
from tests.fuzz.findings import Finding
from tests.fuzz.kafka_inputs import msk_events, v6_msk_events
from tests.fuzz.processor_checker import ProcessorChecker
from tests.fuzz.router_checker import RouterChecker
from tests.fuzz.sqs_inputs import sqs_deliveries, v6_sqs_deliveries


class Checker(Protocol):
    name: str

    def units(self, value: Any) -> int: ...

    def check(self, value: Any) -> list[Finding]: ...


@dataclass(frozen=True)
class FuzzTarget:
    """One function's fuzz: `build(table)` makes its checker (`table`: the moto status table, None when the
    target needs no AWS), `unit` names what `Checker.units` counts."""

    name: str
    title: str
    unit: str
    strategy: st.SearchStrategy[Any]
    build: Callable[[str | None], Checker]
    needs_aws: bool = True


def _table(table: str | None) -> str:
    assert table is not None, "this target runs on the moto status table (isolated_aws)"
    return table


TARGETS: dict[str, FuzzTarget] = {
    target.name: target
    for target in (
        FuzzTarget("router", "router", "Kafka records", msk_events(), lambda _: RouterChecker(), needs_aws=False),
        FuzzTarget(
            "router-v6", "router v6", "Kafka records", v6_msk_events(), lambda _: RouterChecker(), needs_aws=False
        ),
        FuzzTarget(
            "processor", "challenge processor", "SQS deliveries", sqs_deliveries, lambda t: ProcessorChecker(_table(t))
        ),
        FuzzTarget(
            "processor-v6",
            "processor v6",
            "SQS deliveries",
            v6_sqs_deliveries,
            lambda t: ProcessorChecker(_table(t), Platform.V6),
        ),
        FuzzTarget(
            "completion", "completion", "ECS events", ecs_event_sequences, lambda t: CompletionChecker(_table(t))
        ),
        FuzzTarget(
            "completion-v6",
            "completion v6",
            "events",
            v6_completion_sequences,
            lambda t: V6CompletionChecker(_table(t)),
        ),
    )
}


def fixed_seed(max_examples: int, **overrides: Any) -> settings:
    """Hypothesis settings of every fuzz run: a fixed seed (the same inputs on every run and machine), no example
    database, no deadline; `overrides` for what a run changes (the long run's phases and health checks)."""
    options: dict[str, Any] = {
        "derandomize": True,
        "database": None,
        "deadline": None,
        "max_examples": max_examples,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    }
    return settings(**{**options, **overrides})
