"""The ports: the one interface per outside concept that the functions' logic is written against.

Logic takes these (never a Powertools object or a boto3 client type), so a test passes a fake and a function
passes the adapter from `mm_adapters`:

- `MetricsSink`: counts and gauges (adapter: `mm_adapters.metrics.EmfMetricsSink`; fake: `tests.fakes.metrics`).
- `LogSink`: what shared logic logs through (the standard library's and Powertools' `Logger` both fit).
- `TokenProvider`: the Topcoder M2M token (adapters: `mm_adapters.topcoder.token`).
- `Clock`: epoch seconds now (production: `time.time`; tests: `tests.fakes.clock`).
- `LaunchLedger`, `OutcomeLedger`, `SweepLedger`: the status table as the challenge processor, the completion
  function and the sweeper each use it (adapter: `mm_adapters.status_store.StatusStore`, which serves all three).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mm_contracts.metric_names import Metric

if TYPE_CHECKING:
    # Annotations only: a function that takes just the metrics port (the certificate monitor, the token
    # refresher) must not build the status-table models at import (decision 112).
    from mm_contracts.models.ledger import (
        DeadLetterResult,
        LaunchClaim,
        OutcomeRecordResult,
        RelaunchClaim,
        ReportClaim,
    )
    from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
    from mm_contracts.models.outcome import Outcome
    from mm_contracts.models.phase import ScoringPhase
    from mm_contracts.models.routed import RoutedSubmission


@runtime_checkable
class MetricsSink(Protocol):
    """One signature for every function. `count` adds `value` (default 1) to a counter, with an optional
    `Reason` and (per-run counts, decision 085) `Phase` dimension. `gauge` publishes a value at this moment:
    per challenge with `challenge_id`, else the environment's own line (what alarms watch)."""

    def count(self, metric: Metric, value: int = 1, *, reason: str | None = None, phase: str | None = None) -> None: ...

    def gauge(
        self, metric: Metric, value: float, *, challenge_id: str | None = None, seconds: bool = False
    ) -> None: ...


class LogSink(Protocol):
    """What shared logic logs through: the standard library's Logger and Powertools' Logger both fit (so the
    shared packages never import Powertools for logging, and each function keeps its own correlation ids)."""

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...
    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...
    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...
    def exception(self, msg: object, *args: object, extra: Mapping[str, object] | None = ...) -> None: ...


class TokenProvider(Protocol):
    """A Topcoder M2M bearer token; `force_refresh` after a 401 (decision 031)."""

    def get_token(self, force_refresh: bool = False) -> str: ...


class Clock(Protocol):
    """Epoch seconds now."""

    def __call__(self) -> float: ...


class RunReader(Protocol):
    """Strongly consistent reads of the status table, by run id (`<submissionId>#<PHASE>`)."""

    def get(self, run_id: str) -> LifecycleRecord | None: ...
    def get_many(self, run_ids: Iterable[str]) -> dict[str, LifecycleRecord]: ...


class LaunchLedger(RunReader, Protocol):
    """The status table as the challenge processor uses it: launch each run exactly once (decisions 002, 070)."""

    def claim_launch(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        lease_seconds: int,
        timeout_seconds: int | None = ...,
    ) -> LaunchClaim: ...

    def record_skipped(
        self,
        submission: RoutedSubmission,
        *,
        phase: ScoringPhase,
        scorer_type: str,
        reason: str,
        report_due_in_seconds: int = ...,
    ) -> bool: ...

    def mark_launched(
        self,
        run_id: str,
        *,
        attempt: int,
        task_arn: str,
        cluster_arn: str,
        timeout_seconds: int,
        liveness_check_seconds: int | None = ...,
    ) -> bool: ...

    def mark_launch_failed(
        self,
        run_id: str,
        *,
        attempt: int,
        reason: str,
        dead_lettered: bool,
        token_settled: bool = ...,
        message_lifetime_seconds: int = ...,
        report_due_in_seconds: int = ...,
    ) -> DeadLetterResult: ...

    def mark_launch_outcome_unknown(self, run_id: str, *, attempt: int, reason: str, dead_lettered: bool) -> bool: ...


class OutcomeLedger(RunReader, Protocol):
    """The status table as the completion function uses it: one outcome per task, one report per run."""

    def now(self) -> float: ...
    def get_runs(self, submission_id: str) -> list[LifecycleRecord]: ...

    def record_outcome(
        self,
        run_id: str,
        challenge_id: str,
        outcome: Outcome,
        *,
        report_required: bool,
        launch_attempt: int | None = ...,
        report_check_seconds: int = ...,
        stopped_at: datetime | None = ...,
    ) -> OutcomeRecordResult: ...

    def settle_report_not_required(self, run_id: str, *, task_arn: str) -> bool: ...

    def mark_start_failed_for_relaunch(
        self,
        run_id: str,
        challenge_id: str,
        *,
        task_arn: str,
        launch_attempt: int | None,
        reason: str,
        max_relaunches: int,
        recheck_seconds: int,
    ) -> RelaunchClaim: ...

    def mark_relaunch_sent(self, run_id: str, *, task_arn: str, delay_seconds: int) -> bool: ...
    def claim_report(self, run_id: str, *, lease_seconds: int) -> ReportClaim: ...
    def mark_reported(self, run_id: str, *, response_summary: str) -> bool: ...
    def mark_report_rejected(self, run_id: str, *, response_summary: str) -> bool: ...
    def release_report(self, run_id: str, *, ambiguous_at: int | None = ...) -> bool: ...


class SweepLedger(RunReader, Protocol):
    """The status table as the sweeper uses it: what is due, and the conditional repairs (decisions 071, 073, 080)."""

    def sweep_time(self) -> float: ...
    def find_overdue(self, *, limit: int = ...) -> list[LifecycleRecord]: ...
    def find_due(self, state: SubmissionState, *, before: float, limit: int = ...) -> list[LifecycleRecord]: ...
    def mark_liveness_checked(self, run_id: str, *, task_arn: str, next_check_at: int) -> bool: ...
    def mark_stop_requested(self, run_id: str, *, task_arn: str, reason: str, grace_seconds: int = ...) -> bool: ...
    def mark_reconcile_requested(self, run_id: str, *, task_arn: str, grace_seconds: int, detail: str) -> bool: ...
    def mark_reconcile_abandoned(self, run_id: str, *, task_arn: str, detail: str) -> bool: ...

    def adopt_task(
        self,
        run_id: str,
        *,
        observed_state: SubmissionState,
        attempt: int,
        task_arn: str,
        cluster_arn: str,
        started_at: float,
        timeout_seconds: int,
        liveness_check_seconds: int = ...,
    ) -> bool: ...

    def mark_orphan_stopped(self, run_id: str, *, detail: str) -> bool: ...

    def mark_launch_stuck(
        self,
        run_id: str,
        *,
        observed_state: SubmissionState,
        attempt: int,
        observed_deadline: int,
        reason: str,
        report_due_in_seconds: int = ...,
    ) -> DeadLetterResult: ...

    def mark_report_redriven(self, run_id: str, *, observed_deadline: int, next_check_at: int, detail: str) -> bool: ...
    def mark_relaunch_redriven(
        self, run_id: str, *, observed_deadline: int, next_check_at: int, detail: str
    ) -> bool: ...
    def clear_deadline(self, run_id: str, *, observed_deadline: int, history_state: str, detail: str) -> bool: ...
