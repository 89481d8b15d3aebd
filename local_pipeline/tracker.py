"""Where did each input record end up? One final state per record, decided from what the pipeline left.

Sources, all read back from the emulator (never from the functions' memory):
- the router's audit queue (skipped / rejected, with the reason code and the Kafka coordinates),
- a local tap subscription on the topic (what the router published, with the coordinates),
- the router failure bucket (the Kafka on-failure destination, decision 055),
- the status table (one lifecycle record per run: (submission, phase), decision 084), the challenge DLQs,
- the Topcoder stand-in (the v5 reviews and v6 review summations the API received) and the fake Fargate
  (the tasks started, each with its phase).

A record's submission may have several runs (a v6 submission: EXAMPLE and PROVISIONAL). Each run gets its
own final state; the record's state is the most severe of its runs' (all of them final, else `pending`).
A v6 submission the router will not score (`skipReason`) is `skipped` once each run's terminal FAILED
summation is reported (decision 090).

Final states: scored | failed-reported | timed-out | cancelled | skipped | rejected | dead-lettered |
report-rejected (the outcome is recorded but the API answered the review 400/404: final by design, never
retried; decision 079). `cancelled`: a run superseded by the member's newer submission (decision 095), final once
its report is settled (v6: the CANCELLED summation; v5: none is required). Anything else is `pending`, with the
reason naming where the record is stuck (a run WAITING for capacity or ADMITTED is pending too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from local_pipeline.kafka import KafkaMessage
from local_pipeline.record_results import (
    CANCELLED,
    DEAD_LETTERED,
    FAILED_REPORTED,
    PENDING,
    REJECTED,
    REPORT_FINAL_STATES,
    REPORT_REJECTED,
    SCORED,
    SKIPPED,
    TIMED_OUT,
    Coordinates,
    Observations,
    RecordResult,
    RunResult,
)
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import Platform, ScoringPhase, run_id

__all__ = [
    "CANCELLED",
    "DEAD_LETTERED",
    "FAILED_REPORTED",
    "PENDING",
    "REJECTED",
    "REPORT_FINAL_STATES",
    "REPORT_REJECTED",
    "SCORED",
    "SKIPPED",
    "TIMED_OUT",
    "Coordinates",
    "Observations",
    "RecordResult",
    "RunResult",
    "classify",
    "violations",
]

_REPORT_DONE = {ReportStatus.REPORTED, ReportStatus.NOT_REQUIRED}
# A record with runs in different final states takes the most severe (first here).
_SEVERITY = (PENDING, DEAD_LETTERED, REPORT_REJECTED, TIMED_OUT, FAILED_REPORTED, CANCELLED, SKIPPED, SCORED)


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _review_summary(review: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "score",
        "status",
        "typeId",
        "reviewerId",
        "scoreCardId",
        "aggregateScore",
        "isPassing",
        "isExample",
        "isProvisional",
        "isFinal",
        "scorecardId",
        "metadata",
        "createdBy",
    )
    return {k: review[k] for k in keys if k in review}


def _lifecycle_state(record: LifecycleRecord, in_dlq: bool) -> tuple[str, str]:
    """(state, reason) of one run from its lifecycle record."""
    reason = record.reason or ""
    if record.state is SubmissionState.DEAD_LETTERED or (in_dlq and record.state not in _FINAL_LIFECYCLE):
        return DEAD_LETTERED, reason or "message in the challenge DLQ"
    report = record.report_status
    if record.state in _FINAL_LIFECYCLE and report is ReportStatus.REJECTED:
        return REPORT_REJECTED, _rejected_reason(record)
    if record.state is SubmissionState.SUCCEEDED:
        if report in _REPORT_DONE:
            return SCORED, reason or "scorer exited 0"
        return PENDING, f"succeeded, report {report.value if report else 'missing'}"
    if record.state in (SubmissionState.FAILED, SubmissionState.TIMED_OUT):
        final = FAILED_REPORTED if record.state is SubmissionState.FAILED else TIMED_OUT
        if report is ReportStatus.REPORTED:
            return final, reason
        return PENDING, f"{record.state.value}, report {report.value if report else 'missing'}"
    if record.state is SubmissionState.CANCELLED:
        # v6: the CANCELLED summation is the report; v5 has no cancelled review (NOT_REQUIRED, decision 095).
        if report in _REPORT_DONE:
            return CANCELLED, reason or "superseded by a newer submission"
        return PENDING, f"cancelled, report {report.value if report else 'missing'}"
    where = {
        SubmissionState.WAITING: "waiting for capacity",
        SubmissionState.ADMITTED: "admitted (slot reserved), its launch message sent",
        SubmissionState.LAUNCHING: "launch in progress",
        SubmissionState.LAUNCH_FAILED: "launch failed, waiting for redelivery",
        SubmissionState.LAUNCHED: "task running, waiting for its STOPPED event",
    }.get(record.state, record.state.value)
    if record.state is SubmissionState.WAITING and record.wait_reason:
        reason = record.wait_reason
    return PENDING, f"{where}{': ' + reason if reason else ''}"


_FINAL_LIFECYCLE = {
    SubmissionState.SUCCEEDED,
    SubmissionState.FAILED,
    SubmissionState.TIMED_OUT,
    SubmissionState.CANCELLED,
}
_REJECTED_STATUS = re.compile(r"\b([1-5]\d\d)\b")


def _rejected_reason(record: LifecycleRecord) -> str:
    """`report rejected (400): <API response>; outcome FAILED` from the recorded response summary."""
    response = record.report_response or ""
    found = _REJECTED_STATUS.search(response)
    status = f" ({found.group(1)})" if found else ""
    return f"report rejected{status}: {response or 'no response recorded'}; outcome {record.state.value}"


def _phases_of(routed: dict[str, Any], obs: Observations) -> tuple[ScoringPhase, ...]:
    """The runs a routed message asks for: its own phase (a relaunch), else its challenge's onSubmission phases."""
    phase = routed.get("phase")
    if phase:
        try:
            return (ScoringPhase(str(phase)),)
        except ValueError:
            return ()
    return obs.expected_phases.get(str(routed.get("challengeId")), ())


def _run_result(
    submission_id: str,
    phase: ScoringPhase,
    record: LifecycleRecord | None,
    obs: Observations,
    *,
    single_run: bool,
) -> RunResult:
    key = run_id(submission_id, phase)
    tasks = list(obs.tasks.get(key, []))
    if single_run:  # a task without a phase (an older launcher) belongs to the submission's only run
        tasks += obs.tasks.get(submission_id, [])
    if key in obs.summations or (record is not None and record.platform is Platform.V6):
        reviews = [_review_summary(r) for r in obs.summations.get(key, [])]
    else:
        reviews = [_review_summary(r) for r in obs.reviews.get(submission_id, [])] if single_run else []
    in_dlq = key in obs.dead_letters or submission_id in obs.dead_letters
    result = RunResult(
        run_id=key,
        phase=phase.value,
        state=PENDING,
        reason="",
        task_count=len(tasks),
        reviews=reviews,
        summation_posts=obs.summation_posts.get(key, 0),
    )
    if record is None:
        result.state, result.reason = (
            (DEAD_LETTERED, "message in the challenge DLQ (no lifecycle record)")
            if in_dlq
            else (PENDING, "routed, not yet claimed by the challenge processor")
        )
        return result
    result.state, result.reason = _lifecycle_state(record, in_dlq)
    result.task_arn = record.task_arn
    result.lifecycle_state = record.state.value
    result.exit_code = record.exit_code
    result.report_status = record.report_status.value if record.report_status else None
    result.launched_at, result.stopped_at = _epoch(record.launched_at), _epoch(record.stopped_at)
    result.done_at = _epoch(record.reported_at) or (
        result.stopped_at if record.state is SubmissionState.SUCCEEDED else None
    )
    result.updated_at = _epoch(record.updated_at)
    result.challenge_id = record.challenge_id
    result.enqueued_at = record.enqueued_at
    result.admitted_at = record.admitted_at
    return result


def _combined(runs: list[RunResult], skip_reason: str | None) -> tuple[str, str]:
    """The record's (state, reason) from its runs': one run speaks for itself; several name their phases."""
    if not runs:
        return PENDING, "routed, not yet claimed by the challenge processor"
    pending = [r for r in runs if not r.final]
    if pending:
        first = pending[0]
        return PENDING, first.reason if len(runs) == 1 else f"{first.phase}: {first.reason}"
    if skip_reason and all(r.state == FAILED_REPORTED for r in runs):
        phases = ", ".join(r.phase for r in runs)
        return SKIPPED, f"{skip_reason}: terminal FAILED summation reported for {phases}"
    if len(runs) == 1:
        return runs[0].state, runs[0].reason
    state = min((r.state for r in runs), key=_SEVERITY.index)
    reason = "; ".join(f"{r.phase} {r.state}" + (f": {r.reason}" if r.reason else "") for r in runs)
    return state, reason


def _first_look(message: KafkaMessage, obs: Observations, *, feeding_done: bool) -> RecordResult:
    """A record's state from the router's side alone: routed (its runs come next), audited, failed, or waiting."""
    key = (message.topic, message.partition, message.offset)
    result = RecordResult(message.position, message.partition, message.offset, PENDING, "")
    audit = obs.audited.get(key)
    routed = obs.routed.get(key)
    if routed is not None:
        result.submission_id = routed.get("submissionId")
        result.challenge_id = routed.get("challengeId")
        result.platform = str(routed.get("platform") or "v5")
        fed = obs.first_invoked_at.get(message.position)
        if fed is not None:
            result.timings["route"] = obs.routed_seen_at.get(key, fed) - fed
    elif audit is not None:
        disposition = str(audit.get("disposition"))
        result.state = SKIPPED if disposition == "skipped" else REJECTED
        result.reason = f"{audit.get('reason')}: {audit.get('detail', '')}".rstrip(": ")
        result.submission_id = audit.get("submissionId")
        result.challenge_id = audit.get("challengeId")
    elif (f"{message.topic}-{message.partition}", message.offset) in obs.router_failed:
        result.state = DEAD_LETTERED
        result.reason = "router retries exhausted: batch written to the router failure bucket (Kafka on-failure)"
    elif feeding_done:
        result.reason = "router answered, but the record was neither published nor audited"
    else:
        result.reason = "waiting for the router"
    return result


def _submission_runs(
    submission_id: str,
    group: list[KafkaMessage],
    records: dict[ScoringPhase, LifecycleRecord],
    routed_bodies: dict[int, dict[str, Any]],
    obs: Observations,
) -> list[RunResult]:
    """Every run of a routed submission: the phases its records ask for and any phase it has a record of."""
    expected: list[ScoringPhase] = []
    for message in group:
        expected += [p for p in _phases_of(routed_bodies[message.position], obs) if p not in expected]
    expected += [p for p in records if p not in expected]
    expected.sort(key=lambda p: p.priority)
    single_run = len(expected) == 1
    return [_run_result(submission_id, p, records.get(p), obs, single_run=single_run) for p in expected]


def _share_runs(result: RecordResult, runs: list[RunResult]) -> None:
    """Every record of a submission shows its runs (the first run's figures as the record's)."""
    result.runs = runs
    result.task_count = sum(r.task_count for r in runs)
    result.reviews = [review for r in runs for review in r.reviews]
    if runs and runs[0].lifecycle_state is not None:
        result.task_arn = runs[0].task_arn
        result.lifecycle_state = runs[0].lifecycle_state
        result.exit_code = runs[0].exit_code
        result.report_status = runs[0].report_status


def _classify_submission(
    submission_id: str,
    group: list[KafkaMessage],
    results: dict[int, RecordResult],
    routed_bodies: dict[int, dict[str, Any]],
    obs: Observations,
    runs_by_submission: dict[str, list[LifecycleRecord]],
) -> None:
    """The records of one routed submission: the primary (the one its lifecycle records name, else the first)
    takes the runs' combined state; any other is a duplicate of it."""
    records = {r.phase: r for r in runs_by_submission.get(submission_id, [])}
    primary = min(group, key=lambda m: m.position)
    correlations = {r.correlation_id for r in records.values() if r.correlation_id}
    primary = next((m for m in group if m.correlation_id in correlations), primary)
    runs = _submission_runs(submission_id, group, records, routed_bodies, obs)
    main = results[primary.position]
    main.state, main.reason = _combined(runs, routed_bodies[primary.position].get("skipReason"))
    for message in group:
        _share_runs(results[message.position], runs)
    _timings(main, runs, obs.first_invoked_at.get(primary.position))
    for message in group:
        if message.position == primary.position:
            continue
        result = results[message.position]
        result.duplicate_of = primary.position
        if main.final:
            result.state = SKIPPED
            result.reason = f"duplicate_submission: same submission as record {primary.position}"
        else:
            result.reason = f"duplicate of record {primary.position}, which is still {main.state}"


def classify(messages: Iterable[KafkaMessage], obs: Observations, *, feeding_done: bool) -> list[RecordResult]:
    """Every input record's result, in input order, from what the pipeline left (`obs`)."""
    messages = list(messages)
    results: dict[int, RecordResult] = {}
    routed_positions: dict[str, list[KafkaMessage]] = {}
    routed_bodies: dict[int, dict[str, Any]] = {}
    for message in messages:
        result = _first_look(message, obs, feeding_done=feeding_done)
        results[message.position] = result
        routed = obs.routed.get((message.topic, message.partition, message.offset))
        if routed is not None:
            routed_bodies[message.position] = routed
            routed_positions.setdefault(str(result.submission_id), []).append(message)
    runs_by_submission = obs.runs_by_submission()
    for submission_id, group in routed_positions.items():
        _classify_submission(submission_id, group, results, routed_bodies, obs, runs_by_submission)
    return [results[m.position] for m in messages]


def _timings(main: RecordResult, runs: list[RunResult], fed: float | None) -> None:
    """Stage durations of a record: the first launch, the longest run and report, the last run's end."""
    routed_at = fed + main.timings["route"] if fed is not None and "route" in main.timings else None
    launched = [r.launched_at for r in runs if r.launched_at is not None]
    if routed_at is not None and launched:
        main.timings["launch"] = max(0.0, min(launched) - routed_at)
    ran = [r.stopped_at - r.launched_at for r in runs if r.launched_at is not None and r.stopped_at is not None]
    if ran:
        main.timings["run"] = max(0.0, max(ran))
    reported = [r.done_at - r.stopped_at for r in runs if r.stopped_at is not None and r.done_at is not None]
    if reported:
        main.timings["report"] = max(0.0, max(reported))
    if fed is not None and main.final and runs:
        ends = [r.done_at or r.updated_at for r in runs]
        if all(end is not None for end in ends):
            main.timings["endToEnd"] = max(0.0, max(e for e in ends if e is not None) - fed)


def violations(results: list[RecordResult]) -> list[str]:
    """Exactly-once breaches, per run (submission, phase): two tasks, two reports, a summation posted twice."""
    found: list[str] = []
    seen: set[str] = set()
    for result in results:
        if result.duplicate_of is not None:
            continue
        for run in result.runs:
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            label = f"submission {result.submission_id}" if len(result.runs) == 1 else f"run {run.run_id}"
            if run.task_count > 1:
                found.append(f"{label} got {run.task_count} tasks")
            if len(run.reviews) > 1:
                found.append(f"{label} got {len(run.reviews)} reviews")
            if run.summation_posts > 1:
                found.append(f"{label}: review summation created {run.summation_posts} times")
    return found
