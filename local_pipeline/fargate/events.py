"""The task state change events: RUNNING, then STOPPED, put through the emulated EventBridge `PutEvents` (so the
rule's own pattern decides what reaches the completion function), as the task-event faults decided at RunTask
say: `stopped-event-lost` (never put), `stopped-event-duplicate` (put twice), `stopped-event-delayed`
(`delay_seconds` late), `stopped-event-reordered` (RUNNING after STOPPED)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from fault_injection import FaultKind
from local_pipeline.fargate.tasks import (
    DEFAULT_EVENT_DELAY_SECONDS,
    DEFAULT_REORDER_DELAY_SECONDS,
    FakeTask,
    event_detail,
)


class TaskEvents:
    """Puts each task's state change events; records lost events and put errors; counts events held back."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], lock: threading.RLock, region: str) -> None:
        self._emit = emit
        self._lock = lock
        self.region = region
        self.event_errors: list[str] = []
        self.lost_events: list[str] = []  # task ARNs whose STOPPED event the `lose-stopped-event` fault dropped
        self.held = 0  # delayed events not yet put
        self.stopping = threading.Event()

    def entry(self, task: FakeTask) -> dict[str, Any]:
        return {
            "Source": "aws.ecs",
            "DetailType": "ECS Task State Change",
            "Resources": [task.arn],
            "Detail": json.dumps(event_detail(task, self.region, time.time())),
        }

    def emit_state(self, task: FakeTask) -> None:
        """Put the task's state change event, as the task-event faults decided at RunTask say."""
        stopped = task.last_status == "STOPPED"
        if not stopped and FaultKind.STOPPED_EVENT_REORDERED in task.faults:
            with self._lock:
                task.running_event_held = True  # RUNNING goes out after STOPPED
            return
        if stopped and task.lose_stopped_event:
            with self._lock:
                self.lost_events.append(task.arn)
            return
        entry = self.entry(task)
        delayed = task.faults.get(FaultKind.STOPPED_EVENT_DELAYED) if stopped else None
        if delayed is not None:
            self.put_later(entry, delayed.param("delay_seconds", DEFAULT_EVENT_DELAY_SECONDS))
        else:
            self.put(task.arn, entry)
        if stopped and FaultKind.STOPPED_EVENT_DUPLICATE in task.faults:
            self.put(task.arn, entry)  # EventBridge delivers at least once: the same event twice
        if stopped and task.running_event_held:
            self._put_held_running(task)

    def _put_held_running(self, task: FakeTask) -> None:
        """stopped-event-reordered: the RUNNING event held back goes out after STOPPED."""
        with self._lock:
            task.running_event_held = False
            task.last_status = "RUNNING"  # a snapshot of the earlier state, sent late
            late = self.entry(task)
            task.last_status = "STOPPED"
        self.put_later(late, DEFAULT_REORDER_DELAY_SECONDS)

    def put(self, task_arn: str, entry: dict[str, Any]) -> None:
        try:
            self._emit(entry)
        except Exception as error:  # recorded: the run then shows the submission as unaccounted
            with self._lock:
                self.event_errors.append(f"{task_arn}: {type(error).__name__}: {error}")

    def put_later(self, entry: dict[str, Any], delay: float) -> None:
        with self._lock:
            self.held += 1

        def put() -> None:
            try:
                if not self.stopping.is_set():
                    self.put(str(entry["Resources"][0]), entry)
            finally:
                with self._lock:
                    self.held -= 1

        timer = threading.Timer(delay, put)
        timer.daemon = True
        timer.start()
