"""A RunTask that did not start a task, recorded on the run's item before the message goes back to SQS.

Definite failures (`failed`) settle the attempt (the next claim gets a new clientToken) unless an earlier call of
the attempt was ambiguous; an unknown outcome (`outcome_unknown`) marks the attempt ambiguous, so every retry
reuses its clientToken (decision 070). On the message's last receive the item says DEAD_LETTERED: a v6 run is
handed on for its terminal FAILED summation (decision 086), and a definite dead letter frees its slot.
"""

from __future__ import annotations

from typing import NoReturn

from aws_lambda_powertools import Logger

from challenge_lambda.admission import Admission
from challenge_lambda.handoff import ReportDueSender
from challenge_lambda.launcher import RunTaskRequest
from challenge_lambda.outcomes import InboundMessage, RecordFailed
from mm_adapters.status_store import LaunchClaim, StatusStore
from mm_contracts.metric_names import Metric
from mm_contracts.models.phase import RunKey
from mm_contracts.ports import MetricsSink


class LaunchFailures:
    def __init__(
        self,
        *,
        max_receive_count: int,
        store: StatusStore,
        admission: Admission,
        report_due: ReportDueSender,
        metrics: MetricsSink,
        logger: Logger,
    ) -> None:
        self.max_receive_count = max_receive_count
        self._store = store
        self._admission = admission
        self._report_due = report_due
        self._metrics = metrics
        self._logger = logger

    def last_receive(self, message: InboundMessage) -> bool:
        """SQS moves the message to the DLQ if this receive fails too."""
        return message.receive_count >= self.max_receive_count

    def failed(
        self,
        run: RunKey,
        claim: LaunchClaim,
        message: InboundMessage,
        reason_code: str,
        detail: str,
        *,
        token_settled: bool = True,
    ) -> NoReturn:
        """A definite failure of this call: record it and fail (the next claim gets a new clientToken unless an
        earlier call of this attempt was ambiguous and this answer does not settle it)."""
        dead_lettered = self.last_receive(message)
        recorded = self._store.mark_launch_failed(
            run.run_id,
            attempt=claim.attempt,
            reason=f"{reason_code}: {detail}",
            dead_lettered=dead_lettered,
            token_settled=token_settled,
        )
        self._metrics.count(Metric.LAUNCH_FAILURES, reason=reason_code, phase=run.phase.value)
        ids = {"submission_id": run.submission_id, "run_id": run.run_id, "phase": run.phase.value}
        self._logger.warning(
            "launch failed; message back to the queue",
            extra={
                "reason": reason_code,
                "detail": detail,
                "attempt": claim.attempt,
                "dead_lettered": dead_lettered,
                "recorded": bool(recorded),
                "report_due": recorded.report_due,
                **ids,
            },
        )
        if recorded.report_due:
            # A v6 run that cannot start gets its terminal FAILED summation now (decision 086); the message still
            # goes to the DLQ, and a redrive retries the run (its outcome then updates that summation).
            self._report_due.send(run, ids)
        if dead_lettered and recorded:
            self._admission.release_dead_lettered(run, ids)
        # `from None`: the original exception (whose text may echo request values) is not chained into tracebacks.
        raise RecordFailed(reason_code, detail) from None

    def outcome_unknown(
        self,
        run: RunKey,
        claim: LaunchClaim,
        request: RunTaskRequest,
        message: InboundMessage,
        reason_code: str,
        detail: str,
    ) -> NoReturn:
        """RunTask may have started a task: the attempt is marked ambiguous, so every retry reuses this
        clientToken; on the last receive the item says DEAD_LETTERED (the sweeper adopts or stops a task
        that did start)."""
        dead_lettered = self.last_receive(message)
        self._store.mark_launch_outcome_unknown(
            run.run_id,
            attempt=claim.attempt,
            reason=f"{reason_code}: {detail}",
            dead_lettered=dead_lettered,
        )
        self._metrics.count(Metric.LAUNCH_FAILURES, reason=reason_code, phase=run.phase.value)
        self._logger.warning(
            "RunTask outcome unknown; lease kept, the retry reuses the same clientToken",
            extra={
                "reason": reason_code,
                "detail": detail,
                "attempt": claim.attempt,
                "client_token": request.client_token,
                "submission_id": run.submission_id,
                "run_id": run.run_id,
                "phase": run.phase.value,
            },
        )
        # `from None`: the original exception (whose text may echo request values) is not chained into tracebacks.
        raise RecordFailed(reason_code, detail) from None
