"""Where did each input record end up? One final state per record, decided from what the pipeline left.

Sources, all read back from the emulator (never from the functions' memory):
- the router's audit queue (skipped / rejected, with the reason code and the Kafka coordinates),
- a local tap subscription on the topic (what the router published, with the coordinates),
- the router failure bucket (the Kafka on-failure destination, decision 055),
- the status table (the lifecycle record of each submission), the challenge DLQs,
- the Topcoder stand-in (the reviews the API received) and the fake Fargate (the tasks started).

Final states: scored | failed-reported | timed-out | skipped | rejected | dead-lettered | report-rejected
(the outcome is recorded but the API answered the review 400/404: final by design, never retried; decision
079). Anything else is `pending`, with the reason naming where the record is stuck.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local_pipeline.kafka import KafkaMessage
from mm_shared.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState

SCORED = "scored"
FAILED_REPORTED = "failed-reported"
TIMED_OUT = "timed-out"
SKIPPED = "skipped"
REJECTED = "rejected"
DEAD_LETTERED = "dead-lettered"
REPORT_REJECTED = "report-rejected"  # final by design: the API answered 400/404, the report is not retried
PENDING = "pending"
FINAL_STATES = (SCORED, FAILED_REPORTED, TIMED_OUT, SKIPPED, REJECTED, DEAD_LETTERED, REPORT_REJECTED)

_REPORT_DONE = {ReportStatus.REPORTED, ReportStatus.NOT_REQUIRED}


Coordinates = tuple[str, int, int]  # topic, partition, offset


@dataclass
class Observations:
    audited: dict[Coordinates, dict[str, Any]] = field(default_factory=dict)  # AuditRecord (wire form)
    routed: dict[Coordinates, dict[str, Any]] = field(default_factory=dict)  # RoutedSubmission (wire form)
    routed_seen_at: dict[Coordinates, float] = field(default_factory=dict)
    router_failed: set[tuple[str, int]] = field(default_factory=set)  # ("topic-partition", offset)
    lifecycle: dict[str, LifecycleRecord] = field(default_factory=dict)  # by submission id
    dead_letters: dict[str, str] = field(default_factory=dict)  # submission id -> challenge id (DLQ bodies)
    reviews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by submission id
    tasks: dict[str, list[str]] = field(default_factory=dict)  # submission id -> task ARNs
    first_invoked_at: dict[int, float] = field(default_factory=dict)  # position -> epoch

    def add_audit(self, body: dict[str, Any]) -> None:
        source = body.get("source") or {}
        key = (str(source.get("topic")), int(source.get("partition", -1)), int(source.get("offset", -1)))
        self.audited.setdefault(key, body)

    def add_routed(self, body: dict[str, Any], seen_at: float) -> None:
        source = body.get("source") or {}
        key = (str(source.get("topic")), int(source.get("partition", -1)), int(source.get("offset", -1)))
        self.routed.setdefault(key, body)
        try:  # the router's own publish time; the engine's observation time only as a fallback
            routed_at = datetime.fromisoformat(str(body["routedAt"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            routed_at = seen_at
        self.routed_seen_at.setdefault(key, routed_at)


@dataclass
class RecordResult:
    position: int
    partition: int
    offset: int
    state: str
    reason: str
    submission_id: str | None = None
    challenge_id: str | None = None
    task_arn: str | None = None
    task_count: int = 0
    lifecycle_state: str | None = None
    exit_code: int | None = None
    report_status: str | None = None
    reviews: list[dict[str, Any]] = field(default_factory=list)
    duplicate_of: int | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "position": self.position,
            "kafka": {"partition": self.partition, "offset": self.offset},
            "submissionId": self.submission_id,
            "challengeId": self.challenge_id,
            "state": self.state,
            "reason": self.reason,
            "taskArn": self.task_arn,
            "tasksStarted": self.task_count,
            "lifecycleState": self.lifecycle_state,
            "exitCode": self.exit_code,
            "reportStatus": self.report_status,
            "sentToApi": self.reviews,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if self.duplicate_of is not None:
            data["duplicateOf"] = self.duplicate_of
        return data


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _review_summary(review: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "score", "status", "typeId", "reviewerId", "scoreCardId", "metadata", "createdBy")
    return {k: review[k] for k in keys if k in review}


def _lifecycle_state(record: LifecycleRecord, in_dlq: bool) -> tuple[str, str]:
    """(state, reason) of the record that owns the submission's lifecycle."""
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
    where = {
        SubmissionState.LAUNCHING: "launch in progress",
        SubmissionState.LAUNCH_FAILED: "launch failed, waiting for redelivery",
        SubmissionState.LAUNCHED: "task running, waiting for its STOPPED event",
    }.get(record.state, record.state.value)
    return PENDING, f"{where}{': ' + reason if reason else ''}"


_FINAL_LIFECYCLE = {SubmissionState.SUCCEEDED, SubmissionState.FAILED, SubmissionState.TIMED_OUT}
_REJECTED_STATUS = re.compile(r"\b([1-5]\d\d)\b")


def _rejected_reason(record: LifecycleRecord) -> str:
    """`report rejected (400): <API response>; outcome FAILED` from the recorded response summary."""
    response = record.report_response or ""
    found = _REJECTED_STATUS.search(response)
    status = f" ({found.group(1)})" if found else ""
    return f"report rejected{status}: {response or 'no response recorded'}; outcome {record.state.value}"


def classify(messages: Iterable[KafkaMessage], obs: Observations, *, feeding_done: bool) -> list[RecordResult]:
    messages = list(messages)
    results: dict[int, RecordResult] = {}
    routed_positions: dict[str, list[KafkaMessage]] = {}
    for message in messages:
        key = (message.topic, message.partition, message.offset)
        result = RecordResult(message.position, message.partition, message.offset, PENDING, "")
        results[message.position] = result
        fed = obs.first_invoked_at.get(message.position)
        audit = obs.audited.get(key)
        routed = obs.routed.get(key)
        if routed is not None:
            result.submission_id = routed.get("submissionId")
            result.challenge_id = routed.get("challengeId")
            if fed is not None:
                result.timings["route"] = obs.routed_seen_at.get(key, fed) - fed
            routed_positions.setdefault(str(result.submission_id), []).append(message)
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

    for submission_id, group in routed_positions.items():
        record = obs.lifecycle.get(submission_id)
        primary = min(group, key=lambda m: m.position)
        if record is not None and record.correlation_id:
            primary = next((m for m in group if m.correlation_id == record.correlation_id), primary)
        tasks = obs.tasks.get(submission_id, [])
        reviews = [_review_summary(r) for r in obs.reviews.get(submission_id, [])]
        for message in group:
            result = results[message.position]
            result.task_count = len(tasks)
            result.reviews = reviews
            if record is not None:
                result.task_arn = record.task_arn
                result.lifecycle_state = record.state.value
                result.exit_code = record.exit_code
                result.report_status = record.report_status.value if record.report_status else None
        main = results[primary.position]
        in_dlq = submission_id in obs.dead_letters
        if record is None:
            main.state, main.reason = (
                (DEAD_LETTERED, "message in the challenge DLQ (no lifecycle record)")
                if in_dlq
                else (PENDING, "routed, not yet claimed by the challenge processor")
            )
        else:
            main.state, main.reason = _lifecycle_state(record, in_dlq)
            fed = obs.first_invoked_at.get(primary.position)
            routed_at = fed + main.timings["route"] if fed is not None and "route" in main.timings else None
            launched, stopped = _epoch(record.launched_at), _epoch(record.stopped_at)
            done = _epoch(record.reported_at) or (stopped if record.state is SubmissionState.SUCCEEDED else None)
            if routed_at is not None and launched is not None:
                main.timings["launch"] = max(0.0, launched - routed_at)
            if launched is not None and stopped is not None:
                main.timings["run"] = max(0.0, stopped - launched)
            if stopped is not None and done is not None:
                main.timings["report"] = max(0.0, done - stopped)
            if fed is not None and main.final:
                end = done or _epoch(record.updated_at)
                if end is not None:
                    main.timings["endToEnd"] = max(0.0, end - fed)
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
    return [results[m.position] for m in messages]


def violations(results: list[RecordResult]) -> list[str]:
    """Exactly-once breaches: a submission with two tasks, or two reviews."""
    found: list[str] = []
    seen: set[str] = set()
    for result in results:
        if not result.submission_id or result.submission_id in seen or result.duplicate_of is not None:
            continue
        seen.add(result.submission_id)
        if result.task_count > 1:
            found.append(f"submission {result.submission_id} got {result.task_count} tasks")
        if len(result.reviews) > 1:
            found.append(f"submission {result.submission_id} got {len(result.reviews)} reviews")
    return found
