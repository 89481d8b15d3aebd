"""The router handler freezes the heap exactly once, after its first invocation has returned (decision 113)."""

from __future__ import annotations

import gc
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from mm_adapters.warm_heap import HeapFreeze
from router_lambda import handler as handler_module
from router_lambda import wiring
from router_lambda.wiring import RouterDependencies
from tests.unit.router.support import (
    FakeDynamoDB,
    FakeSns,
    FakeSqs,
    challenge_item,
    event_of,
    router_settings,
    submission_record,
)

CHALLENGE_ID = str(uuid.uuid4())


@pytest.fixture
def published() -> FakeSns:
    return FakeSns()


@pytest.fixture
def fresh_heap(monkeypatch: pytest.MonkeyPatch, published: FakeSns) -> Iterator[HeapFreeze]:
    """A handler that has not been invoked yet, over fakes, in a process with nothing frozen (undone after)."""
    gc.unfreeze()
    heap = HeapFreeze()
    monkeypatch.setattr(handler_module, "warm_heap", heap)
    ddb, sns, sqs = FakeDynamoDB(), published, FakeSqs()
    ddb.add(challenge_item(CHALLENGE_ID))
    wiring.use_dependencies(
        RouterDependencies(router_settings(), sns=lambda: sns, sqs=lambda: sqs, dynamodb=lambda: ddb)
    )
    yield heap
    wiring.use_dependencies(None)
    gc.unfreeze()


def test_the_first_invocation_freezes_and_later_ones_do_not(
    fresh_heap: HeapFreeze, published: FakeSns, lambda_context: Any
) -> None:
    assert gc.get_freeze_count() == 0
    handler_module.handler(event_of(submission_record(CHALLENGE_ID)), lambda_context)
    frozen_after_first = gc.get_freeze_count()
    assert fresh_heap.frozen
    assert frozen_after_first > 0

    kept_alive = [[index] for index in range(1_000)]  # tracked objects made after the freeze
    handler_module.handler(event_of(submission_record(CHALLENGE_ID)), lambda_context)
    assert gc.get_freeze_count() <= frozen_after_first  # no second freeze: nothing new moved to the permanent set
    del kept_alive
    assert len(published.published) == 2  # both invocations routed their record


def test_an_invocation_that_raised_does_not_freeze(fresh_heap: HeapFreeze, lambda_context: Any) -> None:
    with pytest.raises(ValidationError):  # the event itself is malformed: the batch fails as a whole
        handler_module.handler({"eventSource": "aws:kafka", "records": "not a mapping"}, lambda_context)
    assert not fresh_heap.frozen
    assert gc.get_freeze_count() == 0
    handler_module.handler(event_of(submission_record(CHALLENGE_ID)), lambda_context)
    assert fresh_heap.frozen
    assert gc.get_freeze_count() > 0


def test_importing_the_handler_freezes_nothing() -> None:
    probe = "import gc, router_lambda.handler; print(gc.get_freeze_count())"
    frozen = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert frozen.strip() == "0"
