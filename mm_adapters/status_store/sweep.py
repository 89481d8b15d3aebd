"""The sweeper's part of the status store: the due-item queries and the repairs (liveness checks, stops,
reconciliation of lost STOPPED events, adopted and stuck launches, re-driven reports and relaunches; decisions 008,
071, 073, 080). Typed for callers as `mm_contracts.ports.SweepLedger`."""

from __future__ import annotations

from typing import Any

from mm_adapters.status_store.items import MAX_DETAIL, now_iso
from mm_adapters.status_store.table import (
    DEFAULT_LIVENESS_CHECK_SECONDS,
    DEFAULT_RECONCILE_GRACE_SECONDS,
    StatusTable,
)
from mm_contracts.models.ledger import DeadLetterResult
from mm_contracts.models.lifecycle import LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.names import STATUS_TABLE_OVERDUE_INDEX, STATUS_TABLE_PARTITION_KEY


class SweepStore(StatusTable):
    """What the sweeper reads (`find_due`, `sweep_time`) and the conditional repairs it makes on what it found."""

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

    def _on_launched_task(self, run_id: str, task_arn: str, update: str, values: dict[str, Any]) -> bool:
        """A write to a LAUNCHED item that still tracks `task_arn` (the task the sweeper described); False when
        the item moved on (its STOPPED event was recorded, or another task is tracked)."""
        condition_values = {":launched": SubmissionState.LAUNCHED.value, ":task": task_arn}
        updated = self._update(run_id, update, "#state = :launched AND taskArn = :task", {**condition_values, **values})
        return updated is not None

    def mark_liveness_checked(self, run_id: str, *, task_arn: str, next_check_at: int) -> bool:
        """The sweeper described the task and it needs nothing yet: look again at `next_check_at` (no history
        entry: a day-long task is checked every 15 minutes)."""
        now = self._clock()
        return self._on_launched_task(
            run_id,
            task_arn,
            "SET deadlineAt = :next, updatedAt = :now",
            {":next": int(next_check_at), ":now": now_iso(now)},
        )

    def mark_stop_requested(
        self, run_id: str, *, task_arn: str, reason: str, grace_seconds: int = DEFAULT_RECONCILE_GRACE_SECONDS
    ) -> bool:
        """StopTask was sent: record it and push the deadline `grace_seconds` out.

        The STOPPED event normally takes the item out of LAUNCHED (and off the overdue index) well
        within the grace; if it is still overdue afterwards, the sweeper reconciles it (decision 008).
        """
        now = self._clock()
        return self._on_launched_task(
            run_id,
            task_arn,
            "SET stopRequestedAt = :now, deadlineAt = :deadline, updatedAt = :now, "
            "history = list_append(history, :entry)",
            {
                ":now": now_iso(now),
                ":deadline": int(now) + grace_seconds,
                ":entry": self._history_entry(now, "STOP_REQUESTED", reason),
            },
        )

    def mark_reconcile_requested(self, run_id: str, *, task_arn: str, grace_seconds: int, detail: str) -> bool:
        """One reconciliation attempt was made (synthetic STOPPED event sent, or StopTask repeated).

        Pushes the deadline `grace_seconds` out again and counts the attempt in `reconcileAttempt`.
        """
        now = self._clock()
        return self._on_launched_task(
            run_id,
            task_arn,
            "SET deadlineAt = :deadline, updatedAt = :now, history = list_append(history, :entry) "
            "ADD reconcileAttempt :one",
            {
                ":now": now_iso(now),
                ":deadline": int(now) + grace_seconds,
                ":one": 1,
                ":entry": self._history_entry(now, "RECONCILE_REQUESTED", detail),
            },
        )

    def mark_reconcile_abandoned(self, run_id: str, *, task_arn: str, detail: str) -> bool:
        """The sweeper gave up: take the item off the overdue index (it stays LAUNCHED for an operator).

        Without this a given-up item would be overdue forever and fill every sweep's query page.
        """
        now = self._clock()
        return self._on_launched_task(
            run_id,
            task_arn,
            "SET updatedAt = :now, history = list_append(history, :entry) REMOVE deadlineAt",
            {":now": now_iso(now), ":entry": self._history_entry(now, "RECONCILE_GAVE_UP", detail)},
        )

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
            ":started": now_iso(started_at),
            ":timeout_at": timeout_at,
            ":timeout_seconds": timeout_seconds,
            ":deadline": min(timeout_at, int(now) + liveness_check_seconds),
            ":false": False,
            ":now": now_iso(now),
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
            {":now": now_iso(now), ":empty": [], ":entry": self._history_entry(now, "ORPHAN_STOPPED", detail)},
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
            ":reason": reason[:MAX_DETAIL],
            ":now": now_iso(now),
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
                ":now": now_iso(now),
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
                ":now": now_iso(now),
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
                ":now": now_iso(now),
                ":empty": [],
                ":entry": self._history_entry(now, history_state, detail),
            },
        )
        return updated is not None


__all__ = ["SweepStore"]
