"""The Topcoder stand-in plays the fault layer's Topcoder kinds on the API side (decision 079), for any client."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fault_injection import FaultKind, FaultPlan, FaultRule
from topcoder_standin import TopcoderStandIn

REVIEW_TYPE = "c56a4180-65aa-42ec-a945-5fd21dec0503"


@pytest.fixture
def standin() -> Iterator[TopcoderStandIn]:
    with TopcoderStandIn() as server:
        yield server


def _review(submission_id: str) -> dict[str, Any]:
    return {
        "score": 50.0,
        "typeId": REVIEW_TYPE,
        "reviewerId": str(uuid.uuid4()),
        "scoreCardId": 30001852,
        "submissionId": submission_id,
        "status": "completed",
    }


def _post(standin: TopcoderStandIn, token: str, submission_id: str, timeout: float = 10) -> requests.Response:
    return requests.post(
        f"{standin.base_url}/reviews",
        json=_review(submission_id),
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


def _submission(standin: TopcoderStandIn) -> str:
    submission_id = str(uuid.uuid4())
    standin.add_submission(submission_id, str(uuid.uuid4()), 40_000_001)
    return submission_id


def test_a_400_for_one_submission_stores_nothing_and_leaves_the_others_alone(standin: TopcoderStandIn) -> None:
    token = standin.issue_token()
    target, other = _submission(standin), _submission(standin)
    standin.use_fault_plan(FaultPlan.of(FaultRule(kind=FaultKind.TOPCODER_400, target=target, every=True)))
    assert _post(standin, token, target).status_code == 400
    assert _post(standin, token, other).status_code == 200
    assert standin.reviews_for(target) == []
    assert len(standin.reviews_for(other)) == 1


def test_a_5xx_on_the_first_call_only_then_the_write_succeeds(standin: TopcoderStandIn) -> None:
    token = standin.issue_token()
    submission_id = _submission(standin)
    standin.use_fault_plan(FaultPlan.of(FaultRule(kind=FaultKind.TOPCODER_5XX, target=submission_id, first_n=1)))
    assert _post(standin, token, submission_id).status_code == 503
    assert standin.reviews_for(submission_id) == []
    assert _post(standin, token, submission_id).status_code == 200
    assert len(standin.reviews_for(submission_id)) == 1


def test_a_slow_commit_is_in_flight_until_it_lands_after_the_callers_timeout(standin: TopcoderStandIn) -> None:
    token = standin.issue_token()
    submission_id = _submission(standin)
    rule = FaultRule(
        kind=FaultKind.TOPCODER_SLOW_COMMIT, target=submission_id, first_n=1, params={"commit_delay_seconds": 1.5}
    )
    standin.use_fault_plan(FaultPlan.of(rule))
    assert standin.slowest_delay == 1.5  # what the engine's settle period covers
    with pytest.raises(requests.ReadTimeout):
        _post(standin, token, submission_id, timeout=0.3)
    assert standin.in_flight() == 1
    assert standin.reviews_for(submission_id) == []
    give_up = time.monotonic() + 10
    while standin.in_flight() and time.monotonic() < give_up:
        time.sleep(0.05)
    assert standin.in_flight() == 0
    assert len(standin.reviews_for(submission_id)) == 1


def test_a_rotated_token_stops_working_and_the_new_one_is_handed_over(standin: TopcoderStandIn) -> None:
    old = standin.issue_token()
    submission_id = _submission(standin)
    rotated: list[str] = []
    handed_over = threading.Event()

    def on_rotate(token: str) -> None:
        rotated.append(token)
        handed_over.set()

    plan = FaultPlan.of(FaultRule(kind=FaultKind.TOPCODER_401_ROTATED, target=submission_id, first_n=1))
    standin.use_fault_plan(plan, on_rotate=on_rotate)
    assert _post(standin, old, submission_id).status_code == 401
    assert handed_over.is_set()
    assert _post(standin, old, submission_id).status_code == 401  # the old token stays revoked
    assert _post(standin, rotated[0], submission_id).status_code == 200
