"""The completion function's part of the status store: record a task's outcome once, claim and finish its report,
and the bounded relaunch after a start failure (decisions 072, 074, 076). Typed for callers as
`mm_contracts.ports.OutcomeLedger`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mm_adapters.status_store.items import MAX_DETAIL, attribute_value, now_iso
from mm_adapters.status_store.table import DEFAULT_MESSAGE_LIFETIME_SECONDS, StatusTable
from mm_contracts.models.ledger import (
    OutcomeDecision,
    OutcomeRecordResult,
    RelaunchClaim,
    RelaunchDecision,
    ReportClaim,
)
from mm_contracts.models.lifecycle import FINAL_STATES, ReportStatus, SubmissionState
from mm_contracts.models.outcome import Outcome


class OutcomeStore(StatusTable):
    """Report exactly once: `record_outcome`, then `claim_report` -> `mark_reported` | `mark_report_rejected` |
    `release_report`."""

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
        report_lease_seconds: int | None = None,
    ) -> OutcomeRecordResult:
        """Record the task's final state once, only on the item that tracks this task; never create an item.

        `report_required` is False only when the challenge's policy is known to need no report (a success
        without `report_on_success`); a required report carries `deadlineAt` = now + `report_check_seconds`, so
        the sweeper re-drives it if it is left PENDING or REPORTING.

        `report_lease_seconds` (with a required report the caller sends at once): the same write takes the report
        claim `claim_report` would take next (REPORTING, `reportLeaseUntil`, `reportAttempt` + 1), one status
        write fewer (decision 114). `claim_taken_with_outcome` reads that claim from the RECORDED record.
        """
        if outcome.task_arn is None:
            raise ValueError("record_outcome records a task's STOPPED event: the outcome must name its task")
        now = self._clock()
        state = SubmissionState(outcome.code.value)
        report_status = ReportStatus.PENDING if report_required else ReportStatus.NOT_REQUIRED
        values: dict[str, Any] = {
            ":state": state.value,
            ":stop_code": outcome.stop_code or "",
            ":reason": outcome.reason[:MAX_DETAIL],
            ":test_status": outcome.test_status.value,
            ":stopped": (stopped_at.isoformat() if stopped_at else now_iso(now)),
            ":now": now_iso(now),
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
        adds = ""
        if report_required:
            values[":deadline"] = int(now) + report_check_seconds
            sets += ", deadlineAt = :deadline"
            if report_lease_seconds is not None:
                # The claim's own fields: a crash after this write leaves a REPORTING lease that expires, and the
                # retry or the sweeper's re-drive takes it over exactly as it does a claim never finished.
                values[":report"] = ReportStatus.REPORTING.value
                values[":report_lease"] = int(now) + report_lease_seconds
                values[":one"] = 1
                sets += ", reportLeaseUntil = :report_lease"
                adds = " ADD reportAttempt :one"
        else:
            removes += ", deadlineAt"
        updated = self._update(run_id, f"SET {sets}{adds} REMOVE {removes}", condition, values)
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

    @staticmethod
    def claim_taken_with_outcome(recorded: OutcomeRecordResult) -> ReportClaim | None:
        """The report claim `record_outcome(report_lease_seconds=)` took in its write, or None (not recorded by
        this call, or no report claimed). Read from the item the write returned, as `claim_report` reads its own."""
        record = recorded.record
        if (
            recorded.decision is not OutcomeDecision.RECORDED
            or record is None
            or record.report_status is not ReportStatus.REPORTING
        ):
            return None
        return ReportClaim(True, record.report_attempt, ReportStatus.REPORTING, record.report_ambiguous_at)

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
                ":now": now_iso(now),
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
            ":reason": reason[:MAX_DETAIL],
            ":now": now_iso(now),
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
                ":now": now_iso(now),
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
            ":now": now_iso(now),
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
                expired_lease_until = int(attribute_value(old["reportLeaseUntil"]))
        if old is None:
            record = self.get(run_id)
            return ReportClaim(False, 0, record.report_status if record else None)
        previous_attempts = int(attribute_value(old["reportAttempt"])) if "reportAttempt" in old else 0
        marks = [expired_lease_until]
        if "reportAmbiguousAt" in old:
            marks.append(int(attribute_value(old["reportAmbiguousAt"])))
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
                ":response": response_summary[:MAX_DETAIL],
                ":now": now_iso(now),
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


__all__ = ["OutcomeStore"]
