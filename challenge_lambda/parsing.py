"""The processor validates what it acts on (decision 076): the body must be a `RoutedSubmission` for this
challenge, a skip only on v6, and its URL must pass the router's own policy. Each refusal is counted
(`LaunchFailures` + Reason) and raised as `RecordFailed`: permanent, so the message reaches the DLQ after its
receives, nothing is claimed and RunTask is never called."""

from __future__ import annotations

from typing import NoReturn

from pydantic import ValidationError

from challenge_lambda.outcomes import FailureReason, InboundMessage, RecordFailed
from mm_contracts.metric_names import Metric
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.phase import Platform, ScoringPhase
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import MetricsSink
from mm_contracts.url_policy import url_refusal


class MessageParser:
    def __init__(self, challenge_id: str, allowed_url_hosts: tuple[str, ...], metrics: MetricsSink) -> None:
        self._challenge_id = challenge_id
        self._allowed_url_hosts = allowed_url_hosts
        self._metrics = metrics

    def parse(self, message: InboundMessage) -> RoutedSubmission:
        try:
            submission = RoutedSubmission.model_validate_json(message.body)
        except ValidationError as error:
            fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or e["type"] for e in error.errors()}))
            self._refuse(FailureReason.INVALID_MESSAGE, f"body is not a RoutedSubmission (fields: {fields})")
        if submission.challenge_id != self._challenge_id:
            # A routing mistake (filter policy, subscription). Never launch; keep the evidence in the DLQ.
            self._refuse(
                FailureReason.WRONG_CHALLENGE,
                f"message for challenge {submission.challenge_id} (submission {submission.submission_id}) "
                f"reached the processor of {self._challenge_id}",
            )
        if submission.skip_reason is not None and submission.platform is not Platform.V6:
            # v5 skips are the router's business (it never publishes them); never launch what was marked skipped.
            self._refuse(
                FailureReason.INVALID_MESSAGE,
                f"submission {submission.submission_id}: skipReason on a {submission.platform.value} message",
            )
        # The router's policy again, from the same module and allow list: never launch a scorer on a URL the
        # queue could hand us past the router (file://, the metadata address, a foreign host).
        refusal = url_refusal(submission.url, self._allowed_url_hosts)
        if refusal is not None:
            self._refuse(
                FailureReason.URL_NOT_ALLOWED,
                f"submission {submission.submission_id}: url refused ({refusal.value})",  # never the URL itself
            )
        return submission

    def _refuse(self, reason: FailureReason, detail: str) -> NoReturn:
        self._metrics.count(Metric.LAUNCH_FAILURES, reason=reason.value)
        raise RecordFailed(reason.value, detail) from None


def phases_of(submission: RoutedSubmission, config: ChallengeConfig) -> list[ScoringPhase]:
    """The runs this message asks for: exactly its phase when it names one, else the onSubmission phases."""
    if submission.phase is not None:
        return [submission.phase]
    return [entry.phase for entry in config.submission_phases]
