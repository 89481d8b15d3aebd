"""The sweep: every scheduled run looks at what may need the pipeline's attention, in passes (one module each).

1. **Due LAUNCHED items** (`launched_runs`; decisions 008, 073): described first, then a lost STOPPED event is
   reconciled with a synthetic one, an overdue task stopped, a superseded run's task stopped, a live one checked
   again later.
2. **The pipeline's own running tasks** (`running_tasks`; decision 071): adopted by their item or stopped as orphans;
   a task far past its own timeout is stopped.
3. **Stuck launches** (`stuck_launches`; decision 080): DEAD_LETTERED for an operator to redrive (a pending relaunch
   is re-driven instead).
4. **Unfinished reports** (`unfinished_reports`; decision 080): re-driven through the completion function.

Then, with capacity (decision 096), the safety net that keeps every waiting run moving when each trigger was lost
(after the **config versions** pass, `config_versions`, decision 121: the SSM versions stamped on the pool items):
5. **Slots** (here): the slot reconciler compares the slots held with the runs and with the running tasks pass 2
   listed (only when that listing was complete), and corrects drift (SlotsReconciled).
6. **ADMITTED runs past their deadline**, 7. **dispatch**, 8. **gauges** (`capacity_passes`).

Everything is by run id (`<submissionId>#<PHASE>`, decision 084): a task's run is (MM_SUBMISSION_ID, MM_PHASE).
A duplicate synthetic event (the real one arrived after all) is harmless: the completion handler records an
outcome once and reports once. One failure never stops the rest: the item stays due for the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from mm_adapters.status_store import StatusStore
from mm_contracts.ports import MetricsSink
from mm_contracts.settings import TimeoutSweeperSettings
from sweeper_lambda.capacity import SweeperCapacity
from sweeper_lambda.capacity_passes import CapacityPasses
from sweeper_lambda.config_versions import ConfigVersionsPass
from sweeper_lambda.launched_runs import LaunchedRunsPass
from sweeper_lambda.result import SweepResult
from sweeper_lambda.running_tasks import RunningTasksPass
from sweeper_lambda.stuck_launches import StuckLaunchesPass
from sweeper_lambda.sweep_pass import SweepPorts
from sweeper_lambda.unfinished_reports import UnfinishedReportsPass


class Sweeper:
    """One sweep: the passes in order, each guarded (a whole pass failing never stops the others)."""

    def __init__(
        self,
        *,
        store: StatusStore,
        ecs: Any,
        metrics: MetricsSink,
        settings: TimeoutSweeperSettings,
        logger: Logger,
        lambda_client: Callable[[], Any] | None = None,
        capacity: SweeperCapacity | None = None,
        config_versions: ConfigVersionsPass | None = None,
    ) -> None:
        ports = SweepPorts(
            store=store,
            ecs=ecs,
            metrics=metrics,
            settings=settings,
            logger=logger,
            lambda_client=lambda_client,
            capacity=capacity,
        )
        self._store = store
        self._capacity = capacity
        self._logger = logger
        self._launched = LaunchedRunsPass(ports)
        self._tasks = RunningTasksPass(ports)
        self._stuck = StuckLaunchesPass(ports)
        self._reports = UnfinishedReportsPass(ports)
        self._capacity_passes = CapacityPasses(ports)
        self._config_versions = config_versions

    def sweep(self) -> SweepResult:
        result = SweepResult()
        now = self._store.sweep_time()
        self._tasks.running_run_ids = None
        passes: list[tuple[str, Callable[[float, SweepResult], None]]] = [
            ("launched items", self._launched.run),
            ("running tasks", self._tasks.run),
            ("stuck launches", self._stuck.run),
            ("unfinished reports", self._reports.run),
        ]
        if self._config_versions is not None:
            # Before the capacity passes: their dispatch then uses the versions this sweep read.
            passes.append(("config versions", self._config_versions.run))
        if self._capacity is not None:
            passes += [
                ("slots", self._reconcile_slots),
                ("admitted runs", self._capacity_passes.resend_admitted),
                ("dispatch", self._capacity_passes.dispatch),
                ("capacity gauges", self._capacity_passes.emit_gauges),
            ]
        for name, sweep_pass in passes:
            try:
                sweep_pass(now, result)
            except Exception:  # a whole pass failed (a query): the others still run
                result.failed.append(f"pass: {name}")
                self._logger.exception("sweeper pass failed", extra={"sweep_pass": name})
        return result

    def _reconcile_slots(self, now: float, result: SweepResult) -> None:
        """Pass 5: the slots held against the runs, and against the running tasks pass 2 listed (only when that
        listing was complete)."""
        assert self._capacity is not None
        repairs = self._capacity.reconciler.reconcile(self._tasks.running_run_ids)
        result.slots_reconciled += len(repairs)
