"""The synthetic submission of the smoke check (decision 083).

One fixed test submission (`EnvironmentConfig.smoke`) is published to the submissions topic exactly as the
router publishes a routed record (the `RoutedSubmission` body, of the smoke challenge's platform, and the
`challengeId` message attribute the subscriptions filter on), then every run it triggers (one per phase the
challenge launches on a new submission: one on v5, EXAMPLE and PROVISIONAL on a typical v6 challenge) is followed
in the status table until each is final with its report settled; the smoke passes only when every run passed.
Then each run's status item is deleted so the next smoke can run the same submission (the challenge processor
treats a run with a final item as a duplicate and would not launch it again).

Refuses to start while a run of an earlier smoke of the same submission is still in flight (its item neither
final nor dead-lettered): two smokes would be one launch watched twice. A run's leftover that is finished (kept
with `--keep`, or dead-lettered) is deleted first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from infrastructure.config import SmokeSettings
from infrastructure.wiring import WiringPlan
from mm_adapters.status_store import StatusStore
from mm_contracts.models.lifecycle import FINAL_STATES, LifecycleRecord, ReportStatus, SubmissionState
from mm_contracts.models.phase import Platform, ScoringPhase, run_id, submission_id_fits
from mm_contracts.models.routed import KafkaCoordinates, RoutedSubmission
from mm_contracts.names import STATUS_TABLE_PARTITION_KEY
from operator_tools.clients import ClientSource
from operator_tools.health import submissions_topic_arn

# A report is settled when nothing will change it any more (REJECTED is settled, and a failed smoke).
SETTLED_REPORTS = frozenset({ReportStatus.NOT_REQUIRED, ReportStatus.REPORTED, ReportStatus.REJECTED})
# A passing smoke: scored, and the outcome reported (or, on success, reported by the scorer itself).
PASSING_REPORTS = frozenset({ReportStatus.NOT_REQUIRED, ReportStatus.REPORTED})
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
SMOKE_SUBMISSION_TYPE = "Contest Submission"


class SmokeNotConfiguredError(Exception):
    """No usable `smoke` block (none, or its challenge is not deployed and active): only the health checks run."""


class SmokeOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # the submission ended, but not scored and reported
    TIMED_OUT = "timed_out"  # not final (or its report not settled) within the timeout
    REFUSED = "refused"  # could not run: an earlier smoke is in flight, or the publish failed


class Leftover(StrEnum):
    """What an existing status item of the smoke submission means for a new smoke."""

    NONE = "none"
    FINISHED = "finished"  # final with its report settled, or dead-lettered: delete it, then run
    IN_FLIGHT = "in_flight"  # refuse


def is_settled(record: LifecycleRecord) -> bool:
    return record.state in FINAL_STATES and record.report_status in SETTLED_REPORTS


def is_finished(record: LifecycleRecord) -> bool:
    """Nothing will change the run any more: settled, or dead-lettered."""
    return is_settled(record) or record.state is SubmissionState.DEAD_LETTERED


def leftover_of(record: LifecycleRecord | None) -> Leftover:
    if record is None:
        return Leftover.NONE
    return Leftover.FINISHED if is_finished(record) else Leftover.IN_FLIGHT


def verdict_of(record: LifecycleRecord | None) -> SmokeOutcome:
    """PASSED only for a scored run whose report went through."""
    if record is None or not is_finished(record):
        return SmokeOutcome.TIMED_OUT
    if record.state is SubmissionState.SUCCEEDED and record.report_status in PASSING_REPORTS:
        return SmokeOutcome.PASSED
    return SmokeOutcome.FAILED


def overall_verdict(verdicts: list[SmokeOutcome]) -> SmokeOutcome:
    """The smoke's verdict over its runs: TIMED_OUT while any run is unfinished, else FAILED if any failed."""
    for outcome in (SmokeOutcome.TIMED_OUT, SmokeOutcome.FAILED):
        if outcome in verdicts:
            return outcome
    return SmokeOutcome.PASSED


@dataclass
class RunResult:
    """One run (submission, phase) of the smoke submission."""

    phase: str
    run_id: str
    outcome: SmokeOutcome
    state: str | None = None
    report_status: str | None = None
    reason: str | None = None
    report_response: str | None = None
    cleaned_up: bool = False
    states_seen: list[str] = field(default_factory=list)  # each state the item passed through, in order

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}


@dataclass
class SmokeResult:
    """The smoke's verdict; `state` .. `states_seen` are those of the deciding run (the first that did not pass,
    else the first run), so a one-run (v5) smoke reads as before; `runs` has every run."""

    environment: str
    submission_id: str
    challenge_id: str
    outcome: SmokeOutcome
    elapsed_seconds: float = 0.0
    state: str | None = None
    report_status: str | None = None
    reason: str | None = None
    report_response: str | None = None
    cleaned_up: bool = False  # every run's status item was deleted
    detail: str = ""
    states_seen: list[str] = field(default_factory=list)
    platform: str = ""
    runs: list[RunResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome is SmokeOutcome.PASSED

    def to_dict(self) -> dict[str, Any]:
        document = {**asdict(self), "outcome": self.outcome.value, "ok": self.ok}
        document["runs"] = [run.to_dict() for run in self.runs]
        return document


def routed_submission(plan: WiringPlan, smoke: SmokeSettings, now: datetime) -> RoutedSubmission:
    """The smoke submission as the router would have routed it from its platform's topic (its correlation id says
    it is a smoke). No `phase`: the challenge processor launches the challenge's onSubmission phases."""
    challenge = plan.config.challenge(smoke.challenge_id)
    platform = challenge.served_by
    source = KafkaCoordinates(
        topic=plan.config.kafka.topic_of(platform), partition=0, offset=0, timestamp=int(now.timestamp() * 1000)
    )
    return RoutedSubmission(
        platform=platform,
        submission_id=smoke.submission_id,
        challenge_id=challenge.challenge_id,
        legacy_challenge_id=challenge.legacy_id,
        member_id=smoke.member_id,
        url=smoke.url,
        # The v5 event names a submission type; a v6 one has none (the router leaves it unset).
        submission_type=SMOKE_SUBMISSION_TYPE if platform is Platform.V5 else None,
        correlation_id=f"smoke-{plan.config.environment}-{now:%Y%m%dT%H%M%SZ}",
        source=source,
        routed_at=now,
    )


def publish_entry(routed: RoutedSubmission) -> dict[str, Any]:
    """One PublishBatch entry, built by the router's own publisher code (one source for the message shape)."""
    from router_lambda.publisher import OutboundMessage

    entry: dict[str, Any] = OutboundMessage(key=0, body=routed.to_json(), challenge_id=routed.challenge_id).entry()
    return entry


class SmokeRun:
    """Publish, follow every run, judge, clean up. Clock and sleep are parameters so a test never waits."""

    def __init__(
        self,
        plan: WiringPlan,
        clients: ClientSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        if plan.config.smoke is None:
            raise SmokeNotConfiguredError(
                f"environment {plan.config.environment} has no `smoke` block in its config: add one "
                "(challengeId, submissionId, memberId, url) or run with --health-only"
            )
        active = {c.challenge_id for c in plan.config.challenges if c.active}
        if plan.config.smoke.challenge_id not in active:
            raise SmokeNotConfiguredError(
                f"smoke.challengeId {plan.config.smoke.challenge_id} is not one of environment "
                f"{plan.config.environment}'s active challenges: the router would not route it"
            )
        challenge = plan.config.challenge(plan.config.smoke.challenge_id)
        self.platform = challenge.served_by
        if not submission_id_fits(plan.config.smoke.submission_id, self.platform):
            # The config checks this when it can tell the platform; a CHALLENGE_IDS subset may hide it until here.
            raise SmokeNotConfiguredError(
                f"smoke.submissionId is not in the form of a {self.platform.value} submission id "
                f"(challenge {challenge.challenge_id} is served by {self.platform.value})"
            )
        # The runs a new submission triggers: one per onSubmission phase (decision 085), in phase order.
        triggered = {entry.phase for entry in plan.config.challenge_config(challenge).submission_phases}
        self.phases: tuple[ScoringPhase, ...] = tuple(phase for phase in ScoringPhase if phase in triggered)
        if not self.phases:
            raise SmokeNotConfiguredError(
                f"smoke.challengeId {challenge.challenge_id} launches no phase on a new submission (no "
                "onSubmission phase): the smoke would have nothing to follow; point it at another challenge"
            )
        self.plan = plan
        self.smoke: SmokeSettings = plan.config.smoke
        self.run_ids: tuple[str, ...] = tuple(run_id(self.smoke.submission_id, phase) for phase in self.phases)
        self.clients = clients
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.progress = progress
        self.store = StatusStore(plan.names.status_table, dynamodb_client=clients.client("dynamodb"))

    def _result(self, outcome: SmokeOutcome, **fields: Any) -> SmokeResult:
        return SmokeResult(
            environment=self.plan.config.environment,
            submission_id=self.smoke.submission_id,
            challenge_id=self.smoke.challenge_id,
            outcome=outcome,
            platform=self.platform.value,
            **fields,
        )

    def _records(self) -> dict[str, LifecycleRecord | None]:
        # One GetItem per run (a handful): the smoke's role needs no more than GetItem and DeleteItem.
        return {key: self.store.get(key) for key in self.run_ids}

    def delete_item(self, record: LifecycleRecord) -> bool:
        """Delete a run's item only in the state we last saw it in: a smoke started meanwhile keeps its own."""
        try:
            self.clients.client("dynamodb").delete_item(
                TableName=self.plan.names.status_table,
                Key={STATUS_TABLE_PARTITION_KEY: {"S": record.run_id}},
                ConditionExpression="#state = :state",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":state": {"S": record.state.value}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def run(
        self,
        *,
        timeout_seconds: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
        keep: bool = False,
    ) -> SmokeResult:
        timeout = float(timeout_seconds if timeout_seconds is not None else self.smoke.timeout_seconds)
        refused = self._clear_leftovers()
        if refused is not None:
            return refused

        routed = routed_submission(self.plan, self.smoke, self.now())
        response = self.clients.client("sns").publish_batch(
            TopicArn=submissions_topic_arn(self.plan), PublishBatchRequestEntries=[publish_entry(routed)]
        )
        if response.get("Failed"):
            failure = response["Failed"][0]
            return self._result(
                SmokeOutcome.REFUSED, detail=f"SNS refused the message: {failure.get('Code')}: {failure.get('Message')}"
            )
        started = self.clock()
        phases = ", ".join(phase.value for phase in self.phases)
        self.progress(
            f"published {self.platform.value} submission {routed.submission_id} for challenge {routed.challenge_id} "
            f"(correlation id {routed.correlation_id}); following {len(self.phases)} run(s) ({phases}); "
            f"waiting up to {timeout:.0f} s"
        )
        records, states = self._follow(started, timeout, poll_interval)
        elapsed = self.clock() - started
        runs = [
            self._run_result(phase, key, records[key], states[key])
            for phase, key in zip(self.phases, self.run_ids, strict=True)
        ]
        outcome = overall_verdict([run.outcome for run in runs])
        deciding = next((run for run in runs if run.outcome is not SmokeOutcome.PASSED), runs[0])
        result = self._result(
            outcome,
            elapsed_seconds=round(elapsed, 1),
            state=deciding.state,
            report_status=deciding.report_status,
            reason=deciding.reason,
            report_response=deciding.report_response,
            states_seen=deciding.states_seen,
            runs=runs,
        )
        result.detail = self._describe(result, deciding)
        if outcome is SmokeOutcome.TIMED_OUT:
            # Deleting an item in flight would untrack its task: the sweeper would stop it as an orphan and the
            # outcome would be lost. Every run's item stays (deleting only the finished ones would let a
            # redelivered message launch those phases again); the next smoke refuses until all have ended.
            result.detail += "; the status items are left in place (a run is still in flight)"
        elif not keep:
            for run in runs:
                record = records[run.run_id]
                run.cleaned_up = record is not None and self.delete_item(record)
            result.cleaned_up = all(run.cleaned_up for run in runs)
        return result

    def _clear_leftovers(self) -> SmokeResult | None:
        """Per run: refuse while one is in flight; else delete the finished ones. A refusal, or None to go on."""
        existing = self._records()
        in_flight = [r for r in existing.values() if r is not None and leftover_of(r) is Leftover.IN_FLIGHT]
        if in_flight:
            first = in_flight[0]
            report = first.report_status.value if first.report_status else "none"
            return self._result(
                SmokeOutcome.REFUSED,
                state=first.state.value,
                report_status=first.report_status.value if first.report_status else None,
                detail=(
                    f"run {first.run_id} of submission {self.smoke.submission_id} already has a status item in "
                    f"{first.state.value} (report {report}): an earlier smoke is still in flight. Wait for it to "
                    f"end (`mm-processor status {self.smoke.submission_id} --env {self.plan.config.environment}`), "
                    "then run again"
                ),
            )
        for record in existing.values():
            if record is None:
                continue
            self.progress(f"deleting the leftover status item of run {record.run_id} ({record.state.value})")
            if not self.delete_item(record):
                return self._result(
                    SmokeOutcome.REFUSED,
                    detail=f"the leftover status item of run {record.run_id} changed while deleting it",
                )
        return None

    def _follow(
        self, started: float, timeout: float, poll_interval: float
    ) -> tuple[dict[str, LifecycleRecord | None], dict[str, list[str]]]:
        states: dict[str, list[str]] = {key: [] for key in self.run_ids}
        label_phase = len(self.run_ids) > 1
        while True:
            records = self._records()
            for key, record in records.items():
                if record is None:
                    continue
                label = record.state.value + (f"/{record.report_status.value}" if record.report_status else "")
                seen = states[key]
                if not seen or seen[-1] != label:
                    seen.append(label)
                    where = f"{record.phase.value:<11} " if label_phase else ""
                    self.progress(f"  {self.clock() - started:6.1f} s  {where}{label}")
            if all(record is not None and is_finished(record) for record in records.values()):
                return records, states
            if self.clock() - started >= timeout:
                return records, states
            self.sleep(poll_interval)

    @staticmethod
    def _run_result(phase: ScoringPhase, key: str, record: LifecycleRecord | None, states: list[str]) -> RunResult:
        return RunResult(
            phase=phase.value,
            run_id=key,
            outcome=verdict_of(record),
            state=record.state.value if record else None,
            report_status=record.report_status.value if record and record.report_status else None,
            reason=record.reason if record else None,
            report_response=record.report_response if record else None,
            states_seen=states,
        )

    def _describe(self, result: SmokeResult, deciding: RunResult) -> str:
        runs = f"{len(result.runs)} runs" if len(result.runs) > 1 else "its run"
        which = f"run {deciding.phase} " if len(result.runs) > 1 else ""
        if result.outcome is SmokeOutcome.PASSED:
            if len(result.runs) > 1:
                return f"{runs} scored and reported in {result.elapsed_seconds:.1f} s"
            return (
                f"scored and reported in {result.elapsed_seconds:.1f} s ({result.state}, report {result.report_status})"
            )
        if result.outcome is SmokeOutcome.TIMED_OUT:
            where = deciding.state or "no status item yet (the challenge processor has not received it)"
            return f"{which}not final with a settled report after {result.elapsed_seconds:.1f} s: {where}"
        why = deciding.reason or deciding.report_response or "no reason recorded"
        return (
            f"{which}ended {deciding.state} (report {deciding.report_status}) after "
            f"{result.elapsed_seconds:.1f} s: {why}"
        )
