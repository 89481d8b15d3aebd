"""The synthetic submission of the smoke check (decision 083).

One fixed test submission (`EnvironmentConfig.smoke`) is published to the submissions topic exactly as the
router publishes a routed record (the `RoutedSubmission` body and the `challengeId` message attribute the
subscriptions filter on), then followed in the status table until it is final with its report settled, then its
status item is deleted so the next smoke can run the same submission (the challenge processor treats a submission
with a final item as a duplicate and would not launch it again).

Refuses to start while an earlier smoke of the same submission is still in flight (its item neither final nor
dead-lettered): two smokes would be one launch watched twice. A leftover that is finished (kept with `--keep`,
or dead-lettered) is deleted first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from infrastructure.config import SmokeSettings
from infrastructure.wiring import WiringPlan
from mm_shared.constants import STATUS_TABLE_PARTITION_KEY
from mm_shared.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_shared.models.routed import KafkaCoordinates, RoutedSubmission
from mm_shared.status_store import StatusStore
from operator_tools.clients import ClientSource
from operator_tools.health import submissions_topic_arn

# A report is settled when nothing will change it any more (REJECTED is settled, and a failed smoke).
SETTLED_REPORTS = frozenset({ReportStatus.NOT_REQUIRED, ReportStatus.REPORTED, ReportStatus.REJECTED})
# A passing smoke: scored, and the outcome reported (or, on success, reported by the scorer itself).
PASSING_REPORTS = frozenset({ReportStatus.NOT_REQUIRED, ReportStatus.REPORTED})
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
SMOKE_SUBMISSION_TYPE = "Contest Submission"


class SmokeNotConfiguredError(Exception):
    """No usable `smoke` block (none, or its challenge is not deployed and active): only the health checks run."""


class SmokeOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # the submission ended, but not scored and reported
    TIMED_OUT = "timed_out"  # not final (or its report not settled) within the timeout
    REFUSED = "refused"  # could not run: an earlier smoke is in flight, or the publish failed


class Leftover(StrEnum):
    """What an existing status item of the smoke submission means for a new smoke."""

    NONE = "none"
    FINISHED = "finished"  # final with its report settled, or dead-lettered: delete it, then run
    IN_FLIGHT = "in_flight"  # refuse


def is_settled(record: LifecycleRecord) -> bool:
    return record.state in FINAL_STATES and record.report_status in SETTLED_REPORTS


def leftover_of(record: LifecycleRecord | None) -> Leftover:
    if record is None:
        return Leftover.NONE
    if is_settled(record) or record.state is SubmissionState.DEAD_LETTERED:
        return Leftover.FINISHED
    return Leftover.IN_FLIGHT


def verdict_of(record: LifecycleRecord | None) -> SmokeOutcome:
    """PASSED only for a scored submission whose report went through."""
    if record is None or not (is_settled(record) or record.state is SubmissionState.DEAD_LETTERED):
        return SmokeOutcome.TIMED_OUT
    if record.state is SubmissionState.SUCCEEDED and record.report_status in PASSING_REPORTS:
        return SmokeOutcome.PASSED
    return SmokeOutcome.FAILED


@dataclass
class SmokeResult:
    environment: str
    submission_id: str
    challenge_id: str
    outcome: SmokeOutcome
    elapsed_seconds: float = 0.0
    state: str | None = None
    report_status: str | None = None
    reason: str | None = None
    report_response: str | None = None
    cleaned_up: bool = False
    detail: str = ""
    states_seen: list[str] = field(default_factory=list)  # each state the item passed through, in order

    @property
    def ok(self) -> bool:
        return self.outcome is SmokeOutcome.PASSED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value, "ok": self.ok}


def routed_submission(plan: WiringPlan, smoke: SmokeSettings, now: datetime) -> RoutedSubmission:
    """The smoke submission as the router would have routed it (its correlation id says it is a smoke)."""
    challenge = plan.config.challenge(smoke.challenge_id)
    source = KafkaCoordinates(
        topic=plan.kafka_source().topic, partition=0, offset=0, timestamp=int(now.timestamp() * 1000)
    )
    return RoutedSubmission(
        submission_id=smoke.submission_id,
        challenge_id=challenge.challenge_id,
        legacy_challenge_id=challenge.legacy_id,
        member_id=smoke.member_id,
        url=smoke.url,
        submission_type=SMOKE_SUBMISSION_TYPE,
        correlation_id=f"smoke-{plan.config.environment}-{now:%Y%m%dT%H%M%SZ}",
        source=source,
        routed_at=now,
    )


def publish_entry(routed: RoutedSubmission) -> dict[str, Any]:
    """One PublishBatch entry, built by the router's own publisher code (one source for the message shape)."""
    from router_lambda.publisher import OutboundMessage

    entry: dict[str, Any] = OutboundMessage(key=0, body=routed.to_json(), challenge_id=routed.challenge_id).entry()
    return entry


class SmokeRun:
    """Publish, follow, judge, clean up. Clock and sleep are parameters so a test never waits."""

    def __init__(
        self,
        plan: WiringPlan,
        clients: ClientSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        if plan.config.smoke is None:
            raise SmokeNotConfiguredError(
                f"environment {plan.config.environment} has no `smoke` block in its config: add one "
                "(challengeId, submissionId, memberId, url) or run with --health-only"
            )
        active = {c.challenge_id for c in plan.config.challenges if c.active}
        if plan.config.smoke.challenge_id not in active:
            raise SmokeNotConfiguredError(
                f"smoke.challengeId {plan.config.smoke.challenge_id} is not one of environment "
                f"{plan.config.environment}'s active challenges: the router would not route it"
            )
        self.plan = plan
        self.smoke: SmokeSettings = plan.config.smoke
        self.clients = clients
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.progress = progress
        self.store = StatusStore(plan.names.status_table, dynamodb_client=clients.client("dynamodb"))

    def _result(self, outcome: SmokeOutcome, **fields: Any) -> SmokeResult:
        return SmokeResult(
            environment=self.plan.config.environment,
            submission_id=self.smoke.submission_id,
            challenge_id=self.smoke.challenge_id,
            outcome=outcome,
            **fields,
        )

    def delete_item(self, record: LifecycleRecord) -> bool:
        """Delete the item only in the state we last saw it in: a smoke started meanwhile keeps its own."""
        try:
            self.clients.client("dynamodb").delete_item(
                TableName=self.plan.names.status_table,
                Key={STATUS_TABLE_PARTITION_KEY: {"S": self.smoke.submission_id}},
                ConditionExpression="#state = :state",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":state": {"S": record.state.value}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def run(
        self,
        *,
        timeout_seconds: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
        keep: bool = False,
    ) -> SmokeResult:
        timeout = float(timeout_seconds if timeout_seconds is not None else self.smoke.timeout_seconds)
        existing = self.store.get(self.smoke.submission_id)
        leftover = leftover_of(existing)
        if leftover is Leftover.IN_FLIGHT:
            assert existing is not None
            return self._result(
                SmokeOutcome.REFUSED,
                state=existing.state.value,
                report_status=existing.report_status.value if existing.report_status else None,
                detail=(
                    f"submission {self.smoke.submission_id} already has a status item in {existing.state.value} "
                    f"(report {existing.report_status.value if existing.report_status else 'none'}): an earlier "
                    "smoke is still in flight. Wait for it to end (`mm-processor status "
                    f"{self.smoke.submission_id} --env {self.plan.config.environment}`), then run again"
                ),
            )
        if leftover is Leftover.FINISHED:
            assert existing is not None
            self.progress(f"deleting the leftover status item of an earlier smoke ({existing.state.value})")
            if not self.delete_item(existing):
                return self._result(SmokeOutcome.REFUSED, detail="the leftover status item changed while deleting it")

        routed = routed_submission(self.plan, self.smoke, self.now())
        response = self.clients.client("sns").publish_batch(
            TopicArn=submissions_topic_arn(self.plan), PublishBatchRequestEntries=[publish_entry(routed)]
        )
        if response.get("Failed"):
            failure = response["Failed"][0]
            return self._result(
                SmokeOutcome.REFUSED, detail=f"SNS refused the message: {failure.get('Code')}: {failure.get('Message')}"
            )
        started = self.clock()
        self.progress(
            f"published submission {routed.submission_id} for challenge {routed.challenge_id} "
            f"(correlation id {routed.correlation_id}); waiting up to {timeout:.0f} s"
        )
        record, states = self._follow(started, timeout, poll_interval)
        elapsed = self.clock() - started
        outcome = verdict_of(record)
        result = self._result(
            outcome,
            elapsed_seconds=round(elapsed, 1),
            state=record.state.value if record else None,
            report_status=record.report_status.value if record and record.report_status else None,
            reason=record.reason if record else None,
            report_response=record.report_response if record else None,
            states_seen=states,
        )
        result.detail = self._describe(result)
        if record is not None and outcome is not SmokeOutcome.TIMED_OUT and not keep:
            result.cleaned_up = self.delete_item(record)
        elif outcome is SmokeOutcome.TIMED_OUT:
            # Deleting an item in flight would untrack its task: the sweeper would stop it as an orphan and the
            # outcome would be lost. It stays; the next smoke refuses until it has ended.
            result.detail += "; its status item is left in place (still in flight)"
        return result

    def _follow(self, started: float, timeout: float, poll_interval: float) -> tuple[LifecycleRecord | None, list[str]]:
        states: list[str] = []
        record: LifecycleRecord | None = None
        while True:
            record = self.store.get(self.smoke.submission_id)
            if record is not None:
                label = record.state.value + (f"/{record.report_status.value}" if record.report_status else "")
                if not states or states[-1] != label:
                    states.append(label)
                    self.progress(f"  {self.clock() - started:6.1f} s  {label}")
                if is_settled(record) or record.state is SubmissionState.DEAD_LETTERED:
                    return record, states
            if self.clock() - started >= timeout:
                return record, states
            self.sleep(poll_interval)

    def _describe(self, result: SmokeResult) -> str:
        if result.outcome is SmokeOutcome.PASSED:
            return (
                f"scored and reported in {result.elapsed_seconds:.1f} s ({result.state}, report {result.report_status})"
            )
        if result.outcome is SmokeOutcome.TIMED_OUT:
            where = result.state or "no status item yet (the challenge processor has not received it)"
            return f"not final with a settled report after {result.elapsed_seconds:.1f} s: {where}"
        why = result.reason or result.report_response or "no reason recorded"
        return f"ended {result.state} (report {result.report_status}) after {result.elapsed_seconds:.1f} s: {why}"
