"""What the tracker decides, as data: the report's final states, what was observed (`Observations`), and each
record's and run's result (`RecordResult`, `RunResult`, with their report form). `tracker` fills them in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.phase import ScoringPhase

SCORED = "scored"
FAILED_REPORTED = "failed-reported"
TIMED_OUT = "timed-out"
SKIPPED = "skipped"
REJECTED = "rejected"
DEAD_LETTERED = "dead-lettered"
REPORT_REJECTED = "report-rejected"  # final by design: the API answered 400/404, the report is not retried
CANCELLED = "cancelled"  # superseded by the member's newer submission (decision 095)
PENDING = "pending"
# The final states of a record or run in the report (not the lifecycle record's: mm_contracts.models.lifecycle
# FINAL_STATES are SubmissionState values; these are the report's words for where a Kafka record ended).
REPORT_FINAL_STATES = (SCORED, FAILED_REPORTED, TIMED_OUT, CANCELLED, SKIPPED, REJECTED, DEAD_LETTERED, REPORT_REJECTED)


Coordinates = tuple[str, int, int]  # topic, partition, offset


@dataclass
class Observations:
    audited: dict[Coordinates, dict[str, Any]] = field(default_factory=dict)  # AuditRecord (wire form)
    routed: dict[Coordinates, dict[str, Any]] = field(default_factory=dict)  # RoutedSubmission (wire form)
    routed_seen_at: dict[Coordinates, float] = field(default_factory=dict)
    router_failed: set[tuple[str, int]] = field(default_factory=set)  # ("topic-partition", offset)
    lifecycle: dict[str, LifecycleRecord] = field(default_factory=dict)  # by run id
    # DLQ bodies: run id (a body naming its phase) or submission id -> challenge id
    dead_letters: dict[str, str] = field(default_factory=dict)
    reviews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # v5 reviews by submission id
    summations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # v6 review summations by run id
    summation_posts: dict[str, int] = field(default_factory=dict)  # run id -> POST /reviewSummations answered 2xx
    tasks: dict[str, list[str]] = field(default_factory=dict)  # run id (or submission id: no phase) -> task ARNs
    # challenge id -> the phases a new submission triggers (the challenge config's onSubmission phases)
    expected_phases: dict[str, tuple[ScoringPhase, ...]] = field(default_factory=dict)
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

    def runs_by_submission(self) -> dict[str, list[LifecycleRecord]]:
        grouped: dict[str, list[LifecycleRecord]] = {}
        for record in self.lifecycle.values():
            grouped.setdefault(record.submission_id, []).append(record)
        return grouped


@dataclass
class RunResult:
    """One run (submission, phase) of a routed record: its own final state, tasks and reports."""

    run_id: str
    phase: str
    state: str
    reason: str
    task_arn: str | None = None
    task_count: int = 0
    lifecycle_state: str | None = None
    exit_code: int | None = None
    report_status: str | None = None
    reviews: list[dict[str, Any]] = field(default_factory=list)  # v5 reviews or v6 summations of this run
    summation_posts: int = 0
    launched_at: float | None = None
    stopped_at: float | None = None
    done_at: float | None = None
    updated_at: float | None = None
    challenge_id: str | None = None
    enqueued_at: int | None = None  # capacity: when the run entered it (epoch s; a direct launch too), None if never
    admitted_at: int | None = None  # when its slot was reserved

    @property
    def waited_seconds(self) -> int | None:
        """How long the run waited for a slot (admission - enqueue), None when it was never admitted."""
        if self.enqueued_at is None or self.admitted_at is None:
            return None
        return max(0, self.admitted_at - self.enqueued_at)

    @property
    def final(self) -> bool:
        return self.state in REPORT_FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "phase": self.phase,
            "state": self.state,
            "reason": self.reason,
            "taskArn": self.task_arn,
            "tasksStarted": self.task_count,
            "lifecycleState": self.lifecycle_state,
            "exitCode": self.exit_code,
            "reportStatus": self.report_status,
            "waitedSeconds": self.waited_seconds,
            "sentToApi": self.reviews,
        }


@dataclass
class RecordResult:
    position: int
    partition: int
    offset: int
    state: str
    reason: str
    submission_id: str | None = None
    challenge_id: str | None = None
    platform: str | None = None
    task_arn: str | None = None  # of the first run (launch order)
    task_count: int = 0  # over every run
    lifecycle_state: str | None = None  # of the first run
    exit_code: int | None = None
    report_status: str | None = None
    reviews: list[dict[str, Any]] = field(default_factory=list)  # over every run
    runs: list[RunResult] = field(default_factory=list)  # launch order (SYSTEM, PROVISIONAL, EXAMPLE)
    duplicate_of: int | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    @property
    def final(self) -> bool:
        return self.state in REPORT_FINAL_STATES

    def run(self, phase: ScoringPhase | str) -> RunResult | None:
        return next((r for r in self.runs if r.phase == ScoringPhase(phase).value), None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "position": self.position,
            "kafka": {"partition": self.partition, "offset": self.offset},
            "submissionId": self.submission_id,
            "challengeId": self.challenge_id,
            "platform": self.platform,
            "state": self.state,
            "reason": self.reason,
            "taskArn": self.task_arn,
            "tasksStarted": self.task_count,
            "lifecycleState": self.lifecycle_state,
            "exitCode": self.exit_code,
            "reportStatus": self.report_status,
            "sentToApi": self.reviews,
            "runs": [r.to_dict() for r in self.runs],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if self.duplicate_of is not None:
            data["duplicateOf"] = self.duplicate_of
        return data
