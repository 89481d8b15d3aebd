"""A challenge's runs through the `byChallenge` index (decision 108), on moto DynamoDB: which runs, in creation
order, the latest submission of each member, and that no later write of a run touches what the index holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mm_adapters.status_store import StatusStore
from mm_adapters.status_store.challenge_index import latest_and_skipped, latest_by_member
from mm_contracts.models.phase import Platform, ScoringPhase, run_id
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from mm_contracts.tables import CHALLENGE_INDEX_ATTRIBUTES
from tests.conftest import Clock
from tests.unit.shared.test_status_store import CHALLENGE, CLUSTER_ARN, LEASE, outcome, task_arn

OTHER_CHALLENGE = "5a0c0f57-8b70-4a2b-9f3e-1c2d3e4f5a6c"
EXAMPLE, PROVISIONAL = ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL


@pytest.fixture
def store(status_table: str, clock: Clock) -> StatusStore:
    return StatusStore(status_table, clock=clock)


def v6(
    submission_id: str, member_id: int, *, challenge: str = CHALLENGE, created: datetime | None = None
) -> RoutedSubmission:
    source = KafkaCoordinates(topic="marathonmatch.submission.received", partition=0, offset=3)
    return RoutedSubmission(
        platform=Platform.V6,
        submission_id=submission_id,
        challenge_id=challenge,
        member_id=member_id,
        url="https://topcoder-submissions.s3.amazonaws.com/mm/solution.zip",
        correlation_id=source.correlation_id,
        source=source,
        routed_at=datetime(2027, 1, 15, tzinfo=UTC),
        created=created,
    )


def claim(store: StatusStore, sub: RoutedSubmission, phase: ScoringPhase = EXAMPLE) -> None:
    assert store.claim_launch(sub, phase=phase, scorer_type="java", lease_seconds=LEASE).granted


def test_runs_of_a_challenge_are_its_items_oldest_first(store: StatusStore, clock: Clock) -> None:
    first, second = v6("firstSubmiss01", 1), v6("secondSubmis02", 2)
    claim(store, first, EXAMPLE)
    clock.advance(5)
    claim(store, second, EXAMPLE)
    clock.advance(5)
    claim(store, first, PROVISIONAL)
    claim(store, v6("otherChalleng3", 1, challenge=OTHER_CHALLENGE))

    runs = store.runs_of_challenge(CHALLENGE)

    assert [r.run_id for r in runs] == [
        run_id("firstSubmiss01", EXAMPLE),
        run_id("secondSubmis02", EXAMPLE),
        run_id("firstSubmiss01", PROVISIONAL),
    ]
    assert {r.challenge_id for r in runs} == {CHALLENGE}
    assert store.runs_of_challenge("5a0c0f57-8b70-4a2b-9f3e-000000000000") == []


def test_the_records_are_read_from_the_table_with_their_current_state(store: StatusStore) -> None:
    sub = v6("launchedSubm01", 7)
    claim(store, sub)
    task = task_arn()
    assert store.mark_launched(
        run_id(sub.submission_id, EXAMPLE), attempt=1, task_arn=task, cluster_arn=CLUSTER_ARN, timeout_seconds=600
    )

    (record,) = store.runs_of_challenge(CHALLENGE)

    assert record.state.value == "LAUNCHED"
    assert record.task_arn == task  # not projected into the index: read from the table itself
    assert record.routed_message is not None


def test_later_writes_of_a_run_never_change_what_the_index_holds(store: StatusStore, status_table: str) -> None:
    sub = v6("lifecycleSub01", 7)
    claim(store, sub)
    key = {"runId": {"S": run_id(sub.submission_id, EXAMPLE)}}
    indexed = (*CHALLENGE_INDEX_ATTRIBUTES, "challengeId", "createdAt")

    def index_view() -> dict[str, object]:
        item = store.client.get_item(TableName=status_table, Key=key, ConsistentRead=True)["Item"]
        return {name: item.get(name) for name in indexed}

    created = index_view()
    task = task_arn()
    store.mark_launched(key["runId"]["S"], attempt=1, task_arn=task, cluster_arn=CLUSTER_ARN, timeout_seconds=600)
    store.record_outcome(key["runId"]["S"], CHALLENGE, outcome(task), report_required=True)
    assert store.runs_of_challenge(CHALLENGE)[0].state.value == "SUCCEEDED"

    assert index_view() == created
    assert all(value is not None for value in created.values())


def test_latest_submission_of_each_member_by_the_submission_created_time(store: StatusStore, clock: Clock) -> None:
    # Member 1 submitted twice; the later submission (by Topcoder's `created`) arrived first (a slow virus scan).
    later = v6("laterSubmiss01", 1, created=datetime(2027, 1, 15, 12, 0, tzinfo=UTC))
    earlier = v6("earlierSubmi01", 1, created=datetime(2027, 1, 15, 11, 0, tzinfo=UTC))
    claim(store, later)
    clock.advance(60)
    claim(store, earlier)
    # Member 2: no `created` in the message; their run items' creation order decides.
    claim(store, v6("memberTwoOld01", 2))
    clock.advance(60)
    claim(store, v6("memberTwoNew01", 2))
    claim(store, v6("memberTwoNew01", 2), PROVISIONAL)

    assert store.latest_submissions(CHALLENGE) == {1: "laterSubmiss01", 2: "memberTwoNew01"}


def test_latest_by_member_ignores_runs_without_a_member(store: StatusStore) -> None:
    claim(store, v6("someSubmissi01", 3))
    records = store.runs_of_challenge(CHALLENGE)
    anonymous = [r.model_copy(update={"member_id": None}) for r in records]
    assert latest_by_member(anonymous) == {}
    assert latest_by_member(records) == {3: "someSubmissi01"}


def test_a_skipped_submission_is_never_a_members_latest(store: StatusStore) -> None:
    # Member 4's last valid submission, then two the pipeline refused to score: one whose routed message carries the
    # router's skip reason (a v6 submission to an inactive challenge), one skipped by the processor (no phase
    # triggered: FAILED, never launched, and no skip reason in the message).
    valid = v6("validSubmis401", 4, created=datetime(2027, 1, 15, 11, 0, tzinfo=UTC))
    claim(store, valid)
    inactive = v6("inactiveSub401", 4, created=datetime(2027, 1, 15, 12, 0, tzinfo=UTC)).model_copy(
        update={"skip_reason": "The challenge is not active."}
    )
    assert store.record_skipped(inactive, phase=PROVISIONAL, scorer_type="route-planner", reason="inactive")
    untriggered = v6("noPhaseSub4001", 4, created=datetime(2027, 1, 15, 13, 0, tzinfo=UTC))
    assert store.record_skipped(untriggered, phase=PROVISIONAL, scorer_type="route-planner", reason="no phase")

    records = store.runs_of_challenge(CHALLENGE)
    assert latest_by_member(records) == {4: "validSubmis401"}
    assert latest_and_skipped(records) == ({4: "validSubmis401"}, ["inactiveSub401", "noPhaseSub4001"])
    assert store.latest_submissions(CHALLENGE) == {4: "validSubmis401"}
