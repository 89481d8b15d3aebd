"""What one sweep did (`SweepResult`): the counts the handler logs and returns, and what failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SweepResult:
    overdue: int = 0  # due LAUNCHED items
    stopped: int = 0  # StopTask for a timeout
    superseded_stopped: int = 0  # StopTask of a superseded run's task whose first StopTask failed (decision 095)
    already_gone: int = 0
    reconciled: int = 0  # synthetic STOPPED events sent to the completion function
    stopped_again: int = 0  # stop requested earlier, task still running: StopTask repeated
    gave_up: int = 0
    still_running: int = 0  # described running before its timeout: next liveness check scheduled
    awaiting_event: int = 0  # described STOPPED within the event grace: its event may still come
    tasks_seen: int = 0  # running tasks of ours listed in the clusters
    orphans_stopped: int = 0
    adopted: int = 0
    launches_dead_lettered: int = 0
    reports_redriven: int = 0
    report_gave_up: int = 0
    slots_reconciled: int = 0  # slot repairs by the reconciler
    slots_released: int = 0  # slots freed by a definite dead-letter of this sweep
    admissions_resent: int = 0  # ADMITTED runs past their deadline whose message was sent again
    runs_admitted: int = 0  # waiting runs admitted by this sweep's dispatch
    failed: list[str] = field(default_factory=list)  # what could not be handled (retried next run)

    @property
    def examined(self) -> int:
        return self.overdue + self.tasks_seen + self.launches_dead_lettered + self.reports_redriven

    def to_dict(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "stopped": self.stopped,
            "supersededStopped": self.superseded_stopped,
            "alreadyGone": self.already_gone,
            "reconciled": self.reconciled,
            "stoppedAgain": self.stopped_again,
            "gaveUp": self.gave_up,
            "stillRunning": self.still_running,
            "awaitingEvent": self.awaiting_event,
            "tasksSeen": self.tasks_seen,
            "orphansStopped": self.orphans_stopped,
            "adopted": self.adopted,
            "launchesDeadLettered": self.launches_dead_lettered,
            "reportsRedriven": self.reports_redriven,
            "reportGaveUp": self.report_gave_up,
            "slotsReconciled": self.slots_reconciled,
            "slotsReleased": self.slots_released,
            "admissionsResent": self.admissions_resent,
            "runsAdmitted": self.runs_admitted,
            "failed": len(self.failed),
        }
