"""Fixtures of the challenge processor's unit tests: the capacity table beside the status table (moto)."""

from __future__ import annotations

import pytest

from tests.unit.challenge.helpers import create_capacity_table


@pytest.fixture
def capacity_table(aws: None) -> str:
    return create_capacity_table()
