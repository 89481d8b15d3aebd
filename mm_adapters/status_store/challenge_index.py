"""A challenge's runs, for the operator (decision 108): the `byChallenge` index (partition `challengeId`, sort
`createdAt`) names them, a consistent BatchGetItem reads them.

The index projects only what never changes after a run's item is created (its keys, `runId`, submission, phase,
member, platform), so a state change never writes it; the records themselves (state, report, routed message) come
from the table, consistently. A GSI is eventually consistent: a run created a moment ago may be missing from one
listing (the next one has it). Only the operator tool queries it; no function's role can.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mm_adapters.status_store.table import StatusTable
from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.models.routed import RoutedSubmission
from mm_contracts.names import STATUS_TABLE_CHALLENGE_INDEX, STATUS_TABLE_PARTITION_KEY

# A challenge's listing is read in pages; this many pages at most (1 MB each: far more runs than a match has).
_MAX_PAGES = 1000


class ChallengeIndexReads(StatusTable):
    """`runs_of_challenge` and `latest_submissions` over the `byChallenge` index."""

    def run_ids_of_challenge(self, challenge_id: str) -> list[str]:
        """The run ids of a challenge's items, oldest first (the index's order: `createdAt`)."""
        run_ids: list[str] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": STATUS_TABLE_CHALLENGE_INDEX,
            "KeyConditionExpression": "challengeId = :challenge",
            "ExpressionAttributeValues": self._values({":challenge": challenge_id}),
            "ProjectionExpression": STATUS_TABLE_PARTITION_KEY,
        }
        for _ in range(_MAX_PAGES):
            response = self.client.query(**request)
            run_ids.extend(item[STATUS_TABLE_PARTITION_KEY]["S"] for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return run_ids
            request["ExclusiveStartKey"] = last
        raise RuntimeError(f"challenge {challenge_id}: more than {_MAX_PAGES} pages of runs")

    def runs_of_challenge(self, challenge_id: str) -> list[LifecycleRecord]:
        """Every run of a challenge that has an item, as the table holds it now, oldest first."""
        run_ids = self.run_ids_of_challenge(challenge_id)
        found = self.get_many(run_ids)
        # An item the index still names but TTL deleted since is simply absent; a record whose challenge changed
        # cannot happen (the attribute is written once), but the listing never shows another challenge's run.
        return [found[i] for i in run_ids if i in found and found[i].challenge_id == challenge_id]

    def latest_submissions(self, challenge_id: str) -> dict[int, str]:
        """memberId -> the id of that member's latest submission to the challenge (by the submission's created
        time), from the runs the table holds (decision 109: a run expired by TTL is not seen)."""
        return latest_by_member(self.runs_of_challenge(challenge_id))


def submission_created(records: Iterable[LifecycleRecord]) -> datetime | None:
    """When a submission was made: Topcoder's `created` (or `submittedDate`) in its routed message, else when its
    first run's item was created."""
    records = list(records)
    for record in records:
        routed = _routed(record)
        made = routed and (routed.created or routed.submitted_date)
        if made:
            return _aware(made)
    return min((_aware(r.created_at) for r in records), default=None)


def skipped_submission(runs: Iterable[LifecycleRecord]) -> bool:
    """Whether the pipeline refused to score this submission: its routed message carries a `skip_reason` (e.g. a
    v6 submission to an inactive challenge), or every run of it is a skip record (FAILED, never launched: launch
    attempt 0 and no task, e.g. "no phase triggered"). Such a submission is never a member's latest."""
    runs = list(runs)
    if any((routed := _routed(run)) is not None and routed.skip_reason for run in runs):
        return True
    return bool(runs) and all(
        run.state is SubmissionState.FAILED and run.launch_attempt == 0 and not run.task_arn for run in runs
    )


def latest_by_member(records: Iterable[LifecycleRecord]) -> dict[int, str]:
    """memberId -> their latest submission among `records` (ties: the larger submission id, so it is stable);
    submissions the pipeline skipped are left out (`skipped_submission`)."""
    return latest_and_skipped(records)[0]


def latest_and_skipped(records: Iterable[LifecycleRecord]) -> tuple[dict[int, str], list[str]]:
    """(`latest_by_member`, the ids of the skipped submissions left out of the choice, sorted)."""
    by_submission: dict[str, list[LifecycleRecord]] = {}
    for record in records:
        if record.member_id is not None:
            by_submission.setdefault(record.submission_id, []).append(record)
    latest: dict[int, tuple[datetime, str]] = {}
    skipped: list[str] = []
    for submission_id, runs in by_submission.items():
        if skipped_submission(runs):
            skipped.append(submission_id)
            continue
        created = submission_created(runs)
        member_id = runs[0].member_id
        if created is None or member_id is None:
            continue
        candidate = (created, submission_id)
        if member_id not in latest or candidate > latest[member_id]:
            latest[member_id] = candidate
    chosen = {member_id: submission_id for member_id, (_, submission_id) in sorted(latest.items())}
    return chosen, sorted(skipped)


def _aware(moment: datetime) -> datetime:
    """A timestamp without a zone is UTC (Topcoder's are), so every submission's time compares."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _routed(record: LifecycleRecord) -> RoutedSubmission | None:
    if not record.routed_message:
        return None
    try:
        return RoutedSubmission.model_validate_json(record.routed_message)
    except ValueError:
        return None


__all__ = [
    "ChallengeIndexReads",
    "latest_and_skipped",
    "latest_by_member",
    "skipped_submission",
    "submission_created",
]
