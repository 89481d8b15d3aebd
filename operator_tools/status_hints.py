"""What `mm-processor status` tells the operator beyond the record: the environment a table belongs to (the stacks'
naming), where to look when there is no record, and the next step a run's state calls for."""

from __future__ import annotations

from typing import Any

from mm_contracts.models.phase import Platform


def capacity_table_beside(status_table: str) -> str | None:
    """`mm-<env>-runs` -> `mm-<env>-capacity` (the stacks' naming), else None."""
    prefix, suffix = "mm-", "-runs"
    if status_table.startswith(prefix) and status_table.endswith(suffix):
        return f"{status_table[: -len(suffix)]}-capacity"
    return None


def environment_of(table_name: str) -> str:
    """`mm-<env>-runs` (or the older `mm-<env>-submission-status`) -> `<env>` (the stacks' naming), else a
    placeholder for the hints."""
    prefix = "mm-"
    for suffix in ("-runs", "-submission-status"):
        if table_name.startswith(prefix) and table_name.endswith(suffix):
            return table_name[len(prefix) : -len(suffix)]
    return "<env>"


def not_found_hints(submission_id: str, environment: str) -> list[str]:
    """What "no record" means: the status table starts at the challenge processor, so look upstream."""
    return [
        "The status table starts when a challenge processor first receives the submission. No record means:",
        f"  - the router skipped or rejected it: its reason is in the audit queue mm-{environment}-router-audit and",
        f"    in the router's log; CloudWatch Logs Insights on /aws/lambda/mm-{environment}-router:",
        "      fields @timestamp, message, reasons, correlation_id",
        # Routed, skipped and rejected records are named in the router's per-chunk lines (`records routed` /
        # `records skipped` / `records rejected`, decision 113): match the text.
        f'      | filter submission_id = "{submission_id}" or @message like "{submission_id}"',
        "      | sort @timestamp desc",
        f"  - or it is still waiting in its challenge queue mm-{environment}-ch-<challengeId> (see the dashboard",
        f"    mm-{environment}-pipeline), or in the router's failure bucket mm-{environment}-router-failures-*;",
        "  - or the Kafka record never reached the router (check the MSK offset lag alarm).",
    ]


def next_step(record: Any, environment: str) -> str | None:
    """The operator action a state calls for, if any."""
    from mm_contracts.models.lifecycle import ReportStatus, SubmissionState

    dlq = f"mm-{environment}-ch-{record.challenge_id}-dlq"
    if record.state is SubmissionState.WAITING:
        return (
            "nothing: the run waits durably for a slot (no queue message, no DLQ) and starts as soon as one frees. "
            "If it waits long, compare the counts above with the caps (docs/operations.md 'Capacity'); raise a cap "
            "at run time with put-parameter of <ssmPrefix>/capacity (by default "
            f"/mm-processor/{environment}/capacity) or of the challenge's config parameter."
        )
    if record.state is SubmissionState.ADMITTED:
        return (
            "nothing: a slot is reserved and the launch message was sent to the challenge queue; if it is still "
            "ADMITTED after deadlineAt, the sweeper sends it again."
        )
    if record.state is SubmissionState.DEAD_LETTERED:
        return (
            f"the message is parked in {dlq}; fix the reason above, then redrive it "
            f"(SQS console 'Start DLQ redrive', or aws sqs start-message-move-task --source-arn <{dlq} ARN>). "
            "A redrive is safe: the launch is claimed exactly once."
        )
    if record.state is SubmissionState.LAUNCH_FAILED:
        return "the launch failed and the message is being retried from its queue; watch for DEAD_LETTERED."
    if record.report_status is ReportStatus.REJECTED:
        if record.platform is Platform.V6:
            return (
                "review-api-v6 rejected the run's terminal review summation (response above); fix the cause "
                "(submission id, scorecard, token scopes create/read/update:review_summation) and write the "
                f"{record.phase.value} summation manually: it will not be retried."
            )
        return (
            "the Topcoder API rejected the outcome report (response above); fix the cause (review type, "
            "submission id, permissions) and post the review manually: it will not be retried."
        )
    if record.report_status in (ReportStatus.PENDING, ReportStatus.REPORTING):
        if record.task_arn is None:  # a run recorded without a task (a v6 skip): its report is invoked, not evented
            return (
                "the skipped run's FAILED summation is not yet reported; the sweeper re-drives it (a \"Run Report "
                f"Due\" invoke of mm-{environment}-completion); if this persists, check that function's log."
            )
        return (
            f"the outcome is recorded but not yet reported; if this persists, the STOPPED event is in "
            f"mm-{environment}-completion-dlq: fix the cause (API down, credentials) and redrive it."
        )
    return None
