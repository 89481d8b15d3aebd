"""Superseded runs (decision 095): a member's newer submission cancels their older waiting run of the same phase
(and, with `cancel_waiting_and_stop_running`, stops its running task); a late redelivery older than a run of the
member already queued or holding a slot is cancelled itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from challenge_lambda.handoff import ReportDueSender
from challenge_lambda.launcher import EcsLauncher
from challenge_lambda.outcomes import SUPERSEDED_REASON
from mm_adapters.status_store import StatusStore
from mm_capacity.store import CapacityStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import SupersedePolicy
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.phase import Platform
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import MetricsSink


class Superseder:
    def __init__(
        self,
        challenge_id: str,
        *,
        store: StatusStore,
        capacity: CapacityStore,
        launcher: EcsLauncher,
        report_due: ReportDueSender,
        metrics: MetricsSink,
        logger: Logger,
    ) -> None:
        self._challenge_id = challenge_id
        self._store = store
        self._capacity = capacity
        self._launcher = launcher
        self._report_due = report_due
        self._metrics = metrics
        self._logger = logger

    def supersede(
        self, submission: RoutedSubmission, config: ChallengeConfig, record: LifecycleRecord, ids: dict[str, str]
    ) -> bool:
        """Right after a new run was enqueued, by the challenge's policy. True when this run was cancelled."""
        policy = config.capacity.supersede
        if policy is SupersedePolicy.NONE:
            return False
        waiting, holding = self._capacity.member_runs(self._challenge_id, submission.member_id)
        waiting_ids = [run_id for run_id, phase in waiting if phase is record.phase and run_id != record.run_id]
        holding_ids = [run_id for run_id, phase in holding if phase is record.phase and run_id != record.run_id]
        if not waiting_ids and not holding_ids:
            return False
        others = self._store.get_many([*waiting_ids, *holding_ids])
        mine = _submitted(record, submission)
        newer = [other for other in others.values() if _older(mine, _submitted(other))]
        if newer:
            # Admitted meanwhile (not cancelled): it runs as any admitted run does.
            return self._cancel_waiting(record, by=newer[0].submission_id, ids=ids)
        older_waiting = [others[run_id] for run_id in waiting_ids if run_id in others]
        for other in older_waiting:
            if _older(_submitted(other), mine):
                self._cancel_waiting(other, by=submission.submission_id, ids=ids)
        if policy is SupersedePolicy.CANCEL_WAITING_AND_STOP_RUNNING:
            running = [others[run_id] for run_id in holding_ids if run_id in others]
            for other in running:
                if other.state is SubmissionState.LAUNCHED and _older(_submitted(other), mine):
                    self._stop_superseded(other, by=submission.submission_id, ids=ids)
        return False

    def _cancel_waiting(self, run: LifecycleRecord, *, by: str, ids: dict[str, str]) -> bool:
        """WAITING -> CANCELLED (v6: its CANCELLED summation handed on). False: it was no longer waiting."""
        reason = f"Superseded by a newer submission {by}"
        run_ids = {**ids, "run_id": run.run_id, "superseded_submission_id": run.submission_id}
        cancelled = self._capacity.cancel_waiting(run.run_id, reason=reason)
        if cancelled is None:
            self._logger.info("superseded run no longer waiting; left as is", extra=run_ids)
            return False
        self._metrics.count(Metric.RUNS_CANCELLED, reason=SUPERSEDED_REASON, phase=run.phase.value)
        self._logger.info("waiting run cancelled: superseded", extra={"reason": reason, **run_ids})
        if cancelled.platform is Platform.V6:
            # v6: a CANCELLED summation (its report is due on the item); v5 has no cancelled review (decision 095).
            self._report_due.send(cancelled.run_key, run_ids)
        return True

    def _stop_superseded(self, run: LifecycleRecord, *, by: str, ids: dict[str, str]) -> None:
        """Mark the running run cancel-requested, then StopTask: its STOPPED event is recorded CANCELLED."""
        reason = f"Superseded by a newer submission {by}"
        run_ids = {**ids, "run_id": run.run_id, "superseded_submission_id": run.submission_id}
        marked = self._capacity.request_cancel_running(run.run_id)
        if marked is None or marked.task_arn is None or marked.cluster_arn is None:
            self._logger.info("superseded run no longer running; left as is", extra=run_ids)
            return
        self._metrics.count(Metric.RUNS_CANCELLED, reason=SUPERSEDED_REASON, phase=run.phase.value)
        try:
            self._launcher.stop_task(cluster=marked.cluster_arn, task_arn=marked.task_arn, reason=reason)
        except (BotoCoreError, ClientError) as error:
            # The item says cancelRequested: the sweeper stops it (decision 095); the new run is not held back.
            self._logger.warning(
                "StopTask of a superseded run failed; left to the sweeper",
                extra={"error_type": type(error).__name__, "task_arn": marked.task_arn, **run_ids},
            )
            return
        self._logger.info(
            "running task of a superseded run stopped", extra={"task_arn": marked.task_arn, "reason": reason, **run_ids}
        )


@dataclass(frozen=True)
class _Submitted:
    """When a run's submission was made, for supersede: the submission's own time, else when the run was enqueued."""

    at: datetime | None
    enqueued_at: int | None


def _submitted(record: LifecycleRecord, submission: RoutedSubmission | None = None) -> _Submitted:
    if submission is None and record.routed_message:
        try:
            submission = RoutedSubmission.model_validate_json(record.routed_message)
        except ValidationError:
            submission = None
    at = (submission.created or submission.submitted_date) if submission is not None else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # the platforms write UTC; never compare naive with aware
    return _Submitted(at, record.enqueued_at)


def _older(first: _Submitted, second: _Submitted) -> bool:
    """`first` is from an older submission than `second` (unknown or equal: not older, nothing is cancelled)."""
    if first.at is not None and second.at is not None:
        return first.at < second.at
    if first.enqueued_at is not None and second.enqueued_at is not None:
        return first.enqueued_at < second.enqueued_at
    return False
