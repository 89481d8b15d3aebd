"""Shared fixtures of the infrastructure tests: the example app synthesized once per session, and its plan."""

from __future__ import annotations

import pytest

from infrastructure.wiring import WiringPlan
from tests.synth import Synthesized, synth_example


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    return synth_example()


@pytest.fixture(scope="session")
def plan(synthesized: Synthesized) -> WiringPlan:
    return WiringPlan(synthesized.config)
