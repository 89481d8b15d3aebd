"""The challenge processor's part of the status store: claim a launch, record it launched or failed, record a
run the pipeline will not score (decisions 002, 070, 086). Typed for callers as `mm_contracts.ports.LaunchLedger`."""

from __future__ import annotations

from typing import Any

from mm_adapters.status_store.items import MAX_DETAIL, REPORT_ATTRIBUTES, now_iso
from mm_adapters.status_store.table import (
    DEFAULT_LIVENESS_CHECK_SECONDS,
    DEFAULT_MESSAGE_LIFETIME_SECONDS,
    MAX_RACE_RETRIES,
    StatusTable,
)
from mm_contracts.models.ledger import DeadLetterResult, LaunchClaim, LaunchDecision
from mm_contracts.models.lifecycle import (
    CLAIMABLE_STATES,
    FINAL_STATES,
    LAUNCHABLE_STATES,
    LifecycleRecord,
    ReportStatus,
    SubmissionState,
)
from mm_contracts.models.outcome import TestStatus
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY


class LaunchStore(StatusTable):
    """Launch exactly once: `claim_launch` -> `mark_launched` | `mark_launch_failed` | `mark_launch_outcome_unknown`."""

    def claim_launch(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        lease_seconds: int,
        timeout_seconds: int | None = None,
        observed: LifecycleRecord | None = None,
        config_version: int | None = None,
    ) -> LaunchClaim:
        """Claim the right to call RunTask for this run (submission, phase) (see the module docstring).

        `observed`: the run's item as the caller just read or wrote it (under capacity a run always has an item
        before its launch). The claim then starts from it: one conditional write instead of a failed create and a
        read first. The write is conditioned on exactly what was observed, so a stale observation only costs the
        read it saved (decision 114). `config_version`: the SSM version of the config this launch uses, recorded
        as `configVersion` (the completion function's report can then ask its loader for exactly that one)."""
        key = RunKey(submission.submission_id, phase)
        record = observed if observed is not None and observed.run_id == key.run_id else None
        for _ in range(MAX_RACE_RETRIES):
            now = self._clock()
            if record is None:
                created = self._create_launching(
                    submission, key, scorer_type, now, lease_seconds, timeout_seconds, config_version
                )
                if created:
                    return LaunchClaim(LaunchDecision.GRANTED, attempt=1)
                record = self.get(key.run_id)
                if record is None:
                    continue  # expired by TTL between the two calls: create again
            decision, next_attempt = self._decide_launch(record, now)
            if decision is not LaunchDecision.GRANTED:
                return LaunchClaim(decision, attempt=record.launch_attempt, record=record)
            if self._reclaim_launching(record, next_attempt, now, lease_seconds, timeout_seconds, config_version):
                return LaunchClaim(LaunchDecision.GRANTED, attempt=next_attempt, record=record)
            record = self.get(key.run_id)  # lost a race: decide again on what won it (None: create)
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

    def _create_launching(
        self,
        submission: RoutedSubmission,
        key: RunKey,
        scorer_type: str,
        now: float,
        lease_seconds: int,
        timeout_seconds: int | None,
        config_version: int | None = None,
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
            "createdAt": now_iso(now),
            "updatedAt": now_iso(now),
            "expiresAt": int(now) + self._ttl_seconds,
            "history": self._history_entry(now, SubmissionState.LAUNCHING, "claimed for launch, attempt 1"),
        }
        if timeout_seconds is not None:
            item["timeoutSeconds"] = timeout_seconds
        if config_version is not None:
            item["configVersion"] = config_version
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
        reason = reason[:MAX_DETAIL]
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
            "createdAt": now_iso(now),
            "updatedAt": now_iso(now),
            "stoppedAt": now_iso(now),
            "expiresAt": int(now) + self._ttl_seconds,
            "history": self._history_entry(now, "SKIPPED", f"SKIPPED: {reason}"),
        }
        return self._create_item(item)

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
        config_version: int | None = None,
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
            ":now": now_iso(now),
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
        if config_version is not None:
            values[":config_version"] = config_version
            update += ", configVersion = :config_version"
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
                ":now": now_iso(now),
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
            ":reason": reason[:MAX_DETAIL],
            ":now": now_iso(now),
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
            ":now": now_iso(now),
        }
        if dead_lettered:
            detail = f"{reason}; last receive: message to the DLQ, launch outcome unknown (same clientToken on redrive)"
            values |= {
                ":state": SubmissionState.DEAD_LETTERED.value,
                ":reason": detail[:MAX_DETAIL],
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


__all__ = ["LaunchStore"]
