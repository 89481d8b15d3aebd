"""Where the local run knowingly differs from the deployed wiring (`LocalDeviations`): time compressed so a run
takes seconds, never a name, a filter policy, a redrive count or an environment variable name (decisions 064, 079).
`local_pipeline.provision` applies them; the report lists them (`localDeviations`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LocalDeviations:
    """Where the local run knowingly differs from the deployed wiring, so a run takes seconds, not hours.

    Every field names the deployed value it replaces; none of them changes a name, a filter policy,
    a redrive policy's maxReceiveCount or an environment variable name (the drift test checks those).
    """

    # Deployed: 6 x the challenge processor's timeout (180 s). Redelivery after a failed launch in seconds, and
    # still longer than the launch lease below (deployed 180 s > 60 s), so a delivery after an ambiguous
    # RunTask finds the lease expired and re-claims it with the same clientToken (decision 070).
    queue_visibility_timeout_seconds: int = 12
    # Deployed: ChallengeProcessorSettings.launch_lease_seconds (60). 10 is the settings' minimum.
    launch_lease_seconds: int = 10
    # Deployed: EventBridge invokes the completion Lambda asynchronously (retries at about +60 s and +120 s,
    # then the target DLQ). Locally 12 s x 3 receives, so the third receive comes after the report lease and
    # the slow-commit window (10 + 13 s), as the deployed retries come after 90 + 60 s (decision 074).
    completion_visibility_timeout_seconds: int = 12
    # Deployed: CompletionSettings report_lease_seconds (90), report_slow_commit_seconds (60; locally above the
    # stand-in's 12 s slow commit), report_check_delay_seconds (600; the settings' minimum is 60),
    # start_relaunch_delay_seconds (60) and relaunch_check_seconds (900; minimum 60).
    report_lease_seconds: int = 10
    report_slow_commit_seconds: int = 13
    report_check_delay_seconds: int = 60
    start_relaunch_delay_seconds: int = 2
    relaunch_check_seconds: int = 60
    # Deployed: each challenge's `timeoutSeconds` (1800, 3600, ...). 30 is ChallengeConfig's minimum.
    challenge_timeout_seconds: int | None = 30
    # The sweeper sees deadlines this much earlier (its overdue query only), so with a 30 s challenge
    # timeout a task is stopped after ~3 s. 0 = real deadlines.
    sweeper_deadline_advance_seconds: float = 27.0
    # Deployed: every `sweeperIntervalMinutes` minutes.
    sweep_interval_seconds: float = 1.0
    # Deployed: TimeoutSweeperSettings.reconcile_grace_seconds (900 s). Seen through the sweeper's advanced
    # deadlines (above), a STOPPED event not processed ~8 s after a stop is reconciled (decision 008).
    reconcile_grace_seconds: int = 35
    # The sweeper's other periods (decision 079), seen like the grace above through the advanced sweep time
    # (27 s): deployed event grace 300 s (a task STOPPED longer ago without its event is reconciled), orphan
    # settle 180 s (an untracked task younger than this may still be being recorded), overrun grace 900 s (how
    # far past its own timeout a task may run), stuck launch 600 s (a LAUNCHING lease expired longer ago means
    # the message is in the DLQ: visibility x receives + margin), report re-drive every 900 s, liveness 900 s.
    sweeper_event_grace_seconds: int = 35
    sweeper_orphan_settle_seconds: int = 40
    sweeper_overrun_grace_seconds: int = 10
    sweeper_launch_stuck_after_seconds: int = 40
    sweeper_report_retry_interval_seconds: int = 60  # the settings' minimum
    sweeper_liveness_check_seconds: int = 60  # the settings' minimum
    # Deployed: the Kafka plan's batch size (None keeps it).
    kafka_batch_size: int | None = None
    # Deployed: capacity_cache_seconds 60 (every function's cache of `<ssmPrefix>/capacity`). A cap changed with
    # put-parameter during a local run takes effect within this long. The caps themselves are never changed.
    capacity_cache_seconds: int = 5
    # Deployed: TimeoutSweeperSettings.slot_reconcile_grace_seconds (900 s; 60 is the settings' minimum): an
    # ambiguous dead-lettered run's slot is freed this long after its last change when no task of it runs.
    slot_reconcile_grace_seconds: int = 60

    def to_dict(self) -> dict[str, Any]:
        return {
            "queueVisibilityTimeoutSeconds": self.queue_visibility_timeout_seconds,
            "launchLeaseSeconds": self.launch_lease_seconds,
            "reportLeaseSeconds": self.report_lease_seconds,
            "reportSlowCommitSeconds": self.report_slow_commit_seconds,
            "reportCheckDelaySeconds": self.report_check_delay_seconds,
            "startRelaunchDelaySeconds": self.start_relaunch_delay_seconds,
            "relaunchCheckSeconds": self.relaunch_check_seconds,
            "completionVisibilityTimeoutSeconds": self.completion_visibility_timeout_seconds,
            "challengeTimeoutSeconds": self.challenge_timeout_seconds,
            "sweeperDeadlineAdvanceSeconds": self.sweeper_deadline_advance_seconds,
            "sweepIntervalSeconds": self.sweep_interval_seconds,
            "reconcileGraceSeconds": self.reconcile_grace_seconds,
            "sweeperEventGraceSeconds": self.sweeper_event_grace_seconds,
            "sweeperOrphanSettleSeconds": self.sweeper_orphan_settle_seconds,
            "sweeperOverrunGraceSeconds": self.sweeper_overrun_grace_seconds,
            "sweeperLaunchStuckAfterSeconds": self.sweeper_launch_stuck_after_seconds,
            "sweeperReportRetryIntervalSeconds": self.sweeper_report_retry_interval_seconds,
            "sweeperLivenessCheckSeconds": self.sweeper_liveness_check_seconds,
            "kafkaBatchSize": self.kafka_batch_size,
            "capacityCacheSeconds": self.capacity_cache_seconds,
            "slotReconcileGraceSeconds": self.slot_reconcile_grace_seconds,
        }
