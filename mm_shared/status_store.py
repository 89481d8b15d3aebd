"""The status table: lifecycle record *and* idempotency guard, through conditional writes.

One item per submission. Every transition is a conditional write, so duplicates and races resolve in
DynamoDB rather than in memory:

    (absent) --claim_launch--> LAUNCHING --mark_launched--> LAUNCHED --record_outcome--> SUCCEEDED
                                   |                                                   | FAILED
                                   +--mark_launch_failed--> LAUNCH_FAILED | DEAD_LETTERED  TIMED_OUT
                                                              (a redelivery may claim again)

Launch exactly once: a claim is granted only from "absent", from a *definite* launch failure (the attempt
number advances, so the RunTask clientToken changes), or from a LAUNCHING lease that expired (an
*ambiguous* crash: the attempt number and so the clientToken stay, and ECS returns the same task).
A live LAUNCHING lease, LAUNCHED, or a final state means the delivery is a duplicate.

Report exactly once: the outcome is recorded once per task; the report is claimed with a lease
(`reportStatus` PENDING -> REPORTING -> REPORTED | REJECTED). A claim whose `reportAttempt` is above 1
tells the caller an earlier attempt may have reached the API, so it must look before it posts.

Timeouts and lost STOPPED events: a LAUNCHED item carries `deadlineAt` (GSI `byStateDeadline`). The sweeper
stops an overdue task (`mark_stop_requested`: `stopRequestedAt`, deadline pushed out by a grace period). Still
LAUNCHED after the grace means its STOPPED event was not processed: the sweeper reconciles
(`mark_reconcile_requested`: deadline pushed again, `reconcileAttempt` + 1) and after a bounded number of
attempts gives up (`mark_reconcile_abandoned`: off the index, left for an operator). Only the outcome recorded
from a STOPPED event (real or synthesized) ever leaves LAUNCHED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mm_shared import aws
from mm_shared.constants import STATUS_TABLE_OVERDUE_INDEX, STATUS_TABLE_PARTITION_KEY
from mm_shared.models.lifecycle import (
    FINAL_STATES,
    LAUNCHABLE_STATES,
    LifecycleRecord,
    ReportStatus,
    SubmissionState,
)
from mm_shared.models.outcome import Outcome, OutcomeCode
from mm_shared.models.routed import RoutedSubmission

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_MAX_RACE_RETRIES = 3
_MAX_DETAIL = 500
# How long after StopTask the STOPPED event has to be processed before the sweeper reconciles (decision 008).
DEFAULT_RECONCILE_GRACE_SECONDS = 900


class LaunchDecision(StrEnum):
    GRANTED = "granted"
    DUPLICATE_IN_FLIGHT = "duplicate_in_flight"  # another delivery holds a live lease
    DUPLICATE_LAUNCHED = "duplicate_launched"  # a task was already started
    DUPLICATE_FINISHED = "duplicate_finished"  # the submission already has a final outcome


@dataclass(frozen=True)
class LaunchClaim:
    decision: LaunchDecision
    attempt: int
    record: LifecycleRecord | None = None

    @property
    def granted(self) -> bool:
        return self.decision is LaunchDecision.GRANTED


class OutcomeDecision(StrEnum):
    RECORDED = "recorded"  # first STOPPED event for this task
    ALREADY_RECORDED = "already_recorded"  # a duplicate event for the same task
    OTHER_TASK = "other_task"  # the item tracks a different task (stale event)


@dataclass(frozen=True)
class OutcomeRecordResult:
    decision: OutcomeDecision
    record: LifecycleRecord


@dataclass(frozen=True)
class ReportClaim:
    granted: bool
    attempt: int  # > 1: an earlier attempt may have reached the API; check before posting
    report_status: ReportStatus | None


def _now_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class StatusStore:
    def __init__(
        self,
        table_name: str,
        *,
        ttl_days: int = 90,
        clock: Callable[[], float] = time.time,
        dynamodb_client: Any | None = None,
    ) -> None:
        self._table = table_name
        self._ttl_seconds = ttl_days * 86_400
        self._clock = clock
        self._client = dynamodb_client

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    def _key(self, submission_id: str) -> dict[str, Any]:
        return {STATUS_TABLE_PARTITION_KEY: {"S": submission_id}}

    @staticmethod
    def _values(values: dict[str, Any]) -> dict[str, Any]:
        return {name: _serializer.serialize(value) for name, value in values.items()}

    def _history_entry(self, now: float, state: str, detail: str) -> list[dict[str, str]]:
        return [{"at": _now_iso(now), "state": state, "detail": detail[:_MAX_DETAIL]}]

    def get(self, submission_id: str) -> LifecycleRecord | None:
        response = self.client.get_item(TableName=self._table, Key=self._key(submission_id), ConsistentRead=True)
        item = response.get("Item")
        return self._to_record(item) if item else None

    @staticmethod
    def _to_record(item: dict[str, Any]) -> LifecycleRecord:
        plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
        return LifecycleRecord.model_validate(_plain_numbers(plain))

    def _update(
        self,
        submission_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        *,
        return_old: bool = False,
    ) -> dict[str, Any] | None:
        """Conditional UpdateItem; returns None when the condition failed."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(submission_id),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": self._values(values),
            "ReturnValues": "ALL_OLD" if return_old else "ALL_NEW",
        }
        if "#state" in update or "#state" in condition:
            request["ExpressionAttributeNames"] = {"#state": "state"}  # `state` is a reserved word
        try:
            response = self.client.update_item(**request)
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        return response.get("Attributes", {})

    # ------------------------------------------------------------------ challenge processor
    def claim_launch(self, submission: RoutedSubmission, *, scorer_type: str, lease_seconds: int) -> LaunchClaim:
        """Claim the right to call RunTask for this submission (see the module docstring)."""
        for _ in range(_MAX_RACE_RETRIES):
            now = self._clock()
            created = self._create_launching(submission, scorer_type, now, lease_seconds)
            if created:
                return LaunchClaim(LaunchDecision.GRANTED, attempt=1)
            record = self.get(submission.submission_id)
            if record is None:
                continue  # expired by TTL between the two calls: create again
            decision, next_attempt = self._decide_launch(record, now)
            if decision is not LaunchDecision.GRANTED:
                return LaunchClaim(decision, attempt=record.launch_attempt, record=record)
            if self._reclaim_launching(record, next_attempt, now, lease_seconds):
                return LaunchClaim(LaunchDecision.GRANTED, attempt=next_attempt, record=record)
        # Lost the race every time: another delivery is working on it right now.
        return LaunchClaim(LaunchDecision.DUPLICATE_IN_FLIGHT, attempt=0)

    def _create_launching(self, submission: RoutedSubmission, scorer_type: str, now: float, lease_seconds: int) -> bool:
        item = {
            STATUS_TABLE_PARTITION_KEY: submission.submission_id,
            "challengeId": submission.challenge_id,
            "state": SubmissionState.LAUNCHING.value,
            "correlationId": submission.correlation_id,
            "memberId": submission.member_id,
            "scorerType": scorer_type,
            "launchAttempt": 1,
            "leaseUntil": int(now) + lease_seconds,
            "createdAt": _now_iso(now),
            "updatedAt": _now_iso(now),
            "expiresAt": int(now) + self._ttl_seconds,
            "history": self._history_entry(now, SubmissionState.LAUNCHING, "claimed for launch, attempt 1"),
        }
        try:
            self.client.put_item(
                TableName=self._table,
                Item=self._values(item),
                ConditionExpression=f"attribute_not_exists({STATUS_TABLE_PARTITION_KEY})",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    @staticmethod
    def _decide_launch(record: LifecycleRecord, now: float) -> tuple[LaunchDecision, int]:
        if record.state in FINAL_STATES:
            return LaunchDecision.DUPLICATE_FINISHED, record.launch_attempt
        if record.state is SubmissionState.LAUNCHED:
            return LaunchDecision.DUPLICATE_LAUNCHED, record.launch_attempt
        if record.state in LAUNCHABLE_STATES:
            return LaunchDecision.GRANTED, record.launch_attempt + 1  # definite failure: new token
        # LAUNCHING: in flight unless its lease expired (ambiguous crash: same attempt, same token)
        if record.lease_until is not None and record.lease_until < now:
            return LaunchDecision.GRANTED, record.launch_attempt
        return LaunchDecision.DUPLICATE_IN_FLIGHT, record.launch_attempt

    def _reclaim_launching(self, record: LifecycleRecord, attempt: int, now: float, lease_seconds: int) -> bool:
        detail = (
            f"re-claimed after expired lease, attempt {attempt} (same clientToken)"
            if record.state is SubmissionState.LAUNCHING
            else f"re-claimed after {record.state.value}, attempt {attempt}"
        )
        updated = self._update(
            record.submission_id,
            "SET #state = :launching, launchAttempt = :attempt, leaseUntil = :lease, updatedAt = :now, "
            "history = list_append(if_not_exists(history, :empty), :entry)",
            "#state = :observed_state AND launchAttempt = :observed_attempt",
            {
                ":launching": SubmissionState.LAUNCHING.value,
                ":attempt": attempt,
                ":lease": int(now) + lease_seconds,
                ":now": _now_iso(now),
                ":empty": [],
                ":entry": self._history_entry(now, SubmissionState.LAUNCHING, detail),
                ":observed_state": record.state.value,
                ":observed_attempt": record.launch_attempt,
            },
        )
        return updated is not None

    def mark_launched(
        self,
        submission_id: str,
        *,
        attempt: int,
        task_arn: str,
        cluster_arn: str,
        timeout_seconds: int,
    ) -> bool:
        """LAUNCHING -> LAUNCHED. False when the STOPPED event already overtook us (kept as is)."""
        now = self._clock()
        updated = self._update(
            submission_id,
            "SET #state = :launched, taskArn = :task, clusterArn = :cluster, launchedAt = :now, "
            "updatedAt = :now, deadlineAt = :deadline, history = list_append(history, :entry) "
            "REMOVE leaseUntil",
            "#state = :launching AND launchAttempt = :attempt",
            {
                ":launched": SubmissionState.LAUNCHED.value,
                ":launching": SubmissionState.LAUNCHING.value,
                ":attempt": attempt,
                ":task": task_arn,
                ":cluster": cluster_arn,
                ":now": _now_iso(now),
                ":deadline": int(now) + timeout_seconds,
                ":entry": self._history_entry(now, SubmissionState.LAUNCHED, task_arn),
            },
        )
        return updated is not None

    def mark_launch_failed(self, submission_id: str, *, attempt: int, reason: str, dead_lettered: bool) -> bool:
        """LAUNCHING -> LAUNCH_FAILED (the message will be retried) or DEAD_LETTERED (last receive)."""
        now = self._clock()
        state = SubmissionState.DEAD_LETTERED if dead_lettered else SubmissionState.LAUNCH_FAILED
        updated = self._update(
            submission_id,
            "SET #state = :state, reason = :reason, updatedAt = :now, "
            "history = list_append(history, :entry) REMOVE leaseUntil",
            "#state = :launching AND launchAttempt = :attempt",
            {
                ":state": state.value,
                ":launching": SubmissionState.LAUNCHING.value,
                ":attempt": attempt,
                ":reason": reason[:_MAX_DETAIL],
                ":now": _now_iso(now),
                ":entry": self._history_entry(now, state, reason),
            },
        )
        return updated is not None

    # ------------------------------------------------------------------ completion handler
    def record_outcome(
        self,
        submission_id: str,
        challenge_id: str,
        outcome: Outcome,
        *,
        report_required: bool,
        stopped_at: datetime | None = None,
    ) -> OutcomeRecordResult:
        """Record the task's final state once; a duplicate STOPPED event finds it already recorded."""
        now = self._clock()
        state = SubmissionState(outcome.code.value)
        report_status = ReportStatus.PENDING if report_required else ReportStatus.NOT_REQUIRED
        values: dict[str, Any] = {
            ":state": state.value,
            ":task": outcome.task_arn,
            ":stop_code": outcome.stop_code or "",
            ":reason": outcome.reason[:_MAX_DETAIL],
            ":stopped": (stopped_at.isoformat() if stopped_at else _now_iso(now)),
            ":now": _now_iso(now),
            ":expires": int(now) + self._ttl_seconds,
            ":report": report_status.value,
            ":empty": [],
            ":entry": self._history_entry(now, state, outcome.reason),
            ":launched": SubmissionState.LAUNCHED.value,
            ":launching": SubmissionState.LAUNCHING.value,
        }
        exit_code_clause = ""
        if outcome.exit_code is not None:
            values[":exit"] = outcome.exit_code
            exit_code_clause = ", exitCode = :exit"
        updated = self._update(
            submission_id,
            "SET #state = :state, taskArn = :task, stopCode = :stop_code, reason = :reason, "
            f"stoppedAt = :stopped, updatedAt = :now, expiresAt = :expires, reportStatus = :report{exit_code_clause}, "
            "history = list_append(if_not_exists(history, :empty), :entry) REMOVE deadlineAt, leaseUntil",
            "(#state = :launched OR #state = :launching) AND (attribute_not_exists(taskArn) OR taskArn = :task)",
            values,
        )
        if updated is not None:
            return OutcomeRecordResult(OutcomeDecision.RECORDED, self._to_record(updated))
        record = self.get(submission_id)
        if record is None:
            # The task is ours (startedBy matched) but its item is gone (TTL, manual cleanup):
            # record it anyway so the outcome is still reported, never left "in queue forever".
            created = self._create_final(submission_id, challenge_id, outcome, state, report_status, now, stopped_at)
            if created is not None:
                return OutcomeRecordResult(OutcomeDecision.RECORDED, created)
            record = self.get(submission_id)
            assert record is not None
        if record.task_arn == outcome.task_arn and record.state in FINAL_STATES:
            return OutcomeRecordResult(OutcomeDecision.ALREADY_RECORDED, record)
        return OutcomeRecordResult(OutcomeDecision.OTHER_TASK, record)

    def _create_final(
        self,
        submission_id: str,
        challenge_id: str,
        outcome: Outcome,
        state: SubmissionState,
        report_status: ReportStatus,
        now: float,
        stopped_at: datetime | None = None,
    ) -> LifecycleRecord | None:
        item: dict[str, Any] = {
            STATUS_TABLE_PARTITION_KEY: submission_id,
            "challengeId": challenge_id,
            "state": state.value,
            "launchAttempt": 0,
            "taskArn": outcome.task_arn,
            "stopCode": outcome.stop_code or "",
            "reason": outcome.reason[:_MAX_DETAIL],
            "reportStatus": report_status.value,
            "createdAt": _now_iso(now),
            "updatedAt": _now_iso(now),
            "stoppedAt": stopped_at.isoformat() if stopped_at else _now_iso(now),
            "expiresAt": int(now) + self._ttl_seconds,
            "history": self._history_entry(now, state, f"no prior record; {outcome.reason}"),
        }
        if outcome.exit_code is not None:
            item["exitCode"] = outcome.exit_code
        try:
            self.client.put_item(
                TableName=self._table,
                Item=self._values(item),
                ConditionExpression=f"attribute_not_exists({STATUS_TABLE_PARTITION_KEY})",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        return self._to_record(self._values(item))

    def claim_report(self, submission_id: str, *, lease_seconds: int) -> ReportClaim:
        """PENDING (or an expired REPORTING lease) -> REPORTING. Not granted: reported, rejected, busy."""
        now = self._clock()
        old = self._update(
            submission_id,
            "SET reportStatus = :reporting, reportLeaseUntil = :lease, updatedAt = :now ADD reportAttempt :one",
            "reportStatus = :pending OR (reportStatus = :reporting AND reportLeaseUntil < :now_epoch)",
            {
                ":reporting": ReportStatus.REPORTING.value,
                ":pending": ReportStatus.PENDING.value,
                ":lease": int(now) + lease_seconds,
                ":now": _now_iso(now),
                ":now_epoch": int(now),
                ":one": 1,
            },
            return_old=True,
        )
        if old is None:
            record = self.get(submission_id)
            return ReportClaim(False, 0, record.report_status if record else None)
        previous_attempts = int(_deserializer.deserialize(old["reportAttempt"])) if "reportAttempt" in old else 0
        return ReportClaim(True, previous_attempts + 1, ReportStatus.REPORTING)

    def _finish_report(self, submission_id: str, status: ReportStatus, response_summary: str) -> bool:
        now = self._clock()
        updated = self._update(
            submission_id,
            "SET reportStatus = :status, reportResponse = :response, reportedAt = :now, updatedAt = :now, "
            "history = list_append(history, :entry) REMOVE reportLeaseUntil",
            "reportStatus = :reporting",
            {
                ":status": status.value,
                ":reporting": ReportStatus.REPORTING.value,
                ":response": response_summary[:_MAX_DETAIL],
                ":now": _now_iso(now),
                ":entry": self._history_entry(now, f"REPORT_{status.value}", response_summary),
            },
        )
        return updated is not None

    def mark_reported(self, submission_id: str, *, response_summary: str) -> bool:
        return self._finish_report(submission_id, ReportStatus.REPORTED, response_summary)

    def mark_report_rejected(self, submission_id: str, *, response_summary: str) -> bool:
        return self._finish_report(submission_id, ReportStatus.REJECTED, response_summary)

    def release_report(self, submission_id: str) -> bool:
        """REPORTING -> PENDING after a transient failure, so the retried invocation can claim at once."""
        updated = self._update(
            submission_id,
            "SET reportStatus = :pending REMOVE reportLeaseUntil",
            "reportStatus = :reporting",
            {":pending": ReportStatus.PENDING.value, ":reporting": ReportStatus.REPORTING.value},
        )
        return updated is not None

    # ------------------------------------------------------------------ timeout sweeper
    def find_overdue(self, *, limit: int = 100) -> list[LifecycleRecord]:
        """LAUNCHED items whose deadline passed (GSI `byStateDeadline`)."""
        response = self.client.query(
            TableName=self._table,
            IndexName=STATUS_TABLE_OVERDUE_INDEX,
            KeyConditionExpression="#state = :launched AND deadlineAt < :now",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=self._values(
                {":launched": SubmissionState.LAUNCHED.value, ":now": int(self._clock())}
            ),
            Limit=limit,
        )
        return [self._to_record(item) for item in response.get("Items", [])]

    def mark_stop_requested(
        self, submission_id: str, *, task_arn: str, reason: str, grace_seconds: int = DEFAULT_RECONCILE_GRACE_SECONDS
    ) -> bool:
        """StopTask was sent: record it and push the deadline `grace_seconds` out.

        The STOPPED event normally takes the item out of LAUNCHED (and off the overdue index) well
        within the grace; if it is still overdue afterwards, the sweeper reconciles it (decision 008).
        """
        now = self._clock()
        updated = self._update(
            submission_id,
            "SET stopRequestedAt = :now, deadlineAt = :deadline, updatedAt = :now, "
            "history = list_append(history, :entry)",
            "#state = :launched AND taskArn = :task",
            {
                ":launched": SubmissionState.LAUNCHED.value,
                ":task": task_arn,
                ":now": _now_iso(now),
                ":deadline": int(now) + grace_seconds,
                ":entry": self._history_entry(now, "STOP_REQUESTED", reason),
            },
        )
        return updated is not None

    def mark_reconcile_requested(self, submission_id: str, *, task_arn: str, grace_seconds: int, detail: str) -> bool:
        """One reconciliation attempt was made (synthetic STOPPED event sent, or StopTask repeated).

        Pushes the deadline `grace_seconds` out again and counts the attempt in `reconcileAttempt`.
        """
        now = self._clock()
        updated = self._update(
            submission_id,
            "SET deadlineAt = :deadline, updatedAt = :now, history = list_append(history, :entry) "
            "ADD reconcileAttempt :one",
            "#state = :launched AND taskArn = :task",
            {
                ":launched": SubmissionState.LAUNCHED.value,
                ":task": task_arn,
                ":now": _now_iso(now),
                ":deadline": int(now) + grace_seconds,
                ":one": 1,
                ":entry": self._history_entry(now, "RECONCILE_REQUESTED", detail),
            },
        )
        return updated is not None

    def mark_reconcile_abandoned(self, submission_id: str, *, task_arn: str, detail: str) -> bool:
        """The sweeper gave up: take the item off the overdue index (it stays LAUNCHED for an operator).

        Without this a given-up item would be overdue forever and fill every sweep's query page.
        """
        now = self._clock()
        updated = self._update(
            submission_id,
            "SET updatedAt = :now, history = list_append(history, :entry) REMOVE deadlineAt",
            "#state = :launched AND taskArn = :task",
            {
                ":launched": SubmissionState.LAUNCHED.value,
                ":task": task_arn,
                ":now": _now_iso(now),
                ":entry": self._history_entry(now, "RECONCILE_GAVE_UP", detail),
            },
        )
        return updated is not None


def _plain_numbers(value: Any) -> Any:
    """DynamoDB numbers deserialize as Decimal; the models want int/float."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


__all__ = [
    "LaunchClaim",
    "LaunchDecision",
    "OutcomeCode",
    "OutcomeDecision",
    "OutcomeRecordResult",
    "ReportClaim",
    "StatusStore",
]
