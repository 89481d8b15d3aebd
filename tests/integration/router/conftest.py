from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.router.support import LogCapture, capture_router_logs


@pytest.fixture
def router_logs() -> Iterator[LogCapture]:
    with capture_router_logs() as capture:
        yield capture
