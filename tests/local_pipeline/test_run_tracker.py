"""The local run's accounting per run (submission, phase), on hand-made observations (no emulator): a v6
record is final only when every phase it triggered is, takes its most severe run's state, counts a summation
created twice as a violation, and a skipped v6 submission is `skipped` once each phase's FAILED summation is in."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from local_pipeline.kafka import KafkaMessage
from local_pipeline.tracker import (
    CANCELLED,
    FAILED_REPORTED,
    PENDING,
    SCORED,
    SKIPPED,
    Observations,
    classify,
    violations,
)
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import ScoringPhase, run_id

TOPIC = "marathonmatch.submission.received"
CHALLENGE = "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
SUBMISSION = "3G9RNcDiRX4ioW"
BOTH = (ScoringPhase.EXAMPLE, ScoringPhase.PROVISIONAL)
NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def _message(position: int) -> KafkaMessage:
    return KafkaMessage(position, TOPIC, 0, 1000 + position, 0, b"{}")


def _routed(message: KafkaMessage, **fields: Any) -> dict[str, Any]:
    return {
        "platform": "v6",
        "submissionId": SUBMISSION,
        "challengeId": CHALLENGE,
        "source": {"topic": message.topic, "partition": message.partition, "offset": message.offset},
        "routedAt": NOW.isoformat(),
        **fields,
    }


def _run(phase: ScoringPhase, state: SubmissionState, report: ReportStatus | None, **fields: Any) -> LifecycleRecord:
    return LifecycleRecord(
        run_id=run_id(SUBMISSION, phase),
        submission_id=SUBMISSION,
        phase=phase,
        platform="v6",
        challenge_id=CHALLENGE,
        state=state,
        report_status=report,
        correlation_id=f"{TOPIC}-0-1000",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def _observations(*runs: LifecycleRecord, **routed_fields: Any) -> tuple[list[KafkaMessage], Observations]:
    message = _message(0)
    obs = Observations(expected_phases={CHALLENGE: BOTH})
    obs.add_routed(_routed(message, **routed_fields), 0.0)
    obs.lifecycle = {r.run_id: r for r in runs}
    return [message], obs


def test_a_record_is_pending_until_every_triggered_phase_is_final() -> None:
    # Given a v6 submission whose EXAMPLE run is scored and whose PROVISIONAL run is not claimed yet
    messages, obs = _observations(_run(ScoringPhase.EXAMPLE, SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED))
    # When the records are classified
    (result,) = classify(messages, obs, feeding_done=True)
    # Then the record waits for the missing run, and says which
    assert result.state == PENDING
    assert result.reason.startswith("PROVISIONAL:")
    assert {r.phase: r.state for r in result.runs} == {"EXAMPLE": SCORED, "PROVISIONAL": PENDING}


def test_a_record_takes_its_most_severe_run_state_and_names_each_phase() -> None:
    messages, obs = _observations(
        _run(ScoringPhase.EXAMPLE, SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED),
        _run(ScoringPhase.PROVISIONAL, SubmissionState.FAILED, ReportStatus.REPORTED, reason="exit 1"),
    )
    (result,) = classify(messages, obs, feeding_done=True)
    assert result.state == FAILED_REPORTED
    assert "EXAMPLE scored" in result.reason
    assert "PROVISIONAL failed-reported: exit 1" in result.reason


def test_a_skipped_v6_submission_is_skipped_once_each_phase_reported_its_failed_summation() -> None:
    runs = [_run(phase, SubmissionState.FAILED, ReportStatus.REPORTED, reason="challenge_inactive") for phase in BOTH]
    messages, obs = _observations(*runs, skipReason="challenge_inactive")
    (result,) = classify(messages, obs, feeding_done=True)
    assert result.state == SKIPPED
    assert result.reason.startswith("challenge_inactive: terminal FAILED summation reported for")

    # and not before the report of each phase is in
    runs[1] = _run(ScoringPhase.PROVISIONAL, SubmissionState.FAILED, ReportStatus.PENDING)
    messages, obs = _observations(*runs, skipReason="challenge_inactive")
    (result,) = classify(messages, obs, feeding_done=True)
    assert result.state == PENDING


def test_summations_are_counted_per_run_and_a_second_create_is_a_violation() -> None:
    messages, obs = _observations(
        _run(ScoringPhase.EXAMPLE, SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED),
        _run(ScoringPhase.PROVISIONAL, SubmissionState.FAILED, ReportStatus.REPORTED),
    )
    example, provisional = run_id(SUBMISSION, ScoringPhase.EXAMPLE), run_id(SUBMISSION, ScoringPhase.PROVISIONAL)
    obs.summations = {
        example: [{"submissionId": SUBMISSION, "isExample": True}],
        provisional: [{"submissionId": SUBMISSION, "isProvisional": True}],
    }
    obs.summation_posts = {example: 1, provisional: 1}
    obs.tasks = {example: ["arn:task/1"], provisional: ["arn:task/2"]}
    # one task and one summation per run: two of each for the submission, and no violation
    results = classify(messages, obs, feeding_done=True)
    assert results[0].task_count == 2
    assert [len(r.reviews) for r in results[0].runs] == [1, 1]
    assert violations(results) == []

    # a second POST for the PROVISIONAL run (instead of an update) breaks exactly-once
    obs.summation_posts[provisional] = 2
    assert violations(classify(messages, obs, feeding_done=True)) == [
        f"run {provisional}: review summation created 2 times"
    ]


def test_a_second_task_for_one_run_is_a_violation() -> None:
    messages, obs = _observations(
        _run(ScoringPhase.EXAMPLE, SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED),
        _run(ScoringPhase.PROVISIONAL, SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED),
    )
    example = run_id(SUBMISSION, ScoringPhase.EXAMPLE)
    obs.tasks = {example: ["arn:task/1", "arn:task/3"], run_id(SUBMISSION, ScoringPhase.PROVISIONAL): ["arn:task/2"]}
    assert violations(classify(messages, obs, feeding_done=True)) == [f"run {example} got 2 tasks"]


def test_a_v6_duplicate_record_is_skipped_once_the_first_is_final() -> None:
    first, again = _message(0), _message(1)
    obs = Observations(expected_phases={CHALLENGE: BOTH})
    obs.add_routed(_routed(first), 0.0)
    obs.add_routed(_routed(again), 0.0)
    obs.lifecycle = {
        r.run_id: r for r in (_run(phase, SubmissionState.SUCCEEDED, ReportStatus.NOT_REQUIRED) for phase in BOTH)
    }
    primary, duplicate = classify([first, again], obs, feeding_done=True)
    assert primary.state == SCORED
    assert duplicate.state == SKIPPED
    assert duplicate.duplicate_of == 0
    assert json.dumps(primary.to_dict())  # the report's form


def test_a_waiting_run_is_pending_with_its_wait_and_a_cancelled_one_final_once_reported() -> None:
    # Given a v6 submission whose EXAMPLE run was superseded (CANCELLED) and whose PROVISIONAL run waits for a slot
    cancelled = _run(
        ScoringPhase.EXAMPLE,
        SubmissionState.CANCELLED,
        ReportStatus.PENDING,
        reason="Superseded by a newer submission",
        enqueued_at=100,
    )
    waiting = _run(ScoringPhase.PROVISIONAL, SubmissionState.WAITING, None, wait_reason="CHALLENGE cap 5 reached")
    messages, obs = _observations(cancelled, waiting)
    # When the records are classified
    (result,) = classify(messages, obs, feeding_done=True)
    # Then the record is pending: the cancelled run's summation is not in yet, the other run waits (and says why)
    runs = {r.phase: r for r in result.runs}
    assert result.state == PENDING
    assert runs["EXAMPLE"].reason == "cancelled, report PENDING"
    assert runs["PROVISIONAL"].reason == "waiting for capacity: CHALLENGE cap 5 reached"
    assert runs["PROVISIONAL"].waited_seconds is None  # not admitted yet

    # and once its CANCELLED summation is reported and the other run admitted and scored, both are final
    obs.lifecycle = {
        cancelled.run_id: _run(
            ScoringPhase.EXAMPLE, SubmissionState.CANCELLED, ReportStatus.REPORTED, reason="Superseded by N2"
        ),
        waiting.run_id: _run(
            ScoringPhase.PROVISIONAL,
            SubmissionState.SUCCEEDED,
            ReportStatus.NOT_REQUIRED,
            enqueued_at=100,
            admitted_at=160,
        ),
    }
    (result,) = classify(messages, obs, feeding_done=True)
    runs = {r.phase: r for r in result.runs}
    assert result.state == CANCELLED  # the most severe of (cancelled, scored)
    assert runs["EXAMPLE"].state == CANCELLED
    assert runs["PROVISIONAL"].state == SCORED
    assert runs["PROVISIONAL"].waited_seconds == 60
