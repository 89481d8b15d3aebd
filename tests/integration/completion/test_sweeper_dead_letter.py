"""The sweeper and a v6 run that cannot be started (decision 086): its dead-letter gets the terminal report due,
and an unfinished one is re-driven with the report-due event naming the run."""

from __future__ import annotations

import pytest

from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import ReportStatus, SubmissionState
from mm_contracts.models.phase import Platform
from mm_contracts.models.report_due import report_due_event
from tests.builders import new_uuid
from tests.conftest import Clock
from tests.fakes.metrics import RecordingMetrics
from tests.integration.completion.conftest import CLUSTER_ARN, Completion, FakeLambda, rid, routed
from tests.integration.completion.test_sweeper_describe_first import PHASE, FakeEcs, Harness, summary

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

LIFETIME = 900  # the message lifetime a LAUNCH_FAILED item is given


@pytest.fixture
def harness(completion: Completion, install_sweeper: object, clock: Clock, lambda_context: object) -> Harness:
    ecs, lam, metrics = FakeEcs(clock), FakeLambda(), RecordingMetrics()
    install_sweeper(completion.store, ecs, metrics, lam, ecs_cluster_arns=(CLUSTER_ARN,))  # type: ignore[operator]
    return Harness(completion, clock, ecs, lam, metrics, lambda_context)


def launch_failed(store: StatusStore, submission_id: str, platform: Platform) -> None:
    """A delivery whose RunTask answered failures[] and whose message never came back (definite, not last)."""
    claim = store.claim_launch(
        routed(submission_id, platform=platform), phase=PHASE, scorer_type="example-scorer", lease_seconds=60
    )
    assert claim.granted
    assert store.mark_launch_failed(
        rid(submission_id), attempt=1, reason="failures[]: RESOURCE:MEMORY", dead_lettered=False
    )


def test_a_stuck_v6_launch_failure_is_dead_lettered_with_its_report_due_and_handed_on(harness: Harness) -> None:
    h = harness
    submission_id = "aB3_-xYz09QwEr"
    launch_failed(h.completion.store, submission_id, Platform.V6)

    h.clock.advance(LIFETIME + 1)
    assert h.sweep() == summary(launchesDeadLettered=1)

    record = h.completion.record(submission_id)
    assert (record.state, record.report_status, record.test_status, record.launch_ambiguous) == (
        SubmissionState.DEAD_LETTERED,
        ReportStatus.PENDING,
        "FAILED",
        False,
    )
    assert h.lam.events == [report_due_event(rid(submission_id))]
    assert h.lam.calls[0]["InvocationType"] == "Event"


def test_a_stuck_v5_launch_failure_is_only_dead_lettered(harness: Harness) -> None:
    h = harness
    submission_id = new_uuid()
    launch_failed(h.completion.store, submission_id, Platform.V5)

    h.clock.advance(LIFETIME + 1)
    assert h.sweep() == summary(launchesDeadLettered=1)

    record = h.completion.record(submission_id)
    assert (record.state, record.report_status, record.deadline_at) == (SubmissionState.DEAD_LETTERED, None, None)
    assert h.lam.calls == []
    h.clock.advance(LIFETIME + 1)
    assert h.sweep() == summary()


def test_an_unfinished_dead_letter_report_is_re_driven_with_the_report_due_event(harness: Harness) -> None:
    """The processor's invoke was lost: the item's report deadline brings the sweeper's unfinished-report pass."""
    h = harness
    store = h.completion.store
    submission_id = "Zz9_-xYz09QwEr"
    claim = store.claim_launch(
        routed(submission_id, platform=Platform.V6), phase=PHASE, scorer_type="example-scorer", lease_seconds=60
    )
    assert store.mark_launch_failed(rid(submission_id), attempt=claim.attempt, reason="capacity", dead_lettered=True)
    h.clock.advance(1)

    assert h.sweep() == summary(reportsRedriven=1)

    assert h.lam.events == [report_due_event(rid(submission_id))]
    record = h.completion.record(submission_id)
    assert (record.state, record.report_status, record.report_retry_attempt) == (
        SubmissionState.DEAD_LETTERED,
        ReportStatus.PENDING,
        1,
    )
    assert "report-due event" in record.history[-1].detail
