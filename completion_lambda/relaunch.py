"""A transient start failure relaunched through its challenge queue instead of reported (decision 072): the claim on
the status item (bounded, exactly once per stopped task), the narrowed message, the delay."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from completion_lambda.identity import TaskIdentity
from completion_lambda.outcome import (
    start_failure_is_transient,
)
from completion_lambda.policy import CompletionPolicy
from completion_lambda.results import (
    CompletionResult,
    Disposition,
)
from mm_adapters.status_store import RelaunchDecision, StatusStore
from mm_capacity.queues import ChallengeQueues
from mm_contracts.metric_names import Metric
from mm_contracts.models.ecs_event import (
    EcsTaskStateChangeDetail,
    StopCode,
)
from mm_contracts.models.outcome import Outcome, OutcomeCode
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import MetricsSink


class StartFailureRelauncher:
    """Sends a transient start failure's run back to its challenge queue, a bounded number of times, with a growing
    delay; the run keeps its slot while it relaunches (decisions 072, 096)."""

    def __init__(
        self,
        *,
        store: StatusStore,
        queues: ChallengeQueues | None,
        policy: CompletionPolicy,
        metrics: MetricsSink,
        logger: Logger,
    ) -> None:
        self._store = store
        self._queues = queues  # None: start failures are never relaunched
        self._policy = policy
        self._metrics = metrics
        self._logger = logger

    def relaunch_if_transient(
        self, run: RunKey, identity: TaskIdentity, outcome: Outcome, detail: EcsTaskStateChangeDetail
    ) -> CompletionResult | Outcome:
        """A transient start failure is relaunched (the result says so); otherwise the outcome to record (a start
        failure whose relaunches are spent says how many there were)."""
        if (
            outcome.code is OutcomeCode.CANCELLED
            or outcome.stop_code != StopCode.TASK_FAILED_TO_START
            or not start_failure_is_transient(detail.stopped_reason)
        ):
            return outcome
        relaunched, relaunches_done = self._relaunch(run, identity, outcome, task_arn=detail.task_arn)
        if relaunched is not None:
            return relaunched
        if relaunches_done:
            return outcome.model_copy(update={"reason": f"{outcome.reason} (after {relaunches_done} relaunches)"})
        return outcome

    def _relaunch(
        self, run: RunKey, identity: TaskIdentity, outcome: Outcome, *, task_arn: str
    ) -> tuple[CompletionResult | None, int]:
        """A transient start failure of task `task_arn`: back to the challenge queue, bounded (decision 072).

        Returns (result, relaunches already done). A None result means "not relaunched: record it as usual".
        """
        policy = self._policy
        if self._queues is None:
            return None, 0
        claim = self._store.mark_start_failed_for_relaunch(
            run.run_id,
            identity.challenge_id,
            task_arn=task_arn,
            launch_attempt=identity.launch_attempt,
            reason=outcome.reason,
            max_relaunches=policy.max_start_relaunches,
            recheck_seconds=policy.relaunch_check_seconds,
        )
        if claim.decision is RelaunchDecision.NOT_ELIGIBLE:
            done = claim.record.start_relaunches if claim.record and claim.record.task_arn == task_arn else 0
            return None, done
        record = claim.record
        assert record is not None
        if claim.decision is RelaunchDecision.ALREADY_SENT:
            self._metrics.count(Metric.DUPLICATE_EVENTS)
            return CompletionResult(
                Disposition.DUPLICATE, "relaunch already sent", run.submission_id, outcome.code, phase=run.phase
            ), record.start_relaunches
        delay = policy.relaunch_delay(record.start_relaunches)
        assert record.routed_message is not None  # the store's condition requires it
        # The run keeps its slot while it relaunches: it stays slot-holding LAUNCH_FAILED (decision 096).
        self._queues.send(
            identity.challenge_id, relaunch_message(record.routed_message, run.phase), delay_seconds=delay
        )
        self._store.mark_relaunch_sent(run.run_id, task_arn=task_arn, delay_seconds=delay)
        self._metrics.count(Metric.START_FAILURES_RELAUNCHED)
        self._logger.warning(
            "scorer task failed to start (transient); relaunching",
            extra={"relaunch": record.start_relaunches, "delay_seconds": delay, "resent": claim.decision.value},
        )
        summary = f"relaunch {record.start_relaunches} of {policy.max_start_relaunches} in {delay} s"
        return CompletionResult(Disposition.RELAUNCHED, summary, run.submission_id, outcome.code, phase=run.phase), 0


def relaunch_message(routed_message: str, phase: ScoringPhase) -> str:
    """The stored routed message, narrowed to the one phase being relaunched (a multi-phase submission's message
    would otherwise ask for every onSubmission phase again). A message that no longer parses is sent as stored."""
    try:
        submission = RoutedSubmission.model_validate_json(routed_message)
    except ValidationError:
        return routed_message
    if submission.phase is phase:
        return routed_message
    return submission.model_copy(update={"phase": phase}).to_json()
