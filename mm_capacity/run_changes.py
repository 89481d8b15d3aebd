"""A run's state changes that move its capacity with it, each ONE transaction over its status item and its capacity
items (`CapacityTable._transact_run_change`): `requeue` (back to WAITING in its old place), `cancel_waiting`
(superseded, decision 095), `request_cancel_running`, `mark_admission_resent` and `dead_letter_admission` (the
sweeper's re-send and give-up, decision 096)."""

from __future__ import annotations

from typing import Any

from mm_adapters.status_store import REPORT_ATTRIBUTES, StatusStore
from mm_capacity.keys import (
    ADMISSION_RESEND_SECONDS,
    POOL_PARTITION,
    challenge_pool_key,
    make_wait_order,
)
from mm_capacity.records import (
    WaitEntry,
)
from mm_capacity.table import (
    MAX_DETAIL,
    MAX_RACE_RETRIES,
    CapacityTable,
    ddb_values,
    iso,
)
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.outcome import TestStatus
from mm_contracts.models.phase import Platform


class CapacityRunChanges(CapacityTable):
    """A run's state changes that move its capacity with it: back in the queue, cancelled, cancel requested, its
    admission re-sent, dead-lettered."""

    def requeue(self, run: LifecycleRecord, *, reason: str) -> bool:
        """A slot-holding run that did not start goes back to WAITING with its ORIGINAL wait order (it keeps its
        place), its slots released, in one transaction. `launchAttempt` and `launchAmbiguous` stay (the clientToken
        rules are unchanged); the lease goes. Conditioned on the state and attempt of `run` (pass it as it is now).
        False: the run moved on (nothing written)."""
        requeueable = {
            SubmissionState.ADMITTED,
            SubmissionState.LAUNCHING,
            SubmissionState.LAUNCH_FAILED,
            SubmissionState.DEAD_LETTERED,
        }
        if run.state not in requeueable or run.member_id is None:
            return False
        return self._transact_run_change(lambda now: self._requeue_items(run, reason, now))

    def _requeue_items(self, run: LifecycleRecord, reason: str, now: float) -> list[dict[str, Any]]:
        """The requeue transaction, with the holders read now (a pool's holder may vanish in between: a concurrent
        release; the retry reads them again)."""
        assert run.member_id is not None
        phase = run.phase
        # A run dead-lettered before capacity existed has no wait order: it goes to the front of its rank.
        rank = run.priority_rank if run.priority_rank is not None else 0
        wait_order = run.wait_order or make_wait_order(rank, 0, int(now * 1000), run.run_id)
        held = {sk for sk in run.slot_pools if f"h#{run.run_id}" in (self._get(POOL_PARTITION, sk) or {})}
        values: dict[str, Any] = {
            ":waiting": SubmissionState.WAITING.value,
            ":observed_state": run.state.value,
            ":observed_attempt": run.launch_attempt,
            ":wait_order": wait_order,
            ":reason": reason[:MAX_DETAIL],
            ":now_epoch": int(now),
            ":rank": rank,
            ":now": iso(now),
            ":empty": [],
            ":entry": self._history(now, SubmissionState.WAITING, f"back in the queue: {reason}"),
        }
        removes = ["leaseUntil", "deadlineAt", "slotPools", "slotCpu", "admittedAt", "expiresAt", "relaunchPending"]
        condition = "#state = :observed_state AND launchAttempt = :observed_attempt"
        if run.state is SubmissionState.DEAD_LETTERED:
            # A redrive starts the run afresh (as `claim_launch` does): a dead-letter report still pending is
            # forgotten, never while it is being sent (decision 086).
            removes.extend(REPORT_ATTRIBUTES)
            condition += " AND (attribute_not_exists(reportLeaseUntil) OR reportLeaseUntil < :now_epoch)"
        run_update = self._update_op(
            self._status_table,
            self._run_key(run.run_id),
            "SET #state = :waiting, waitOrder = :wait_order, waitReason = :reason, updatedAt = :now, "
            "enqueuedAt = if_not_exists(enqueuedAt, :now_epoch), "
            "priorityRank = if_not_exists(priorityRank, :rank), "
            "history = list_append(if_not_exists(history, :empty), :entry) REMOVE " + ", ".join(removes),
            values,
            condition=condition,
            names={"#state": "state"},
        )
        enqueued_at = run.enqueued_at if run.enqueued_at is not None else int(now)
        entry = WaitEntry(
            run.challenge_id,
            run.run_id,
            run.submission_id,
            phase,
            run.member_id,
            wait_order,
            enqueued_at,
            run.rerun,
        )
        challenge_pool = challenge_pool_key(run.challenge_id)
        items = [run_update, self._queue_put_op(entry)]
        cpu = run.slot_cpu or 0
        if challenge_pool in held:
            items.append(self._release_op(challenge_pool, run.run_id, cpu, now, waiting_delta=1))
        else:
            items.append(self._waiting_op(run.challenge_id, 1, now))
        items.extend(self._release_op(sk, run.run_id, cpu, now) for sk in sorted(held - {challenge_pool}))
        items.append(
            self._member_op(
                run.challenge_id,
                run.member_id,
                "SET #w = :w, updatedAt = :now REMOVE #r",
                {":w": f"{phase.value}|{wait_order}", ":now": iso(now)},
                {"#w": f"w#{run.run_id}", "#r": f"r#{run.run_id}"},
            )
        )
        return items

    def cancel_waiting(self, run_id: str, *, reason: str, report_due_in_seconds: int = 0) -> LifecycleRecord | None:
        """WAITING -> CANCELLED (final), its queue entry gone, in one transaction. v6: the report is due (PENDING,
        `testStatus` CANCELLED, `deadlineAt` now + `report_due_in_seconds`); v5: NOT_REQUIRED (decision 095).
        None: the run was not waiting (nothing written)."""
        record = self._status.get(run_id)
        if record is None or record.state is not SubmissionState.WAITING or not record.wait_order:
            return None
        if not self._transact_run_change(
            lambda now: self._cancel_items(record, reason, report_due_in_seconds, now), attempts=1
        ):
            return None
        return self._status.get(run_id)

    def _cancel_items(
        self, record: LifecycleRecord, reason: str, report_due_in_seconds: int, now: float
    ) -> list[dict[str, Any]]:
        run_id = record.run_id
        assert record.wait_order is not None
        report_due = record.platform is Platform.V6
        values: dict[str, Any] = {
            ":cancelled": SubmissionState.CANCELLED.value,
            ":waiting": SubmissionState.WAITING.value,
            ":wait_order": record.wait_order,
            ":reason": reason[:MAX_DETAIL],
            ":test_status": TestStatus.CANCELLED.value,
            ":report": (ReportStatus.PENDING if report_due else ReportStatus.NOT_REQUIRED).value,
            ":expires": int(now) + self._ttl_seconds,
            ":now": iso(now),
            ":empty": [],
            ":entry": self._history(now, SubmissionState.CANCELLED, reason),
        }
        update = (
            "SET #state = :cancelled, reason = :reason, testStatus = :test_status, reportStatus = :report, "
            "stoppedAt = :now, updatedAt = :now, expiresAt = :expires, "
            "history = list_append(if_not_exists(history, :empty), :entry)"
        )
        if report_due:
            values[":deadline"] = int(now) + report_due_in_seconds
            update += ", deadlineAt = :deadline"
        items = [
            self._update_op(
                self._status_table,
                self._run_key(run_id),
                update + " REMOVE waitReason",
                values,
                condition="#state = :waiting AND waitOrder = :wait_order",
                names={"#state": "state"},
            ),
            self._queue_delete_op(record.challenge_id, record.wait_order),
            self._waiting_op(record.challenge_id, -1, now),
        ]
        if record.member_id is not None:
            items.append(self._member_op(record.challenge_id, record.member_id, "REMOVE #w", {}, {"#w": f"w#{run_id}"}))
        return items

    def request_cancel_running(self, run_id: str) -> LifecycleRecord | None:
        """LAUNCHED: `cancelRequested` = true (the caller stops the task; its STOPPED event records CANCELLED)."""
        now = self._clock()
        response = self._update_if(
            TableName=self._status_table,
            Key=self._run_key(run_id),
            UpdateExpression="SET cancelRequested = :true, updatedAt = :now, "
            "history = list_append(if_not_exists(history, :empty), :entry)",
            ConditionExpression="#state = :launched",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=ddb_values(
                {
                    ":true": True,
                    ":launched": SubmissionState.LAUNCHED.value,
                    ":now": iso(now),
                    ":empty": [],
                    ":entry": self._history(now, "CANCEL_REQUESTED", "superseded by a newer submission"),
                }
            ),
            ReturnValues="ALL_NEW",
        )
        if response is None:
            return None
        return StatusStore.record_from_item(response["Attributes"])

    def mark_admission_resent(self, run_id: str, *, observed_deadline: int) -> bool:
        """The sweeper re-sent an ADMITTED run's message: look again `ADMISSION_RESEND_SECONDS` later, and count
        the re-send (`admissionResends`: the sweeper dead-letters a run whose message is never processed)."""
        now = self._clock()
        return (
            self._update_if(
                TableName=self._status_table,
                Key=self._run_key(run_id),
                UpdateExpression="SET deadlineAt = :deadline, updatedAt = :now, "
                "history = list_append(if_not_exists(history, :empty), :entry) ADD admissionResends :one",
                ConditionExpression="#state = :admitted AND deadlineAt = :observed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=ddb_values(
                    {
                        ":deadline": int(now) + ADMISSION_RESEND_SECONDS,
                        ":admitted": SubmissionState.ADMITTED.value,
                        ":observed": observed_deadline,
                        ":one": 1,
                        ":now": iso(now),
                        ":empty": [],
                        ":entry": self._history(now, "ADMISSION_RESENT", "admitted run's message sent again"),
                    }
                ),
            )
            is not None
        )

    def dead_letter_admission(self, run: LifecycleRecord, *, reason: str) -> LifecycleRecord | None:
        """An ADMITTED run whose message was re-sent and never processed -> DEAD_LETTERED with `reason`, its
        slots released and the member's `r#` removed, in one transaction (conditioned on the state and attempt of
        `run`). It never called RunTask for this admission, so its launch is definite: a v6 run that is not
        `launchAmbiguous` from an earlier attempt has its terminal report due now (PENDING, FAILED, as StatusStore's
        definite dead-letter writes it, decision 086); otherwise no deadline (an operator's redrive requeues it).
        `launchAmbiguous` stays as it is. None: the run moved on (nothing written)."""
        if run.state is not SubmissionState.ADMITTED:
            return None
        report_due = run.platform is Platform.V6 and not run.launch_ambiguous
        # A holder (or the member's r#) that vanished in between (a concurrent release) is read again.
        if not self._transact_run_change(
            lambda now: self._dead_letter_items(run, reason, report_due, now),
            exhausted=f"dead-letter of admitted {run.run_id}: lost the race {MAX_RACE_RETRIES} times",
        ):
            return None
        return self._status.get(run.run_id)

    def _dead_letter_items(
        self, run: LifecycleRecord, reason: str, report_due: bool, now: float
    ) -> list[dict[str, Any]]:
        values: dict[str, Any] = {
            ":dead": SubmissionState.DEAD_LETTERED.value,
            ":admitted": SubmissionState.ADMITTED.value,
            ":observed_attempt": run.launch_attempt,
            ":reason": reason[:MAX_DETAIL],
            ":now": iso(now),
            ":empty": [],
            ":entry": self._history(now, SubmissionState.DEAD_LETTERED, reason),
        }
        sets = (
            "#state = :dead, reason = :reason, updatedAt = :now, "
            "history = list_append(if_not_exists(history, :empty), :entry)"
        )
        removes = "leaseUntil"
        if report_due:
            values.update(
                {
                    ":pending": ReportStatus.PENDING.value,
                    ":failed": TestStatus.FAILED.value,
                    ":report_deadline": int(now),
                }
            )
            sets += ", reportStatus = :pending, testStatus = :failed, deadlineAt = :report_deadline"
        else:
            removes += ", deadlineAt"  # in the DLQ: an operator's redrive is the next step, not the sweeper
        return [
            self._update_op(
                self._status_table,
                self._run_key(run.run_id),
                f"SET {sets} REMOVE {removes}",
                values,
                condition="#state = :admitted AND launchAttempt = :observed_attempt",
                names={"#state": "state"},
            ),
            *self._release_ops_for(run, now),
        ]
