"""Passes 6-8 of a sweep, with capacity (decision 096): the safety net that keeps every waiting run moving when
each trigger was lost.

6. **ADMITTED runs past their deadline**: their message never led to a claim (lost send, lost message): the
   deadline is pushed, then the message is sent to the challenge queue again (a duplicate is harmless: the launch
   claim is exactly-once). After `MAX_ADMISSION_RESENDS` re-sends the message is presumed unprocessable: the run
   becomes DEAD_LETTERED with its slot freed, for an operator to redrive; a v6 run's terminal report is handed on.
7. **Dispatch**, environment-wide: waiting runs are admitted into whatever room there is.
8. **Gauges**: RunningTasks, WaitingRuns, OldestWaitSeconds and CapacityFull, per challenge and for the environment.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from mm_capacity.config import CapacityConfigError
from mm_capacity.dispatcher import CONFIG_BLOCK, Admitted
from mm_capacity.queues import entry_of_admitted
from mm_contracts.metric_names import Metric
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.models.lifecycle import (
    LifecycleRecord,
    ReportStatus,
    SubmissionState,
)
from mm_contracts.models.phase import Platform
from sweeper_lambda.capacity import capacity_gauges
from sweeper_lambda.result import SweepResult
from sweeper_lambda.sweep_pass import SweepPass

# Re-sends of an ADMITTED run's message before the sweeper gives up on it (dead-letters it, freeing its slot):
# three sends over ~15 minutes that a healthy challenge processor would each have claimed within seconds.
MAX_ADMISSION_RESENDS = 3

ADMISSION_DEAD_LETTER_REASON = (
    f"admitted but never launched: its message was not processed after {MAX_ADMISSION_RESENDS} sends; "
    "redrive it from the challenge DLQ"
)

# The StuckLaunchesDeadLettered reason of such a run (the stuck launches of pass 3 count without one).
ADMISSION_NEVER_CLAIMED = "admission_never_claimed"


class CapacityPasses(SweepPass):
    """Passes 6-8 (the slot reconciler, pass 5, is the sweep's own step): re-send unclaimed admissions, dispatch,
    gauges."""

    def resend_admitted(self, now: float, result: SweepResult) -> None:
        due = self._store.find_due(SubmissionState.ADMITTED, before=now, limit=self._settings.max_stops_per_run)
        if not due:
            return
        records = self._store.get_many(entry.run_id for entry in due)
        for entry in due:
            record = records.get(entry.run_id)
            if record is None or record.state is not SubmissionState.ADMITTED or record.deadline_at is None:
                continue  # claimed (or cancelled) since the index listed it
            if record.deadline_at != entry.deadline_at or record.deadline_at >= now:
                continue
            self._guarded(result, record.run_id, partial(self._resend, record, result))

    def _resend(self, record: LifecycleRecord, result: SweepResult) -> None:
        assert self._capacity is not None
        assert record.deadline_at is not None
        if record.admission_resends >= MAX_ADMISSION_RESENDS:
            self._dead_letter_admission(record, result)
            return
        # Push the deadline first: of two overlapping sweeps only one re-sends, and a send lost now is re-sent
        # after the new deadline.
        if not self._capacity.store.mark_admission_resent(record.run_id, observed_deadline=record.deadline_at):
            return
        self._capacity.send(Admitted(entry_of_admitted(record), record))
        result.admissions_resent += 1
        self._logger.warning(
            "admitted run never claimed: its message was sent to the challenge queue again",
            extra={"run_id": record.run_id, "challenge_id": record.challenge_id},
        )

    def _dead_letter_admission(self, record: LifecycleRecord, result: SweepResult) -> None:
        """Its message was sent again and again and never processed: DEAD_LETTERED, slot freed (one transaction),
        so the run neither holds its slot forever nor is re-sent forever. The dispatch pass of this same sweep
        hands the slot to the next waiting run."""
        assert self._capacity is not None
        keys = {"run_id": record.run_id, "challenge_id": record.challenge_id, "resends": record.admission_resends}
        dead = self._capacity.store.dead_letter_admission(record, reason=ADMISSION_DEAD_LETTER_REASON)
        if dead is None:
            self._logger.info("admitted run moved on before it could be dead-lettered", extra=keys)
            return
        result.launches_dead_lettered += 1
        if record.slot_pools:
            result.slots_released += 1
        self._metrics.count(Metric.STUCK_LAUNCHES_DEAD_LETTERED, reason=ADMISSION_NEVER_CLAIMED)
        report_due = dead.platform is Platform.V6 and dead.report_status is ReportStatus.PENDING
        self._logger.error(
            "admitted run never claimed after its last re-send: DEAD_LETTERED, slot freed; redrive the challenge DLQ",
            extra={**keys, "report_due": report_due},
        )
        if report_due:
            # A v6 run: its terminal summation is owed now, as for a definite dead-letter of pass 3.
            self._send_report_due(record.run_id, keys)

    def dispatch(self, now: float, result: SweepResult) -> None:
        assert self._capacity is not None
        dispatched = self._capacity.dispatcher.dispatch()
        if dispatched.blocked_by == CONFIG_BLOCK:
            # Counted (CapacityConfigErrors) and logged by the dispatcher; failing the sweep makes it an Error too.
            result.failed.append("capacity: environment caps unreadable, nothing admitted")
        result.runs_admitted += len(dispatched.admitted)
        if dispatched.admitted:
            self._logger.info(
                "sweeper admitted waiting runs",
                extra={"admitted": len(dispatched.admitted), "blocked_by": dispatched.blocked_by},
            )

    def emit_gauges(self, now: float, result: SweepResult) -> None:
        capacity = self._capacity
        assert capacity is not None
        snapshot = capacity.store.pools()
        caps: dict[str, int | None] = {}
        oldest: dict[str, int] = {}
        shown: list[str] = []
        for challenge_id, pool in snapshot.challenges.items():
            config = capacity.challenge_settings(challenge_id)
            if config is None and pool.used == 0 and pool.waiting == 0:
                continue  # an idle challenge without a config (ended): its line stops
            shown.append(challenge_id)
            caps[challenge_id] = config.capacity.max_running_tasks if config is not None else pool.cap
            if pool.waiting > 0:
                entries = capacity.store.queue_entries(challenge_id)
                if entries:
                    oldest[challenge_id] = min(entry.enqueued_at for entry in entries)
        environment: EnvironmentCapacity | None
        try:
            environment = capacity.environment_capacity()
        except CapacityConfigError:
            environment = None  # counted by the dispatch pass; the gauges without the environment's cap
        refusal = environment.pool_write_refusal() if environment is not None else None
        if refusal is not None:
            # Applied all the same (refusing would stop every admission); a deploy and `caps set` refuse it (125).
            self._logger.warning("environment caps outrun the capacity pool item at their pace", extra={"why": refusal})
        shown_snapshot = replace(snapshot, challenges={cid: snapshot.challenges[cid] for cid in shown})
        for gauge in capacity_gauges(
            shown_snapshot, challenge_caps=caps, oldest_enqueued_at=oldest, environment=environment, now=now
        ):
            capacity.gauges.gauge(gauge.metric, gauge.value, challenge_id=gauge.challenge_id, seconds=gauge.seconds)
