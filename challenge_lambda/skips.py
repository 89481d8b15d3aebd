"""v6 skips (decision 086): a submission the pipeline will not score is recorded as FAILED runs without a task and
handed to the completion function for its terminal summation, so it never looks "in queue forever"."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from challenge_lambda.handoff import ReportDueSender
from mm_adapters.status_store import StatusStore
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission

# The status item's scorer type for a run skipped before any config could be read.
UNCONFIGURED_SCORER = "unconfigured"


class SkipRecorder:
    def __init__(self, store: StatusStore, report_due: ReportDueSender, logger: Logger) -> None:
        self._store = store
        self._report_due = report_due
        self._logger = logger

    def skip(
        self,
        submission: RoutedSubmission,
        phases: list[ScoringPhase],
        reason: str,
        config: ChallengeConfig | None,
        ids: dict[str, str],
    ) -> list[ScoringPhase]:
        """Record each run as FAILED without a task and hand it to the completion function for its terminal
        summation (the record, not the message, carries the rest). Returns the phases whose run existed already
        and is not finished: those were not skipped."""
        scorer_type = config.scorer_type if config is not None else UNCONFIGURED_SCORER
        unfinished: list[ScoringPhase] = []
        for phase in phases:
            run = RunKey(submission.submission_id, phase)
            run_ids = {**ids, "run_id": run.run_id, "phase": phase.value}
            created = self._store.record_skipped(submission, phase=phase, scorer_type=scorer_type, reason=reason)
            if not created:
                record = self._store.get(run.run_id)
                if record is not None and record.state not in FINAL_STATES:
                    unfinished.append(phase)
                    self._logger.info("run exists and is not finished; not skipped", extra=run_ids)
                    continue
                if not report_still_due(record):
                    self._logger.info("skipped run already recorded; nothing to hand on", extra=run_ids)
                    continue
            self._logger.warning(
                "submission not scored: run recorded as skipped",
                extra={"reason": reason, "recorded": created, **run_ids},
            )
            self._report_due.send(run, run_ids)
        return unfinished


def report_still_due(record: LifecycleRecord | None) -> bool:
    """A skip recorded by an earlier delivery that may have died before handing it on: hand it on again (the
    completion function reports a run once however often it is told)."""
    return (
        record is not None
        and record.task_arn is None
        and record.state in FINAL_STATES
        and record.report_status is ReportStatus.PENDING
    )
