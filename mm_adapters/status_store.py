"""The status table: lifecycle record *and* idempotency guard, through conditional writes.

One item per run: `runId` = `<submissionId>#<PHASE>` (decision 084), so the phases of one submission are
independent items (their own claims, tasks, outcomes and reports); `get_runs` reads a submission's runs.
Every transition is a conditional write, so duplicates and races resolve in
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

Timeouts and lost STOPPED events: a LAUNCHED item carries `timeoutAt` and `deadlineAt` (GSI `byStateDeadline`: the
earlier of the timeout and the next liveness check). The sweeper describes a due task first: running before its
timeout -> `mark_liveness_checked`; past it -> StopTask and `mark_stop_requested` (`stopRequestedAt`, deadline
pushed out by a grace period); stopped and its event lost -> a synthetic event and `mark_reconcile_requested`
(deadline pushed again, `reconcileAttempt` + 1), and after a bounded number of attempts it gives up
(`mark_reconcile_abandoned`: off the index, left for an operator). Only the outcome recorded from a STOPPED event
(real or synthesized) ever leaves LAUNCHED. The sweeper also adopts the running task of an unconfirmed launch
(`adopt_task`), dead-letters launches that can no longer be confirmed (`mark_launch_stuck`) and re-drives
unfinished reports (`mark_report_redriven`, `clear_deadline`) and unsent relaunches (`mark_relaunch_redriven`);
decisions 071, 073, 080.

Unstartable v6 runs (decision 086): a v6 run dead-lettered *definitely* (its launch is known to have started no
task) gets its terminal report due in the same write (`reportStatus` PENDING, `testStatus` FAILED, `deadlineAt`),
so the member sees a FAILED summation instead of "in queue"; v5 and ambiguous dead-letters wait for an operator.
A redrive claims it again and clears that report (never while its lease is live), so the new attempt's outcome is
reported afresh.

Ambiguity (decision 070): `launchAmbiguous` is set when a RunTask of the current attempt may have started a task
(`mark_launch_outcome_unknown`, or a re-claim of a vanished holder's lease). While it is set every claim keeps the
attempt, so the clientToken, and ECS answers with the task the first call started; only `failures[]` or a recorded
launch clear it. A re-claim is conditioned on the lease the delivery observed. `record_outcome` settles an item
only for the task it tracks or, from LAUNCHING, for the attempt it is on, and never creates an item (076).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mm_adapters import aws
from mm_contracts.models.lifecycle import (
    CLAIMABLE_STATES,
    FINAL_STATES,
    LAUNCHABLE_STATES,
    LifecycleRecord,
    ReportStatus,
    SubmissionState,
)
from mm_contracts.models.outcome import Outcome, OutcomeCode, TestStatus
from mm_contracts.models.phase import Platform, RunKey, ScoringPhase, run_ids_of
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import STATUS_TABLE_OVERDUE_INDEX, STATUS_TABLE_PARTITION_KEY

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_MAX_RACE_RETRIES = 3
_MAX_DETAIL = 500
# How long after StopTask the STOPPED event has to be processed before the sweeper reconciles (decision 008).
DEFAULT_RECONCILE_GRACE_SECONDS = 900
# The sweeper looks at every LAUNCHED item at least this often (describe first), not only at its timeout:
# ECS forgets a stopped task after about an hour (decision 073).
DEFAULT_LIVENESS_CHECK_SECONDS = 900
# BatchGetItem: at most 100 keys a call; a partition key is at most 2048 bytes (ours are far shorter).
_BATCH_GET_KEYS = 100
_MAX_BATCH_ROUNDS = 5
_MAX_KEY_BYTES = 1024
# How long after a failed delivery SQS can still redeliver the message (visibility 180 s x 3 receives,
# with margin): a LAUNCH_FAILED item still untouched after this is stuck (decision 080).
DEFAULT_MESSAGE_LIFETIME_SECONDS = 900
# A run's report, as a redrive claim of a dead-lettered run clears it (decision 086).
REPORT_ATTRIBUTES = (
    "reportStatus",
    "reportLeaseUntil",
    "reportAttempt",
    "reportResponse",
    "reportAmbiguousAt",
    "reportRetryAttempt",
    "reportedAt",
    "testStatus",
)


class LaunchDecision(StrEnum):
    GRANTED = "granted"
    DUPLICATE_IN_FLIGHT = "duplicate_in_flight"  # another delivery holds a live lease
    DUPLICATE_LAUNCHED = "duplicate_launched"  # a task was already started
    DUPLICATE_FINISHED = "duplicate_finished"  # the submission already has a final outcome
    WAITING = "waiting"  # the run waits for a capacity slot: no launch without one (the dispatcher admits it)


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
    STALE_TASK = "stale_task"  # the item is LAUNCHING on another attempt: an older attempt's task stopped
    UNKNOWN_SUBMISSION = "unknown_submission"  # no item: the pipeline never launched this submission


@dataclass(frozen=True)
class OutcomeRecordResult:
    decision: OutcomeDecision
    record: LifecycleRecord | None  # None only for UNKNOWN_SUBMISSION


@dataclass(frozen=True)
class DeadLetterResult:
    """What a launch-failure write did. Truthy when it was recorded (the bool the callers test).

    `report_due`: a v6 run dead-lettered *definitely* (no task can have started) got its terminal report due in
    the same write (decision 086): the caller hands it to the completion function, the sweeper re-drives it.
    """

    recorded: bool
    report_due: bool = False

    def __bool__(self) -> bool:
        return self.recorded


@dataclass(frozen=True)
class ReportClaim:
    granted: bool
    attempt: int  # > 1: an earlier attempt may have reached the API; check before posting
    report_status: ReportStatus | None
    # epoch s: the latest moment an earlier attempt may have reached the API (an ambiguous POST, or the end of
    # an expired lease whose holder died); a slow commit may land until some time after it (decision 074)
    ambiguous_at: int | None = None


class RelaunchDecision(StrEnum):
    GRANTED = "granted"  # LAUNCHED -> LAUNCH_FAILED for this task: send the relaunch
    RESEND = "resend"  # already LAUNCH_FAILED for this task, relaunch not yet sent (an earlier crash): send it
    ALREADY_SENT = "already_sent"  # a duplicate event: the relaunch was sent
    NOT_ELIGIBLE = "not_eligible"  # bound reached, no routed message, or the item does not track this task


@dataclass(frozen=True)
class RelaunchClaim:
    decision: RelaunchDecision
    record: LifecycleRecord | None = None


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

    def _key(self, run_id: str) -> dict[str, Any]:
        return {STATUS_TABLE_PARTITION_KEY: {"S": run_id}}

    @staticmethod
    def _values(values: dict[str, Any]) -> dict[str, Any]:
        return {name: _serializer.serialize(value) for name, value in values.items()}

    def _history_entry(self, now: float, state: str, detail: str) -> list[dict[str, str]]:
        return [{"at": _now_iso(now), "state": state, "detail": detail[:_MAX_DETAIL]}]

    def get(self, run_id: str) -> LifecycleRecord | None:
        response = self.client.get_item(TableName=self._table, Key=self._key(run_id), ConsistentRead=True)
        item = response.get("Item")
        return self.record_from_item(item) if item else None

    @staticmethod
    def record_from_item(item: dict[str, Any]) -> LifecycleRecord:
        """A status item as DynamoDB returns it (attribute values) as a record: for readers that scan the table."""
        plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
        return LifecycleRecord.model_validate(_plain_numbers(plain))

    def _update(
        self,
        run_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        *,
        return_old: bool = False,
    ) -> dict[str, Any] | None:
        """Conditional UpdateItem; returns None when the condition failed."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(run_id),
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
    def claim_launch(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        lease_seconds: int,
        timeout_seconds: int | None = None,
    ) -> LaunchClaim:
        """Claim the right to call RunTask for this run (submission, phase) (see the module docstring)."""
        key = RunKey(submission.submission_id, phase)
        for _ in range(_MAX_RACE_RETRIES):
            now = self._clock()
            created = self._create_launching(submission, key, scorer_type, now, lease_seconds, timeout_seconds)
            if created:
                return LaunchClaim(LaunchDecision.GRANTED, attempt=1)
            record = self.get(key.run_id)
            if record is None:
                continue  # expired by TTL between the two calls: create again
            decision, next_attempt = self._decide_launch(record, now)
            if decision is not LaunchDecision.GRANTED:
                return LaunchClaim(decision, attempt=record.launch_attempt, record=record)
            if self._reclaim_launching(record, next_attempt, now, lease_seconds, timeout_seconds):
                return LaunchClaim(LaunchDecision.GRANTED, attempt=next_attempt, record=record)
        # Lost the race every time: another delivery is working on it right now.
        return LaunchClaim(LaunchDecision.DUPLICATE_IN_FLIGHT, attempt=0)

    def _run_identity(self, submission: RoutedSubmission, key: RunKey) -> dict[str, Any]:
        """The attributes that name a run: its key, and the submission and phase it is a run of (decision 084)."""
        return {
            STATUS_TABLE_PARTITION_KEY: key.run_id,
            "submissionId": key.submission_id,
            "phase": key.phase.value,
            "platform": submission.platform.value,
            "challengeId": submission.challenge_id,
        }

    def _create_item(self, item: dict[str, Any]) -> bool:
        """PutItem only while no item has this run id; False when one exists (nothing written)."""
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

    def _create_launching(
        self,
        submission: RoutedSubmission,
        key: RunKey,
        scorer_type: str,
        now: float,
        lease_seconds: int,
        timeout_seconds: int | None,
    ) -> bool:
        item: dict[str, Any] = {
            **self._run_identity(submission, key),
            "state": SubmissionState.LAUNCHING.value,
            "correlationId": submission.correlation_id,
            "memberId": submission.member_id,
            "scorerType": scorer_type,
            "launchAttempt": 1,
            "leaseUntil": int(now) + lease_seconds,
            # The sweeper finds a LAUNCHING item whose lease expired and that no delivery re-claimed.
            "deadlineAt": int(now) + lease_seconds,
            "launchAmbiguous": False,
            "routedMessage": submission.to_json(),
            "createdAt": _now_iso(now),
            "updatedAt": _now_iso(now),
            "expiresAt": int(now) + self._ttl_seconds,
            "history": self._history_entry(now, SubmissionState.LAUNCHING, "claimed for launch, attempt 1"),
        }
        if timeout_seconds is not None:
            item["timeoutSeconds"] = timeout_seconds
        return self._create_item(item)

    def record_skipped(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        reason: str,
        report_due_in_seconds: int = 0,
    ) -> bool:
        """A run the pipeline will not score (decision 086): created FAILED with its reason, no task, report PENDING.

        `deadlineAt` = now + `report_due_in_seconds`: if nobody reports it, the sweeper re-drives the report. Only
        while the run has no item: False for a duplicate (or a run that was launched), and nothing is written.
        """
        now = self._clock()
        key = RunKey(submission.submission_id, phase)
        reason = reason[:_MAX_DETAIL]
        item: dict[str, Any] = {
            **self._run_identity(submission, key),
            "state": SubmissionState.FAILED.value,
            "correlationId": submission.correlation_id,
            "memberId": submission.member_id,
            "scorerType": scorer_type,
            "launchAttempt": 0,
            "launchAmbiguous": False,
            "reason": reason,
            "testStatus": TestStatus.FAILED.value,
            "reportStatus": ReportStatus.PENDING.value,
            "deadlineAt": int(now) + report_due_in_seconds,
            "routedMessage": submission.to_json(),
            "createdAt": _now_iso(now),
            "updatedAt": _now_iso(now),
            "stoppedAt": _now_iso(now),
            "expiresAt": int(now) + self._ttl_seconds,
            "history": self._history_entry(now, "SKIPPED", f"SKIPPED: {reason}"),
        }
        return self._create_item(item)

    def get_runs(self, submission_id: str) -> list[LifecycleRecord]:
        """Every run of a submission that has an item, in phase order (EXAMPLE, PROVISIONAL, SYSTEM)."""
        run_ids = run_ids_of(submission_id)
        found = self.get_many(run_ids)
        return [found[run_id] for run_id in run_ids if run_id in found]

    @staticmethod
    def _decide_launch(record: LifecycleRecord, now: float) -> tuple[LaunchDecision, int]:
        if record.state in FINAL_STATES:
            return LaunchDecision.DUPLICATE_FINISHED, record.launch_attempt
        if record.state is SubmissionState.LAUNCHED:
            return LaunchDecision.DUPLICATE_LAUNCHED, record.launch_attempt
        if record.state is SubmissionState.WAITING:
            return LaunchDecision.WAITING, record.launch_attempt
        if record.state in CLAIMABLE_STATES:
            # ADMITTED: the dispatcher reserved its slot. Its first attempt is 1 (WAITING runs start at 0); a
            # requeued run (throttled, redriven) advances like a definite failure, or keeps an ambiguous token.
            if record.report_lease_until is not None and record.report_lease_until >= now:
                # A dead-lettered v6 run's terminal report is being sent right now: let it finish (within its
                # lease) before the redrive starts the run afresh, so two reports never race (decision 086).
                return LaunchDecision.DUPLICATE_IN_FLIGHT, record.launch_attempt
            if record.launch_ambiguous:
                # An earlier RunTask of this attempt may have started a task: keep its clientToken, so ECS
                # answers with that task instead of starting a second one (decision 070).
                return LaunchDecision.GRANTED, record.launch_attempt
            return LaunchDecision.GRANTED, record.launch_attempt + 1  # definite failure: new token
        # LAUNCHING: in flight unless its lease expired (ambiguous crash: same attempt, same token)
        if record.lease_until is not None and record.lease_until < now:
            return LaunchDecision.GRANTED, record.launch_attempt
        return LaunchDecision.DUPLICATE_IN_FLIGHT, record.launch_attempt

    def _reclaim_launching(
        self,
        record: LifecycleRecord,
        attempt: int,
        now: float,
        lease_seconds: int,
        timeout_seconds: int | None,
    ) -> bool:
        same_token = attempt == record.launch_attempt
        detail = (
            f"re-claimed after expired lease, attempt {attempt} (same clientToken)"
            if record.state is SubmissionState.LAUNCHING
            else f"re-claimed after {record.state.value}, attempt {attempt}"
            + (" (same clientToken: an earlier RunTask of it was ambiguous)" if same_token else "")
        )
        values: dict[str, Any] = {
            ":launching": SubmissionState.LAUNCHING.value,
            ":attempt": attempt,
            ":lease": int(now) + lease_seconds,
            ":now": _now_iso(now),
            ":empty": [],
            ":entry": self._history_entry(now, SubmissionState.LAUNCHING, detail),
            ":observed_state": record.state.value,
            ":observed_attempt": record.launch_attempt,
        }
        update = (
            "SET #state = :launching, launchAttempt = :attempt, leaseUntil = :lease, deadlineAt = :lease, "
            "updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry)"
        )
        if timeout_seconds is not None:
            values[":timeout_seconds"] = timeout_seconds
            update += ", timeoutSeconds = :timeout_seconds"
        if record.state is SubmissionState.LAUNCHING:
            # The holder of the expired lease vanished (crash, timeout) and may have called RunTask: its
            # attempt is ambiguous from now on, whatever this delivery's RunTask answers.
            values[":true"] = True
            update += ", launchAmbiguous = :true"
        # The lease this delivery observed must still be the item's: two deliveries that both saw the same
        # expired lease cannot both re-claim it (only the first write matches).
        condition = "#state = :observed_state AND launchAttempt = :observed_attempt"
        if record.state in LAUNCHABLE_STATES:
            # A redrive of a dead-lettered v6 run starts it afresh: the dead-letter report (written or still
            # pending) is forgotten, so the new attempt's outcome is reported anew and upserts the same summation.
            # Never while that report's lease is live (`_decide_launch`; checked again here, atomically).
            update += " REMOVE " + ", ".join(REPORT_ATTRIBUTES)
            values[":now_epoch"] = int(now)
            condition += " AND (attribute_not_exists(reportLeaseUntil) OR reportLeaseUntil < :now_epoch)"
        if record.lease_until is not None:
            values[":observed_lease"] = record.lease_until
            condition += " AND leaseUntil = :observed_lease"
        else:
            condition += " AND attribute_not_exists(leaseUntil)"
        return self._update(record.run_id, update, condition, values) is not None

    def mark_launched(
        self,
        run_id: str,
        *,
        attempt: int,
        task_arn: str,
        cluster_arn: str,
        timeout_seconds: int,
        liveness_check_seconds: int | None = None,
    ) -> bool:
        """LAUNCHING -> LAUNCHED. False when the STOPPED event already overtook us (kept as is).

        `timeoutAt` is the task's own timeout; `deadlineAt` (when the sweeper looks next) is the earlier of
        the timeout and the first liveness check, so a lost STOPPED event is reconciled while ECS still
        describes the task (decision 073).
        """
        now = self._clock()
        check = DEFAULT_LIVENESS_CHECK_SECONDS if liveness_check_seconds is None else liveness_check_seconds
        timeout_at = int(now) + timeout_seconds
        updated = self._update(
            run_id,
            "SET #state = :launched, taskArn = :task, clusterArn = :cluster, launchedAt = :now, "
            "updatedAt = :now, timeoutAt = :timeout_at, deadlineAt = :deadline, timeoutSeconds = :timeout_seconds, "
            "launchAmbiguous = :false, history = list_append(history, :entry) REMOVE leaseUntil",
            "#state = :launching AND launchAttempt = :attempt",
            {
                ":launched": SubmissionState.LAUNCHED.value,
                ":launching": SubmissionState.LAUNCHING.value,
                ":attempt": attempt,
                ":task": task_arn,
                ":cluster": cluster_arn,
                ":now": _now_iso(now),
                ":timeout_at": timeout_at,
                ":timeout_seconds": timeout_seconds,
                ":deadline": min(timeout_at, int(now) + check),
                ":false": False,
                ":entry": self._history_entry(now, SubmissionState.LAUNCHED, task_arn),
            },
        )
        return updated is not None

    def mark_launch_failed(
        self,
        run_id: str,
        *,
        attempt: int,
        reason: str,
        dead_lettered: bool,
        token_settled: bool = True,
        message_lifetime_seconds: int = DEFAULT_MESSAGE_LIFETIME_SECONDS,
        report_due_in_seconds: int = 0,
    ) -> DeadLetterResult:
        """LAUNCHING -> LAUNCH_FAILED (the message will be retried) or DEAD_LETTERED (last receive).

        `token_settled=False`: this call proves nothing about an *earlier* RunTask of the same attempt
        (throttled or refused before ECS looked at it), so an ambiguity recorded before stays and the next
        claim keeps the clientToken. `deadlineAt`: when the sweeper may look for a stuck item (the message
        can still be redelivered until then). A v6 run dead-lettered definitely gets its report due in the same
        write (`report_due`; see `_dead_lettered_report_due`).
        """
        now = self._clock()
        state = SubmissionState.DEAD_LETTERED if dead_lettered else SubmissionState.LAUNCH_FAILED
        values: dict[str, Any] = {
            ":state": state.value,
            ":launching": SubmissionState.LAUNCHING.value,
            ":attempt": attempt,
            ":reason": reason[:_MAX_DETAIL],
            ":now": _now_iso(now),
            ":entry": self._history_entry(now, state, reason),
        }
        sets = ["#state = :state", "reason = :reason", "updatedAt = :now", "history = list_append(history, :entry)"]
        removes = ["leaseUntil"]
        if token_settled:
            sets.append("launchAmbiguous = :false")
            values[":false"] = False
        condition = "#state = :launching AND launchAttempt = :attempt"
        if dead_lettered:
            # A v6 run is first tried with its report due (only if definite: this answer settles the token, or
            # no earlier call of the attempt was ambiguous); otherwise it waits for an operator's redrive.
            if self._dead_lettered_report_due(
                run_id, sets, removes, condition, values, now, report_due_in_seconds, check_ambiguous=not token_settled
            ):
                return DeadLetterResult(True, report_due=True)
            removes.append("deadlineAt")  # in the DLQ: an operator's redrive is the next step, not the sweeper
        else:
            sets.append("deadlineAt = :deadline")
            values[":deadline"] = int(now) + message_lifetime_seconds
        update = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
        return DeadLetterResult(self._update(run_id, update, condition, values) is not None)

    def _dead_lettered_report_due(
        self,
        run_id: str,
        sets: list[str],
        removes: list[str],
        condition: str,
        values: dict[str, Any],
        now: float,
        report_due_in_seconds: int,
        *,
        check_ambiguous: bool,
    ) -> bool:
        """The DEAD_LETTERED write of a v6 run whose launch definitely started no task, with its terminal report
        due (decision 086): `reportStatus` PENDING, `testStatus` FAILED, `deadlineAt` = now + `report_due_in_
        seconds` (the sweeper re-drives an unfinished report), as `record_skipped` writes a skip. Conditioned on
        the item's `platform` (written by `claim_launch`) and, with `check_ambiguous`, on no ambiguity recorded:
        False (nothing written) for a v5 run or an ambiguous launch, which keep the operator's redrive and the
        sweeper's adopt-or-stop path (decisions 070, 071, 080)."""
        report_values = {
            **values,
            ":v6": Platform.V6.value,
            ":pending": ReportStatus.PENDING.value,
            ":failed": TestStatus.FAILED.value,
            ":report_deadline": int(now) + report_due_in_seconds,
        }
        report_condition = f"{condition} AND platform = :v6"
        if check_ambiguous:
            report_values[":not_ambiguous"] = False
            report_condition += " AND (attribute_not_exists(launchAmbiguous) OR launchAmbiguous = :not_ambiguous)"
        report_sets = [*sets, "reportStatus = :pending", "testStatus = :failed", "deadlineAt = :report_deadline"]
        update = f"SET {', '.join(report_sets)} REMOVE {', '.join(removes)}"
        return self._update(run_id, update, report_condition, report_values) is not None

    def mark_launch_outcome_unknown(self, run_id: str, *, attempt: int, reason: str, dead_lettered: bool) -> bool:
        """RunTask of this attempt may have started a task (5xx, read timeout, unknown error).

        The attempt is flagged ambiguous, so every later claim reuses its clientToken. Not the last receive:
        the item stays LAUNCHING under its lease (the retry re-claims it after the lease). The last receive:
        DEAD_LETTERED, so an operator sees the truth instead of an item LAUNCHING forever; a task it may have
        started is adopted (or stopped) by the sweeper's orphan scan, and a redrive reuses the token.
        """
        now = self._clock()
        values: dict[str, Any] = {
            ":launching": SubmissionState.LAUNCHING.value,
            ":attempt": attempt,
            ":true": True,
            ":now": _now_iso(now),
        }
        if dead_lettered:
            detail = f"{reason}; last receive: message to the DLQ, launch outcome unknown (same clientToken on redrive)"
            values |= {
                ":state": SubmissionState.DEAD_LETTERED.value,
                ":reason": detail[:_MAX_DETAIL],
                ":entry": self._history_entry(now, SubmissionState.DEAD_LETTERED, detail),
            }
            update = (
                "SET #state = :state, reason = :reason, launchAmbiguous = :true, updatedAt = :now, "
                "history = list_append(history, :entry) REMOVE leaseUntil, deadlineAt"
            )
        else:
            detail = f"{reason}; launch outcome unknown: lease kept, the retry reuses the clientToken"
            values[":entry"] = self._history_entry(now, "LAUNCH_OUTCOME_UNKNOWN", detail)
            update = "SET launchAmbiguous = :true, updatedAt = :now, history = list_append(history, :entry)"
        return self._update(run_id, update, "#state = :launching AND launchAttempt = :attempt", values) is not None

    # ------------------------------------------------------------------ completion handler
    def now(self) -> float:
        """The store's clock (epoch s): the completion function times its waits by the same clock."""
        return self._clock()

    @staticmethod
    def _owns_task(values: dict[str, Any], *, task_arn: str, challenge_id: str, launch_attempt: int | None) -> str:
        """The condition under which a STOPPED event of `task_arn` belongs to the item (decision 076).

        LAUNCHED: the item's taskArn is the event's. LAUNCHING (the event overtook mark_launched) or DEAD_LETTERED
        after an ambiguous last launch: the event's MM_LAUNCH_ATTEMPT is the item's launchAttempt. An event
        without MM_LAUNCH_ATTEMPT (a task launched before that variable existed) matches by taskArn only.
        """
        values.update(
            {
                ":challenge": challenge_id,
                ":task": task_arn,
                ":launched": SubmissionState.LAUNCHED.value,
            }
        )
        by_task = "(#state = :launched AND taskArn = :task)"
        if launch_attempt is None:
            return f"challengeId = :challenge AND {by_task}"
        values.update(
            {
                ":attempt": launch_attempt,
                ":launching": SubmissionState.LAUNCHING.value,
                ":dead_lettered": SubmissionState.DEAD_LETTERED.value,
                ":true": True,
            }
        )
        return (
            f"challengeId = :challenge AND ({by_task} OR (#state = :launching AND launchAttempt = :attempt) "
            "OR (#state = :dead_lettered AND launchAttempt = :attempt AND launchAmbiguous = :true))"
        )

    def record_outcome(
        self,
        run_id: str,
        challenge_id: str,
        outcome: Outcome,
        *,
        report_required: bool,
        launch_attempt: int | None = None,
        report_check_seconds: int = 600,
        stopped_at: datetime | None = None,
    ) -> OutcomeRecordResult:
        """Record the task's final state once, only on the item that tracks this task; never create an item.

        `report_required` is False only when the challenge's policy is known to need no report (a success
        without `report_on_success`); a required report carries `deadlineAt` = now + `report_check_seconds`, so
        the sweeper re-drives it if it is left PENDING or REPORTING.
        """
        if outcome.task_arn is None:
            raise ValueError("record_outcome records a task's STOPPED event: the outcome must name its task")
        now = self._clock()
        state = SubmissionState(outcome.code.value)
        report_status = ReportStatus.PENDING if report_required else ReportStatus.NOT_REQUIRED
        values: dict[str, Any] = {
            ":state": state.value,
            ":stop_code": outcome.stop_code or "",
            ":reason": outcome.reason[:_MAX_DETAIL],
            ":test_status": outcome.test_status.value,
            ":stopped": (stopped_at.isoformat() if stopped_at else _now_iso(now)),
            ":now": _now_iso(now),
            ":expires": int(now) + self._ttl_seconds,
            ":report": report_status.value,
            ":empty": [],
            ":entry": self._history_entry(now, state, outcome.reason),
        }
        condition = self._owns_task(
            values, task_arn=outcome.task_arn, challenge_id=challenge_id, launch_attempt=launch_attempt
        )
        sets = (
            "#state = :state, taskArn = :task, stopCode = :stop_code, reason = :reason, testStatus = :test_status, "
            "stoppedAt = :stopped, updatedAt = :now, expiresAt = :expires, reportStatus = :report, "
            "history = list_append(if_not_exists(history, :empty), :entry)"
        )
        removes = "leaseUntil"
        if outcome.exit_code is not None:
            values[":exit"] = outcome.exit_code
            sets += ", exitCode = :exit"
        if report_required:
            values[":deadline"] = int(now) + report_check_seconds
            sets += ", deadlineAt = :deadline"
        else:
            removes += ", deadlineAt"
        updated = self._update(run_id, f"SET {sets} REMOVE {removes}", condition, values)
        if updated is not None:
            return OutcomeRecordResult(OutcomeDecision.RECORDED, self.record_from_item(updated))
        record = self.get(run_id)
        if record is None:
            return OutcomeRecordResult(OutcomeDecision.UNKNOWN_SUBMISSION, None)
        if record.task_arn == outcome.task_arn and record.state in FINAL_STATES:
            return OutcomeRecordResult(OutcomeDecision.ALREADY_RECORDED, record)
        if (
            record.state is SubmissionState.LAUNCHING
            and launch_attempt is not None
            and record.challenge_id == challenge_id
        ):
            # An older attempt's task stopped while a newer attempt is launching: the newer task is recorded by
            # its own event. Leave a trace for an operator; never touch the state.
            self._note(
                run_id,
                "#state = :launching",
                {":launching": SubmissionState.LAUNCHING.value},
                now,
                "STALE_STOPPED_EVENT",
                f"task {outcome.task_arn} of attempt {launch_attempt} stopped while on attempt "
                f"{record.launch_attempt}; ignored",
            )
            return OutcomeRecordResult(OutcomeDecision.STALE_TASK, record)
        return OutcomeRecordResult(OutcomeDecision.OTHER_TASK, record)

    def _note(self, run_id: str, condition: str, values: dict[str, Any], now: float, tag: str, detail: str) -> bool:
        """Append a history entry (and nothing else) while `condition` holds."""
        updated = self._update(
            run_id,
            "SET updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry)",
            condition,
            {**values, ":now": _now_iso(now), ":empty": [], ":entry": self._history_entry(now, tag, detail)},
        )
        return updated is not None

    def settle_report_not_required(self, run_id: str, *, task_arn: str) -> bool:
        """PENDING -> NOT_REQUIRED for a success recorded before the challenge's report policy was known."""
        now = self._clock()
        updated = self._update(
            run_id,
            "SET reportStatus = :not_required, updatedAt = :now, history = list_append(history, :entry) "
            "REMOVE deadlineAt, reportAmbiguousAt",
            "#state = :succeeded AND taskArn = :task AND reportStatus = :pending",
            {
                ":not_required": ReportStatus.NOT_REQUIRED.value,
                ":succeeded": SubmissionState.SUCCEEDED.value,
                ":pending": ReportStatus.PENDING.value,
                ":task": task_arn,
                ":now": _now_iso(now),
                ":entry": self._history_entry(
                    now, f"REPORT_{ReportStatus.NOT_REQUIRED.value}", "challenge config: no report on success"
                ),
            },
        )
        return updated is not None

    def mark_start_failed_for_relaunch(
        self,
        run_id: str,
        challenge_id: str,
        *,
        task_arn: str,
        launch_attempt: int | None,
        reason: str,
        max_relaunches: int,
        recheck_seconds: int,
    ) -> RelaunchClaim:
        """A transient TaskFailedToStart: the item goes to LAUNCH_FAILED for a bounded relaunch (decision 072).

        `startRelaunches` + 1, `launchAmbiguous` false (no task runs: the next claim advances the attempt and so
        the clientToken), `relaunchPending` until `mark_relaunch_sent`. Only with a routed message to re-send and
        below the bound. A repeated event for the same task finds RESEND (crash before the send) or ALREADY_SENT.
        """
        now = self._clock()
        values: dict[str, Any] = {
            ":launch_failed": SubmissionState.LAUNCH_FAILED.value,
            ":false": False,
            ":true": True,
            ":reason": reason[:_MAX_DETAIL],
            ":now": _now_iso(now),
            ":deadline": int(now) + recheck_seconds,
            ":max": max_relaunches,
            ":one": 1,
            ":entry": self._history_entry(now, SubmissionState.LAUNCH_FAILED, f"relaunch after: {reason}"),
        }
        owns = self._owns_task(values, task_arn=task_arn, challenge_id=challenge_id, launch_attempt=launch_attempt)
        updated = self._update(
            run_id,
            "SET #state = :launch_failed, launchAmbiguous = :false, relaunchPending = :true, taskArn = :task, "
            "reason = :reason, updatedAt = :now, deadlineAt = :deadline, history = list_append(history, :entry) "
            "ADD startRelaunches :one REMOVE leaseUntil",
            f"({owns}) AND attribute_exists(routedMessage) "
            "AND (attribute_not_exists(startRelaunches) OR startRelaunches < :max)",
            values,
        )
        if updated is not None:
            return RelaunchClaim(RelaunchDecision.GRANTED, self.record_from_item(updated))
        response = self.client.get_item(TableName=self._table, Key=self._key(run_id), ConsistentRead=True)
        item = response.get("Item")
        if not item:
            return RelaunchClaim(RelaunchDecision.NOT_ELIGIBLE)
        record = self.record_from_item(item)
        if record.state is SubmissionState.LAUNCH_FAILED and record.task_arn == task_arn:
            pending = item.get("relaunchPending", {}).get("BOOL") is True
            return RelaunchClaim(RelaunchDecision.RESEND if pending else RelaunchDecision.ALREADY_SENT, record)
        return RelaunchClaim(RelaunchDecision.NOT_ELIGIBLE, record)

    def mark_relaunch_sent(self, run_id: str, *, task_arn: str, delay_seconds: int) -> bool:
        """The relaunch message is on the challenge queue. False when a claim already took the item further."""
        now = self._clock()
        updated = self._update(
            run_id,
            "SET updatedAt = :now, deadlineAt = :deadline, history = list_append(history, :entry) "
            "REMOVE relaunchPending",
            "#state = :launch_failed AND taskArn = :task AND relaunchPending = :true",
            {
                ":launch_failed": SubmissionState.LAUNCH_FAILED.value,
                ":task": task_arn,
                ":true": True,
                ":now": _now_iso(now),
                # stuck only once the delayed message could have been received (and failed) every time
                ":deadline": int(now) + delay_seconds + DEFAULT_MESSAGE_LIFETIME_SECONDS,
                ":entry": self._history_entry(now, "RELAUNCH_SENT", f"routed message re-sent, delay {delay_seconds} s"),
            },
        )
        return updated is not None

    def claim_report(self, run_id: str, *, lease_seconds: int) -> ReportClaim:
        """PENDING (or an expired REPORTING lease) -> REPORTING. Not granted: reported, rejected, busy.

        A claim taken over from an expired lease reports that lease's end as `ambiguous_at`: its holder may
        have posted at any moment until then.
        """
        now = self._clock()
        values: dict[str, Any] = {
            ":reporting": ReportStatus.REPORTING.value,
            ":lease": int(now) + lease_seconds,
            ":now": _now_iso(now),
            ":one": 1,
        }
        update = "SET reportStatus = :reporting, reportLeaseUntil = :lease, updatedAt = :now ADD reportAttempt :one"
        old = self._update(
            run_id,
            update,
            "reportStatus = :pending",
            {**values, ":pending": ReportStatus.PENDING.value},
            return_old=True,
        )
        expired_lease_until: int | None = None
        if old is None:
            old = self._update(
                run_id,
                update,
                "reportStatus = :reporting AND reportLeaseUntil < :now_epoch",
                {**values, ":now_epoch": int(now)},
                return_old=True,
            )
            if old is not None and "reportLeaseUntil" in old:
                expired_lease_until = int(_deserializer.deserialize(old["reportLeaseUntil"]))
        if old is None:
            record = self.get(run_id)
            return ReportClaim(False, 0, record.report_status if record else None)
        previous_attempts = int(_deserializer.deserialize(old["reportAttempt"])) if "reportAttempt" in old else 0
        marks = [expired_lease_until]
        if "reportAmbiguousAt" in old:
            marks.append(int(_deserializer.deserialize(old["reportAmbiguousAt"])))
        known = [mark for mark in marks if mark is not None]
        return ReportClaim(True, previous_attempts + 1, ReportStatus.REPORTING, max(known) if known else None)

    def _finish_report(self, run_id: str, status: ReportStatus, response_summary: str) -> bool:
        now = self._clock()
        updated = self._update(
            run_id,
            "SET reportStatus = :status, reportResponse = :response, reportedAt = :now, updatedAt = :now, "
            "history = list_append(history, :entry) REMOVE reportLeaseUntil, deadlineAt, reportAmbiguousAt",
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

    def mark_reported(self, run_id: str, *, response_summary: str) -> bool:
        return self._finish_report(run_id, ReportStatus.REPORTED, response_summary)

    def mark_report_rejected(self, run_id: str, *, response_summary: str) -> bool:
        return self._finish_report(run_id, ReportStatus.REJECTED, response_summary)

    def release_report(self, run_id: str, *, ambiguous_at: int | None = None) -> bool:
        """REPORTING -> PENDING after a transient failure, so the retried invocation can claim at once.

        `ambiguous_at` (epoch s): an attempt may have reached the API until then (an ambiguous POST): the next
        attempt looks before posting, and only once the slow-commit window after it has passed (decision 074).
        """
        values: dict[str, Any] = {":pending": ReportStatus.PENDING.value, ":reporting": ReportStatus.REPORTING.value}
        update = "SET reportStatus = :pending"
        if ambiguous_at is not None:
            values[":ambiguous"] = ambiguous_at
            update += ", reportAmbiguousAt = :ambiguous"
        updated = self._update(run_id, f"{update} REMOVE reportLeaseUntil", "reportStatus = :reporting", values)
        return updated is not None

    # ------------------------------------------------------------------ timeout sweeper
    def sweep_time(self) -> float:
        """The time the sweeper compares deadlines, leases and task ages with (the local pipeline advances it)."""
        return self._clock()

    def find_overdue(self, *, limit: int = 100) -> list[LifecycleRecord]:
        """LAUNCHED items whose deadline passed (GSI `byStateDeadline`)."""
        return self.find_due(SubmissionState.LAUNCHED, before=self.sweep_time(), limit=limit)

    def find_due(self, state: SubmissionState, *, before: float, limit: int = 100) -> list[LifecycleRecord]:
        """Items in `state` whose `deadlineAt` is before `before` (GSI `byStateDeadline`, oldest first).

        The index projects keys, ARNs and `deadlineAt` only: read the items themselves (`get_many`) before acting.
        """
        response = self.client.query(
            TableName=self._table,
            IndexName=STATUS_TABLE_OVERDUE_INDEX,
            KeyConditionExpression="#state = :state AND deadlineAt < :before",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=self._values({":state": state.value, ":before": int(before)}),
            Limit=limit,
        )
        return [self.record_from_item(item) for item in response.get("Items", [])]

    def get_many(self, run_ids: Iterable[str]) -> dict[str, LifecycleRecord]:
        """Consistent BatchGetItem (100 keys a call, unprocessed keys retried): the items that exist, by run id."""
        ids = [i for i in dict.fromkeys(run_ids) if 0 < len(i.encode()) <= _MAX_KEY_BYTES]
        found: dict[str, LifecycleRecord] = {}
        for start in range(0, len(ids), _BATCH_GET_KEYS):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [self._key(i) for i in ids[start : start + _BATCH_GET_KEYS]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(_MAX_BATCH_ROUNDS):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    record = self.record_from_item(item)
                    found[record.run_id] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError(f"BatchGetItem left keys unprocessed after {_MAX_BATCH_ROUNDS} rounds (throttled)")
        return found

    def mark_liveness_checked(self, run_id: str, *, task_arn: str, next_check_at: int) -> bool:
        """The sweeper described the task and it needs nothing yet: look again at `next_check_at` (no history
        entry: a day-long task is checked every 15 minutes)."""
        now = self._clock()
        updated = self._update(
            run_id,
            "SET deadlineAt = :next, updatedAt = :now",
            "#state = :launched AND taskArn = :task",
            {
                ":launched": SubmissionState.LAUNCHED.value,
                ":task": task_arn,
                ":next": int(next_check_at),
                ":now": _now_iso(now),
            },
        )
        return updated is not None

    def mark_stop_requested(
        self, run_id: str, *, task_arn: str, reason: str, grace_seconds: int = DEFAULT_RECONCILE_GRACE_SECONDS
    ) -> bool:
        """StopTask was sent: record it and push the deadline `grace_seconds` out.

        The STOPPED event normally takes the item out of LAUNCHED (and off the overdue index) well
        within the grace; if it is still overdue afterwards, the sweeper reconciles it (decision 008).
        """
        now = self._clock()
        updated = self._update(
            run_id,
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

    def mark_reconcile_requested(self, run_id: str, *, task_arn: str, grace_seconds: int, detail: str) -> bool:
        """One reconciliation attempt was made (synthetic STOPPED event sent, or StopTask repeated).

        Pushes the deadline `grace_seconds` out again and counts the attempt in `reconcileAttempt`.
        """
        now = self._clock()
        updated = self._update(
            run_id,
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

    def mark_reconcile_abandoned(self, run_id: str, *, task_arn: str, detail: str) -> bool:
        """The sweeper gave up: take the item off the overdue index (it stays LAUNCHED for an operator).

        Without this a given-up item would be overdue forever and fill every sweep's query page.
        """
        now = self._clock()
        updated = self._update(
            run_id,
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

    def adopt_task(
        self,
        run_id: str,
        *,
        observed_state: SubmissionState,
        attempt: int,
        task_arn: str,
        cluster_arn: str,
        started_at: float,
        timeout_seconds: int,
        liveness_check_seconds: int = DEFAULT_LIVENESS_CHECK_SECONDS,
    ) -> bool:
        """A running task of this attempt that the item does not record -> LAUNCHED with it (decision 071).

        From LAUNCHING only once its lease expired (a live lease: the delivery is still recording it), from
        LAUNCH_FAILED / DEAD_LETTERED only when the attempt is flagged ambiguous. `timeoutAt` counts from the
        task's own start, so an adopted task gets no more time than a tracked one.
        """
        now = self._clock()
        timeout_at = int(started_at) + timeout_seconds
        values: dict[str, Any] = {
            ":launched": SubmissionState.LAUNCHED.value,
            ":observed_state": observed_state.value,
            ":attempt": attempt,
            ":task": task_arn,
            ":cluster": cluster_arn,
            ":started": _now_iso(started_at),
            ":timeout_at": timeout_at,
            ":timeout_seconds": timeout_seconds,
            ":deadline": min(timeout_at, int(now) + liveness_check_seconds),
            ":false": False,
            ":now": _now_iso(now),
            ":empty": [],
            ":entry": self._history_entry(
                now,
                SubmissionState.LAUNCHED,
                f"adopted running task {task_arn} of attempt {attempt} (found by the sweeper's task scan; "
                f"was {observed_state.value})",
            ),
        }
        condition = "#state = :observed_state AND launchAttempt = :attempt"
        if observed_state is SubmissionState.LAUNCHING:
            condition += " AND leaseUntil < :now_epoch"
            values[":now_epoch"] = int(now)
        else:
            condition += " AND launchAmbiguous = :true"
            values[":true"] = True
        updated = self._update(
            run_id,
            "SET #state = :launched, taskArn = :task, clusterArn = :cluster, launchedAt = :started, "
            "timeoutAt = :timeout_at, timeoutSeconds = :timeout_seconds, deadlineAt = :deadline, "
            "launchAmbiguous = :false, updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry) "
            "REMOVE leaseUntil, reason",
            condition,
            values,
        )
        return updated is not None

    def mark_orphan_stopped(self, run_id: str, *, detail: str) -> bool:
        """A history entry on an existing item: the sweeper stopped a task of this submission no item tracks."""
        now = self._clock()
        updated = self._update(
            run_id,
            "SET updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry)",
            f"attribute_exists({STATUS_TABLE_PARTITION_KEY})",
            {":now": _now_iso(now), ":empty": [], ":entry": self._history_entry(now, "ORPHAN_STOPPED", detail)},
        )
        return updated is not None

    def mark_launch_stuck(
        self,
        run_id: str,
        *,
        observed_state: SubmissionState,
        attempt: int,
        observed_deadline: int,
        reason: str,
        report_due_in_seconds: int = 0,
    ) -> DeadLetterResult:
        """LAUNCHING (lease long expired) or LAUNCH_FAILED that SQS can no longer redeliver -> DEAD_LETTERED.

        Conditioned on the deadline the sweeper saw, so a delivery that re-claimed it in between wins. A stuck
        LAUNCHING item is flagged ambiguous (its delivery stopped somewhere around RunTask): a redrive reuses the
        clientToken; a LAUNCH_FAILED item keeps its flag, and a v6 one that is not ambiguous (its failure was
        definite) gets its terminal report due in the same write (`report_due`, decision 086).
        """
        now = self._clock()
        values: dict[str, Any] = {
            ":state": SubmissionState.DEAD_LETTERED.value,
            ":observed_state": observed_state.value,
            ":attempt": attempt,
            ":observed_deadline": observed_deadline,
            ":reason": reason[:_MAX_DETAIL],
            ":now": _now_iso(now),
            ":empty": [],
            ":entry": self._history_entry(now, SubmissionState.DEAD_LETTERED, reason),
        }
        update = (
            "SET #state = :state, reason = :reason, updatedAt = :now, "
            "history = list_append(if_not_exists(history, :empty), :entry)"
        )
        condition = "#state = :observed_state AND launchAttempt = :attempt AND deadlineAt = :observed_deadline"
        if observed_state is SubmissionState.LAUNCHING:
            update += ", launchAmbiguous = :true"
            values[":true"] = True
        elif self._dead_lettered_report_due(
            run_id,
            [update.removeprefix("SET ")],
            ["leaseUntil"],
            condition,
            values,
            now,
            report_due_in_seconds,
            check_ambiguous=True,
        ):
            return DeadLetterResult(True, report_due=True)
        updated = self._update(run_id, update + " REMOVE leaseUntil, deadlineAt", condition, values)
        return DeadLetterResult(updated is not None)

    def mark_report_redriven(self, run_id: str, *, observed_deadline: int, next_check_at: int, detail: str) -> bool:
        """The sweeper re-sent an unfinished report's event: count it (`reportRetryAttempt`), look again later.

        Only while the report is still unfinished (PENDING, or REPORTING with an expired lease) and the deadline
        is the one the sweeper saw.
        """
        now = self._clock()
        updated = self._update(
            run_id,
            "SET deadlineAt = :next, updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry) "
            "ADD reportRetryAttempt :one",
            "deadlineAt = :observed_deadline AND (reportStatus = :pending OR (reportStatus = :reporting AND "
            "(attribute_not_exists(reportLeaseUntil) OR reportLeaseUntil < :now_epoch)))",
            {
                ":next": int(next_check_at),
                ":observed_deadline": observed_deadline,
                ":pending": ReportStatus.PENDING.value,
                ":reporting": ReportStatus.REPORTING.value,
                ":now_epoch": int(now),
                ":now": _now_iso(now),
                ":one": 1,
                ":empty": [],
                ":entry": self._history_entry(now, "REPORT_REDRIVEN", detail),
            },
        )
        return updated is not None

    def mark_relaunch_redriven(self, run_id: str, *, observed_deadline: int, next_check_at: int, detail: str) -> bool:
        """The sweeper re-sent the start failure's event for a relaunch never confirmed sent (decision 072).

        Counts a reconcile attempt; only while the item still waits on that relaunch, at the deadline it saw.
        """
        now = self._clock()
        updated = self._update(
            run_id,
            "SET deadlineAt = :next, updatedAt = :now, history = list_append(history, :entry) "
            "ADD reconcileAttempt :one",
            "#state = :launch_failed AND relaunchPending = :true AND deadlineAt = :observed_deadline",
            {
                ":launch_failed": SubmissionState.LAUNCH_FAILED.value,
                ":true": True,
                ":observed_deadline": observed_deadline,
                ":next": int(next_check_at),
                ":now": _now_iso(now),
                ":one": 1,
                ":entry": self._history_entry(now, "RELAUNCH_REDRIVEN", detail),
            },
        )
        return updated is not None

    def clear_deadline(self, run_id: str, *, observed_deadline: int, history_state: str, detail: str) -> bool:
        """Take a final item off the sweeper's index (report given up, or settled without removing its deadline)."""
        now = self._clock()
        updated = self._update(
            run_id,
            "SET updatedAt = :now, history = list_append(if_not_exists(history, :empty), :entry) REMOVE deadlineAt",
            "deadlineAt = :observed_deadline",
            {
                ":observed_deadline": observed_deadline,
                ":now": _now_iso(now),
                ":empty": [],
                ":entry": self._history_entry(now, history_state, detail),
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
    "DeadLetterResult",
    "LaunchClaim",
    "LaunchDecision",
    "OutcomeCode",
    "OutcomeDecision",
    "OutcomeRecordResult",
    "RelaunchClaim",
    "RelaunchDecision",
    "ReportClaim",
    "StatusStore",
]
