"""Pass 4 of a sweep: unfinished reports (decision 080).

A final item (or a v6 DEAD_LETTERED one, decision 086) whose report is PENDING, or REPORTING with an expired lease,
past its deadline: the completion function is invoked again with an event that identifies the task (it reports the
recorded outcome), or, for a run without a task of its own, the report-due event naming the run; a bounded number
of times (`ReportRetryGaveUp`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from mm_contracts.metric_names import Metric
from mm_contracts.models.lifecycle import (
    FINAL_STATES,
    LifecycleRecord,
    ReportStatus,
    SubmissionState,
)
from mm_contracts.models.report_due import report_due_event
from sweeper_lambda.result import SweepResult
from sweeper_lambda.sweep_pass import SweepPass
from sweeper_lambda.synthetic_events import (
    stopped_event_for_recorded_outcome,
)


class UnfinishedReportsPass(SweepPass):
    """Pass 4: unfinished reports re-driven through the completion function, a bounded number of times."""

    def run(self, now: float, result: SweepResult) -> None:
        # DEAD_LETTERED: only a v6 run dead-lettered definitely carries a deadline there (its terminal report).
        for state in [*sorted(FINAL_STATES), SubmissionState.DEAD_LETTERED]:
            due = self._store.find_due(state, before=now, limit=self._settings.max_stops_per_run)
            if not due:
                continue
            records = self._store.get_many(entry.run_id for entry in due)
            for entry in due:
                record = records.get(entry.run_id)
                if record is None or record.deadline_at is None or record.deadline_at != entry.deadline_at:
                    continue
                self._guarded(result, record.run_id, partial(self._check_report, record, now, result))

    def _check_report(self, record: LifecycleRecord, now: float, result: SweepResult) -> None:
        assert record.deadline_at is not None
        status = record.report_status
        lease_expired = record.report_lease_until is None or record.report_lease_until < now
        keys = {"run_id": record.run_id, "report_status": status.value if status else None}
        if status is ReportStatus.REPORTING and not lease_expired:
            return  # an invocation is reporting right now: look again next run
        if status not in {ReportStatus.PENDING, ReportStatus.REPORTING}:
            # Settled (or never needed) but still on the index: nothing left to do.
            self._store.clear_deadline(
                record.run_id,
                observed_deadline=record.deadline_at,
                history_state="REPORT_CHECKED",
                detail=f"report {status.value if status else 'status unknown'}: nothing to re-drive",
            )
            return
        if record.report_retry_attempt >= self._settings.max_report_retries:
            result.report_gave_up += 1
            self._stop_redriving(
                record,
                Metric.REPORT_RETRY_GAVE_UP,
                "report still unfinished after the last re-drive: an operator must look",
                keys=keys,
                attempts=record.report_retry_attempt,
                history_state="REPORT_RETRY_GAVE_UP",
                detail=f"report still {status.value} after {record.report_retry_attempt} re-drives: for an operator",
            )
            return
        self._send(self._report_event(record, now))
        attempt = record.report_retry_attempt + 1
        result.reports_redriven += 1
        self._metrics.count(Metric.REPORTS_REDRIVEN)
        self._logger.warning(
            "unfinished report re-driven through the completion function", extra={**keys, "attempt": attempt}
        )
        self._store.mark_report_redriven(
            record.run_id,
            observed_deadline=record.deadline_at,
            next_check_at=int(now) + self._settings.report_retry_interval_seconds,
            detail=f"re-drive {attempt}: report was {status.value}; "
            + ("synthetic STOPPED event sent" if record.task_arn else "report-due event sent"),
        )

    def _report_event(self, record: LifecycleRecord, now: float) -> dict[str, Any]:
        """What makes the completion function report the recorded outcome: a run with a task gets its STOPPED
        event again; a run that never had one (a skipped v6 run, decision 086) gets the report-due event, as does a
        dead-lettered v6 run (no task of its attempt exists; a task ARN it keeps is an earlier start failure's)."""
        if not record.task_arn or record.state is SubmissionState.DEAD_LETTERED:
            return report_due_event(record.run_id)
        clusters = self._settings.ecs_cluster_arns
        return stopped_event_for_recorded_outcome(
            record,
            environment_name=self._environment,
            now=self._at(now),
            cluster_arn=clusters[0] if clusters else None,
        )
