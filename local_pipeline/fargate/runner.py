"""Running the scorer: each task a real local process (the challenge's scorer command), with the container
overrides' environment, the task definition's environment, and its `secrets` resolved from the emulated SSM, as
the ECS agent injects them. StopTask sends SIGTERM, then SIGKILL after a grace period. `max_running` runner
threads take the tasks RunTask accepted, in order. A Python scorer command is forked from a warm interpreter
(`zygote`, decision 116) instead of starting one per task; any other command is started as it is."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from local_pipeline.fargate.events import TaskEvents
from local_pipeline.fargate.gauge import RunningGauge
from local_pipeline.fargate.tasks import FakeTask, TaskProcess, override_env
from local_pipeline.fargate.zygote import Zygote, forkable

BEHAVIOUR_ENV = "EXAMPLE_SCORER_BEHAVIOUR"
FAIL_TO_START = "fail-to-start"  # handled here: the container never starts
FAILED_TO_START_REASON = (
    "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref "
    "example.invalid/mm-scorer:latest: not found"
)
STOP_GRACE_SECONDS = 2.0  # ECS waits stopTimeout (30 s default) between SIGTERM and SIGKILL
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT")


def kill_if_running(process: TaskProcess) -> None:
    if process.poll() is None:
        process.kill()


def terminate(process: TaskProcess) -> None:
    """SIGTERM now, SIGKILL after the grace period (as ECS stops a container)."""
    process.send_signal(signal.SIGTERM)
    threading.Timer(STOP_GRACE_SECONDS, kill_if_running, args=(process,)).start()


class TaskRunner:
    """The task processes: started by runner threads, stopped on StopTask, killed when the fake stops."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        events: TaskEvents,
        gauge: RunningGauge,
        resolve_secret: Callable[[str], str],
        log_dir: Path,
        max_running: int,
        fork_tasks: bool = True,
    ) -> None:
        self._lock = lock
        self._events = events
        self._gauge = gauge
        self._resolve_secret = resolve_secret
        self.log_dir = log_dir
        self._max_running = max_running
        self._pending: queue.Queue[FakeTask | None] = queue.Queue()
        self._runners: list[threading.Thread] = []
        self.stopping = threading.Event()
        self._fork_tasks = fork_tasks
        self._zygotes: dict[str, Zygote] = {}  # interpreter -> its zygote
        self._zygote_lock = threading.Lock()
        self._retired_cpu_seconds = 0.0  # of zygotes replaced after they died

    def start(self, commands: Iterable[tuple[str, ...]] = ()) -> None:
        """The runner threads, and a warm zygote for each Python scorer command among `commands`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for command in commands:
            zygote = self._zygote(command) if self._fork_tasks and forkable(command) else None
            if zygote is not None and command[1] != "-c":
                zygote.warm(command[1])
        for index in range(self._max_running):
            runner = threading.Thread(target=self._run_loop, name=f"fargate-runner-{index}", daemon=True)
            runner.start()
            self._runners.append(runner)

    def _zygote(self, command: tuple[str, ...] | list[str]) -> Zygote:
        """The zygote of the command's interpreter (started, or started again after it died)."""
        interpreter = command[0]
        with self._zygote_lock:
            zygote = self._zygotes.get(interpreter)
            if zygote is None or not zygote.alive:
                if zygote is not None:
                    self._retired_cpu_seconds += zygote.cpu_seconds
                base = {name: os.environ[name] for name in _KEEP_ENV if name in os.environ}
                zygote = self._zygotes[interpreter] = Zygote(interpreter, base).start()
            return zygote

    def zygote_pids(self) -> list[int]:
        with self._zygote_lock:
            return [z.pid for z in self._zygotes.values() if z.pid is not None]

    @property
    def task_cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the forked tasks that exited (tasks started with Popen are not counted)."""
        with self._zygote_lock:
            return self._retired_cpu_seconds + sum(z.cpu_seconds for z in self._zygotes.values())

    def submit(self, task: FakeTask) -> None:
        self._pending.put(task)

    def stop(self, tasks: list[FakeTask]) -> None:
        """Kill every task still running, then let the runner threads go."""
        self.stopping.set()
        with self._lock:
            running = [t for t in tasks if t.process is not None and t.process.poll() is None]
        for task in running:
            if task.process is not None:
                task.process.kill()
        for _ in self._runners:
            self._pending.put(None)
        for runner in self._runners:
            runner.join(timeout=5)
        with self._zygote_lock:
            zygotes = list(self._zygotes.values())
        for zygote in zygotes:
            zygote.stop()

    def _run_loop(self) -> None:
        while True:
            task = self._pending.get()
            if task is None:
                return
            try:
                self._run(task)
            except Exception as error:
                with self._lock:
                    self._events.event_errors.append(f"{task.arn}: runner {type(error).__name__}: {error}")

    def _task_env(self, task: FakeTask) -> dict[str, str]:
        env = {name: os.environ[name] for name in _KEEP_ENV if name in os.environ}
        env.update(task.definition.environment)
        for name, parameter in task.definition.secrets.items():
            env[name] = self._resolve_secret(parameter)
        env.update(override_env(task.overrides))
        if task.behaviour:
            env[BEHAVIOUR_ENV] = task.behaviour
        return env

    def finish(
        self, task: FakeTask, *, exit_code: int | None, stop_code: str, reason: str, container_reason: str | None
    ) -> None:
        with self._lock:
            if task.mark_stopped(
                exit_code=exit_code,
                stop_code=stop_code,
                reason=reason,
                container_reason=container_reason,
                now=time.time(),
            ):
                self._gauge.stopped(task.challenge_id)
        self._events.emit_state(task)

    def _never_started(self, task: FakeTask) -> bool:
        """Finish a task that does not start (stopped before it did, the fake stopping, fail-to-start)."""
        with self._lock:
            stopped_before_start = task.stop_requested
        if stopped_before_start or self.stopping.is_set():
            self.finish(
                task, exit_code=None, stop_code="UserInitiated", reason="stopped before start", container_reason=None
            )
            return True
        if task.behaviour == FAIL_TO_START:
            self.finish(
                task,
                exit_code=None,
                stop_code="TaskFailedToStart",
                reason=FAILED_TO_START_REASON,
                container_reason=FAILED_TO_START_REASON.split(":")[0],
            )
            return True
        return False

    def _spawn(self, task: FakeTask) -> TaskProcess | None:
        """The scorer process of the task (its output to the task's log), or None when it cannot start."""
        log_path = self.log_dir / f"{task.task_id}.log"
        try:
            env = self._task_env(task)
            command = list(task.definition.command)
            if self._fork_tasks and forkable(command):
                return self._zygote(command).spawn(command, env, str(log_path))
            with log_path.open("wb") as log:
                return subprocess.Popen(
                    list(task.definition.command), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        except Exception as error:
            self.finish(
                task,
                exit_code=None,
                stop_code="TaskFailedToStart",
                reason=f"CannotStartContainerError: {type(error).__name__}",
                container_reason="CannotStartContainerError",
            )
            return None

    def _run(self, task: FakeTask) -> None:
        if self._never_started(task):
            return
        process = self._spawn(task)
        if process is None:
            return
        with self._lock:
            stop_now = task.mark_running(process, time.time())
        if stop_now:
            terminate(process)
        self._events.emit_state(task)
        code = process.wait()
        exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as Docker reports it
        self.finish(
            task,
            exit_code=exit_code,
            stop_code="EssentialContainerExited",
            reason="Essential container in task exited",
            container_reason=None,
        )
