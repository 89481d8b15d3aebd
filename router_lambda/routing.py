"""The router's logic: one MSK batch in, SNS messages and audit records out, a partial batch response back.

    classify every record (topic -> platform, bytes -> JSON ->    skip / reject with a reason
      shape -> fields; v5 or v6, decision 088)
    resolve the challenges of the valid ones (BatchGetItem, cache) reject unknown / inactive; skip the other
                                                                    platform's; route an inactive v6 one with
                                                                    a skip reason (its FAILED summation)
    drop in-batch duplicates of a submission id                  skip `duplicate_in_batch`
    publish (SNS PublishBatch, per-entry retries)                 routed
    audit every skipped / rejected record not audited before     audit marks (BatchGetItem), then
      (SQS SendMessageBatch), once per Kafka record               mark them (BatchWriteItem; decision 075)
    failed = SNS / DynamoDB / audit unavailable -> `batchItemFailures` (Kafka re-delivers from the
    lowest failed offset of each partition; docs/decisions/010)

Callable with injected ports: `router_lambda.wiring` builds real ones, tests pass fakes or moto-backed clients.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mm_contracts.metric_names import Metric
from mm_contracts.models.audit import AuditDisposition
from mm_contracts.models.bus import InboundSubmission, V6SubmissionPayload
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.ports import MetricsSink
from mm_contracts.settings import RouterSettings
from router_lambda.audit import AuditItem, AuditSender, build_audit_record
from router_lambda.audit_marks import AuditMarks, mark_key
from router_lambda.challenges import ChallengeResolver, Resolution
from router_lambda.observability import CORRELATION_KEY, logger
from router_lambda.publisher import OutboundMessage, Publisher
from router_lambda.reasons import Reason
from router_lambda.records import MskEvent, MskRecord, Verdict, classify_record

if TYPE_CHECKING:  # the batch package's import runs its processors' imports (~100 ms of a cold start): types only
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures

# Routed records named per log line: about 20 KB a line, far under the size a CloudWatch Logs event may have
# (256 KB). Skipped and rejected ones carry a detail of up to 600 characters (at most ~8 KB escaped): 25 a line.
ROUTED_PER_LOG_LINE = 100
AUDITED_PER_LOG_LINE = 25


@dataclass
class BatchReport:
    """What happened to each record of one batch (keys are the record's index in the batch)."""

    records: list[MskRecord]
    routed: dict[int, RoutedSubmission] = field(default_factory=dict)
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    audited: set[int] = field(default_factory=set)  # audit message sent by this delivery
    already_audited: set[int] = field(default_factory=set)  # by an earlier delivery of the same record
    failed: dict[int, str] = field(default_factory=dict)

    def response(self) -> PartialItemFailureResponse:
        # Powertools' Kafka shape (utilities/batch/base.py `_collect_kafka_failures`).
        failures: list[PartialItemFailures] = [
            {"itemIdentifier": {"partition": f"{r.topic}-{r.partition}", "offset": r.offset}}
            for r in sorted((self.records[i] for i in self.failed), key=lambda r: (r.topic, r.partition, r.offset))
        ]
        return {"batchItemFailures": failures}


class SubmissionRouter:
    """One MSK batch through the stages above; built by `router_lambda.wiring.RouterDependencies`."""

    def __init__(
        self,
        settings: RouterSettings,
        *,
        resolver: ChallengeResolver,
        publisher: Publisher,
        auditor: AuditSender,
        marks: AuditMarks,
        metrics: MetricsSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.publisher = publisher
        self.auditor = auditor
        self.marks = marks
        self.metrics = metrics
        self.clock = clock

    # ------------------------------------------------------------------ the batch
    def handle(self, event: MskEvent | Mapping[str, Any]) -> PartialItemFailureResponse:
        return self.route(event).response()

    def route(self, event: MskEvent | Mapping[str, Any]) -> BatchReport:
        batch = event if isinstance(event, MskEvent) else MskEvent.model_validate(event)
        report = BatchReport(records=batch.flattened())
        self.metrics.count(Metric.RECORDS_RECEIVED, len(report.records))
        candidates = self._classify(report)
        messages, duplicates = self._resolve(report, candidates)
        self._publish(report, messages, duplicates)
        self._audit(report)
        self._log_failures(report)
        return report

    def _classify(self, report: BatchReport) -> dict[int, InboundSubmission]:
        candidates: dict[int, InboundSubmission] = {}
        for index, record in enumerate(report.records):
            try:
                outcome = classify_record(record, self.settings)
            except Exception as error:  # a bug, not bad input: retry this record, keep the rest going
                logger.error(
                    "record classification crashed",
                    extra={CORRELATION_KEY: record.correlation_id, "error": type(error).__name__},
                )
                report.failed[index] = f"internal error {type(error).__name__}"
                continue
            if isinstance(outcome, Verdict):
                report.verdicts[index] = outcome
            else:
                candidates[index] = outcome
        return candidates

    def _resolve(
        self, report: BatchReport, candidates: dict[int, InboundSubmission]
    ) -> tuple[list[OutboundMessage], dict[int, list[int]]]:
        if not candidates:
            return [], {}
        indices = list(candidates)
        resolutions = self.resolver.resolve([candidates[i] for i in indices])
        messages: list[OutboundMessage] = []
        first_of: dict[str, int] = {}
        duplicates: dict[int, list[int]] = {}
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        for index, resolution in zip(indices, resolutions, strict=True):
            submission = candidates[index]
            if resolution.unavailable:
                report.failed[index] = "challenge table unavailable"
                continue
            if resolution.verdict is not None:
                report.verdicts[index] = resolution.verdict
                continue
            assert resolution.challenge_id is not None
            if submission.id in first_of:  # route the first, skip the rest (docs/decisions/016)
                duplicates.setdefault(first_of[submission.id], []).append(index)
                continue
            try:
                routed = routed_submission(submission, resolution, report.records[index], now)
            except ValidationError as error:
                report.verdicts[index] = Verdict(
                    Reason.INVALID_FIELD_VALUE,
                    f"cannot build the routed message ({error.error_count()} problems)",
                    submission.id,
                    resolution.challenge_id,
                    submission.platform,
                )
                continue
            first_of[submission.id] = index
            report.routed[index] = routed
            messages.append(OutboundMessage(key=index, body=routed.to_json(), challenge_id=routed.challenge_id))
        return messages, duplicates

    def _publish(self, report: BatchReport, messages: list[OutboundMessage], duplicates: dict[int, list[int]]) -> None:
        result = self.publisher.publish(messages) if messages else None
        if result is not None:
            for index, why in result.failed.items():
                report.failed[index] = why
            for index, why in result.rejected.items():
                routed = report.routed[index]
                report.verdicts[index] = Verdict(
                    Reason.PUBLISH_REJECTED,
                    f"SNS refused the entry: {why}",
                    routed.submission_id,
                    routed.challenge_id,
                    routed.platform,
                )
            for index in set(report.routed) - result.published:
                del report.routed[index]
            self.metrics.count(Metric.PUBLISH_RETRIES, result.retries)
            self.metrics.count(Metric.PUBLISH_FAILURES, len(result.failed) + len(result.rejected))
        for first, others in duplicates.items():
            for index in others:
                if first in report.failed:  # the original goes back to Kafka: so does its twin
                    report.failed[index] = f"duplicate of offset {report.records[first].offset}, which failed"
                else:
                    first_record = report.records[first]
                    original = report.routed.get(first) or report.verdicts[first]
                    report.verdicts[index] = Verdict(
                        Reason.DUPLICATE_IN_BATCH,
                        f"submission already in this batch at {first_record.correlation_id}",
                        original.submission_id,
                        None,
                        original.platform,
                    )
        self.metrics.count(Metric.RECORDS_ROUTED, len(report.routed))
        self._log_routed(report)

    @staticmethod
    def _log_routed(report: BatchReport) -> None:
        """One line per `ROUTED_PER_LOG_LINE` routed records, each named (decision 113): a Powertools line costs
        about as much CPU as routing the record, and the record's own trail is its message and its run."""
        routed = [
            {
                CORRELATION_KEY: report.records[index].correlation_id,
                "submission_id": message.submission_id,
                "challenge_id": message.challenge_id,
                "platform": message.platform,  # a StrEnum: JSON writes its value, without a descriptor call
                "skip_reason": message.skip_reason,
            }
            for index, message in sorted(report.routed.items())
        ]
        for start in range(0, len(routed), ROUTED_PER_LOG_LINE):
            chunk = routed[start : start + ROUTED_PER_LOG_LINE]
            skipped = sum(1 for entry in chunk if entry["skip_reason"] is not None)
            logger.info(
                "records routed",
                extra={"routed": chunk, "count": len(chunk), "to_be_recorded_as_skipped": skipped},
            )

    def _audit(self, report: BatchReport) -> None:
        if not report.verdicts:
            return
        keys = {index: mark_key(report.records[index]) for index in report.verdicts}
        lookup = self.marks.lookup(list(keys.values()))
        now = self.clock()
        items: list[AuditItem] = []
        for index, verdict in sorted(report.verdicts.items()):
            if keys[index] in lookup.unknown:  # cannot tell whether it was audited: retry it, never audit twice
                report.failed[index] = "audit marks unavailable"
            elif keys[index] in lookup.marked:  # a re-delivery: its audit message exists, and was counted
                report.already_audited.add(index)
            else:
                items.append(AuditItem(index, build_audit_record(report.records[index], verdict, now)))
        self._log_already_audited(report)
        if not items:
            return
        delivered, failed = self.auditor.send(items)
        report.audited = delivered
        report.failed.update(failed)
        unmarked = self.marks.mark([keys[index] for index in sorted(delivered)])
        if unmarked:
            # The audits are delivered; failing the records would re-send them. A re-delivery may repeat them.
            logger.error(
                "audit marks not written; a re-delivery would audit these records again",
                extra={"records": len(unmarked)},
            )
        counts: Counter[tuple[AuditDisposition, str]] = Counter()
        for item in items:
            if item.key in delivered:
                counts[(item.record.disposition, item.record.reason)] += 1
        self._log_audited(report, items, delivered)
        for (disposition, reason), count in sorted(counts.items()):
            metric = Metric.RECORDS_SKIPPED if disposition is AuditDisposition.SKIPPED else Metric.RECORDS_REJECTED
            self.metrics.count(metric, count, reason=reason)

    @staticmethod
    def _log_audited(report: BatchReport, items: list[AuditItem], delivered: set[int]) -> None:
        """Skipped records (INFO) and rejected ones (WARNING) named with their reason and detail,
        `AUDITED_PER_LOG_LINE` a line (decision 113): each also has its audit message and its count."""
        for disposition in (AuditDisposition.SKIPPED, AuditDisposition.REJECTED):
            named = [
                {
                    CORRELATION_KEY: item.record.correlation_id,
                    "reason": item.record.reason,
                    "detail": item.record.detail,
                    "submission_id": item.record.submission_id,
                    "challenge_id": item.record.challenge_id,
                    "platform": platform.value if (platform := report.verdicts[item.key].platform) else None,
                    "audited": item.key in delivered,
                }
                for item in items
                if item.record.disposition is disposition
            ]
            log = logger.info if disposition is AuditDisposition.SKIPPED else logger.warning
            for start in range(0, len(named), AUDITED_PER_LOG_LINE):
                chunk = named[start : start + AUDITED_PER_LOG_LINE]
                log(
                    f"records {disposition.value}",
                    extra={
                        "records": chunk,
                        "count": len(chunk),
                        "reasons": dict(sorted(Counter(entry["reason"] for entry in chunk).items())),
                    },
                )

    @staticmethod
    def _log_already_audited(report: BatchReport) -> None:
        for index in sorted(report.already_audited):
            verdict = report.verdicts[index]
            logger.info(
                "record re-delivered; already audited",
                extra={
                    CORRELATION_KEY: report.records[index].correlation_id,
                    "reason": verdict.reason.value,
                    "platform": verdict.platform.value if verdict.platform else None,
                },
            )

    @staticmethod
    def _log_failures(report: BatchReport) -> None:
        for index, why in sorted(report.failed.items()):
            logger.error(
                "record failed; Kafka will re-deliver it",
                extra={CORRELATION_KEY: report.records[index].correlation_id, "why": why},
            )


def routed_submission(
    submission: InboundSubmission, resolution: Resolution, record: MskRecord, now: datetime
) -> RoutedSubmission:
    """The message the challenge queue delivers, from either platform's fields (raises ValidationError)."""
    common: dict[str, Any] = {
        "challenge_id": resolution.challenge_id,
        "legacy_challenge_id": resolution.legacy_challenge_id,
        "correlation_id": record.correlation_id,
        "source": record.source,
        "routed_at": now,
        "skip_reason": resolution.skip_reason,
    }
    if isinstance(submission, V6SubmissionPayload):
        return RoutedSubmission(
            platform=submission.platform,
            submission_id=submission.submission_id,
            member_id=submission.member_id,
            member_handle=submission.member_handle,
            url=submission.submission_url,
            submitted_date=submission.submitted_date,
            **common,
        )
    return RoutedSubmission(
        submission_id=submission.id,
        member_id=submission.member_id,
        url=submission.url,
        submission_type=submission.type,
        file_type=submission.file_type,
        submission_phase_id=submission.submission_phase_id,
        created=submission.created,
        submitted_date=submission.submitted_date,
        **common,
    )
