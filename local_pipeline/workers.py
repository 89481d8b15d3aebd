"""Function workers: each function instance runs in its own spawned process, as a Lambda sandbox does.

The process gets only the function's environment (the settings model's `to_env()` as the stack sets it,
plus what the Lambda runtime provides and the emulator endpoints), imports the real handler once (cold
start) and then serves invocations over a pipe (warm: module caches, clients and tokens persist). Its
stdout/stderr (Powertools' JSON logs and EMF metrics) go to a per-function log file, the local
CloudWatch Logs. An invocation that outlives the function's timeout kills the process, as Lambda does;
the next invocation is a cold start.

A function runs up to its concurrency in instances at once (`FunctionPool`, decision 116): an invocation takes
a warm idle instance, and a new instance (a cold start) is spawned only when every instance stayed busy for a
moment (`SCALE_UP_WAIT_SECONDS`) and the machine has CPU to spare for it (`MachineLoad`): on a two-core machine
a cold start costs ~0.6 s of CPU, and another instance of a function waiting on a saturated CPU only adds to it.
An event that has waited `STARVED_SCALE_UP_SECONDS` since it was queued (its SQS `SentTimestamp`) gets a new
instance however busy the machine is, one cold start at a time per function: Lambda scales to a backlog, and a
function held at one instance by the others' load becomes the pipeline's bottleneck (the completion function,
with every slot held until it records the outcome).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_REGION = "us-east-1"
_ACCOUNT = "123456789012"
# Inherited from the engine's environment: what any process needs to run, nothing AWS- or app-specific.
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT", "PYTHONPATH", "VIRTUAL_ENV")
_READY_TIMEOUT_SECONDS = 120.0
_SIMULATED_CRASH = "SimulatedCrash"  # fault_injection's "the function instance died here"
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)  # many workers importing at once on a busy machine
# How long an invocation waits for a busy instance before the pool spawns another (a cold start costs ~0.6 s of
# CPU; a warm instance usually frees up within one invocation, tens of milliseconds).
SCALE_UP_WAIT_SECONDS = 0.25
# An event kept waiting this long scales its function up even on a saturated machine (one cold start, ~0.6 s of
# CPU, against a backlog that grows by every event it holds up).
STARVED_SCALE_UP_SECONDS = 1.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Another instance is spawned only while at least this share of the machine's CPU time was idle lately.
SCALE_UP_IDLE_SHARE = 0.2
_LOAD_SAMPLE_SECONDS = 0.5


class MachineLoad:
    """The share of this machine's CPU time that was idle lately, from /proc/stat (None where there is none)."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self._path = path
        self._lock = threading.Lock()
        self._last: tuple[float, int, int] | None = None  # (when, idle ticks, all ticks)
        self._idle_share: float | None = None

    def _ticks(self) -> tuple[int, int] | None:
        try:
            with open(self._path, "rb") as stat:
                fields = [int(v) for v in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)  # idle + iowait, all

    def idle_share(self) -> float | None:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < _LOAD_SAMPLE_SECONDS:
                return self._idle_share
            ticks = self._ticks()
            if ticks is None:
                return None
            if self._last is not None and ticks[1] > self._last[2]:
                self._idle_share = (ticks[0] - self._last[1]) / (ticks[1] - self._last[2])
            self._last = (now, *ticks)
            return self._idle_share

    def has_room(self) -> bool:
        """True unless the machine was lately busier than SCALE_UP_IDLE_SHARE allows (unknown: room)."""
        share = self.idle_share()
        return share is None or share >= SCALE_UP_IDLE_SHARE


MACHINE_LOAD = MachineLoad()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live (or not yet reaped) process, from /proc; None where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


@dataclass(frozen=True)
class WorkerSpec:
    function_name: str
    handler: str  # "package.module.attribute"
    env: dict[str, str]  # the complete environment of the process
    timeout_seconds: float
    memory_mb: int
    log_path: str
    setup: str | None = None  # "package.module.function", run once after import (local hooks)
    setup_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invocation:
    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    cold_start: bool = False


def _resolve(path: str) -> Callable[..., Any]:
    module_name, _, attribute = path.rpartition(".")
    resolved: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return resolved


class LambdaContext:
    """What the Lambda runtime passes as `context` (the attributes Powertools reads)."""

    def __init__(self, function_name: str, memory_mb: int, timeout_seconds: float, request_id: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:{function_name}"
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _setup_again(conn: Connection, spec: WorkerSpec, updates: dict[str, str]) -> None:
    """New environment values (a fault plan), then the setup hook again; the answer goes back on `conn`."""
    os.environ.update(updates)
    try:
        if spec.setup:
            _resolve(spec.setup)(**spec.setup_args)
        conn.send(("ok", None, 0.0))
    except BaseException as error:
        traceback.print_exc()
        conn.send(("error", type(error).__name__, str(error)[:500], 0.0))


def _invoke_once(spec: WorkerSpec, handler: Callable[..., Any], request_id: str, event: Any) -> tuple[Any, ...]:
    """One invocation of the handler, as the Lambda runtime makes it: its result, or the error it raised."""
    context = LambdaContext(spec.function_name, spec.memory_mb, spec.timeout_seconds, request_id)
    began = time.monotonic()
    try:
        result = handler(event, context)
        return ("ok", result, (time.monotonic() - began) * 1000)
    except BaseException as error:  # Lambda reports any exception as a function error
        traceback.print_exc()
        return ("error", type(error).__name__, str(error)[:500], (time.monotonic() - began) * 1000)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _init(conn: Connection, spec: WorkerSpec) -> Callable[..., Any] | None:
    """Import the handler and run the setup hook (the cold start); tell the engine ready, or the init error."""
    started = time.monotonic()
    try:
        handler = _resolve(spec.handler)
        if spec.setup:
            _resolve(spec.setup)(**spec.setup_args)
    except BaseException as error:
        traceback.print_exc()
        conn.send(("init_error", type(error).__name__, str(error)[:500]))
        return None
    conn.send(("ready", (time.monotonic() - started) * 1000))
    return handler


def serve(conn: Connection) -> None:
    """The worker process: receive the spec, import the handler, then invoke until told to stop.

    The engine started it with exactly the function's environment; stdout/stderr are the log file.
    """
    spec: WorkerSpec = conn.recv()
    handler = _init(conn, spec)
    if handler is None:
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        if message[0] == "setup":
            _setup_again(conn, spec, message[1])
            continue
        _, request_id, event = message
        reply = _invoke_once(spec, handler, request_id, event)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        if reply[0] == "error" and reply[1] == _SIMULATED_CRASH:
            return  # the instance died (fault_injection.SimulatedCrash): the next invocation starts cold


class FunctionWorker:
    """The engine's handle on one function instance (one process; invocations are serialized)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._process: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._pending_cold_start = False
        self.invocations = 0
        self.errors = 0
        self.cold_starts = 0
        self.init_ms: list[float] = []
        self._retired_cpu_seconds = 0.0  # of the processes this instance had before its current one

    # ------------------------------------------------------------------ lifecycle
    def spawn(self) -> None:
        """Start the process with only the function's environment (a fresh interpreter, like a sandbox)."""
        parent, child = socket.socketpair()
        env = {name: os.environ[name] for name in _KEEP_ENV if name in os.environ}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
        env.update(self.spec.env)
        with open(self.spec.log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "local_pipeline.workers", str(child.fileno())],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(child.fileno(),),
                cwd=_REPO_ROOT,
            )
        child.close()
        conn = Connection(parent.detach())
        conn.send(self.spec)
        self._process, self._conn = process, conn
        self._pending_cold_start = True

    def wait_ready(self, timeout: float = _READY_TIMEOUT_SECONDS) -> None:
        assert self._conn is not None
        if not self._conn.poll(timeout):
            self._kill()
            raise RuntimeError(f"{self.spec.function_name}: worker not ready after {timeout:.0f}s")
        message = self._conn.recv()
        if message[0] != "ready":
            self._kill()
            raise RuntimeError(
                f"{self.spec.function_name}: init failed: {message[1]}: {message[2]} (see {self.spec.log_path})"
            )
        self.cold_starts += 1
        self.init_ms.append(float(message[1]))

    def configure(self, env_updates: dict[str, str]) -> None:
        """New environment values for this function (e.g. the run's fault plan): kept for every later cold
        start, and given to the live process, which runs its setup hook again."""
        with self._lock:
            self.spec = replace(self.spec, env={**self.spec.env, **env_updates})
            if self._conn is None or not self.alive:
                return
            self._conn.send(("setup", env_updates))
            if not self._conn.poll(_READY_TIMEOUT_SECONDS):
                self._kill()
                return
            message = self._conn.recv()
            if message[0] != "ok":
                raise RuntimeError(f"{self.spec.function_name}: setup failed: {message[1]}: {message[2]}")

    def start(self) -> FunctionWorker:
        self.spawn()
        self.wait_ready()
        return self

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of this instance's processes so far (the live one read from /proc)."""
        live = process_cpu_seconds(self._process.pid) if self._process is not None else None
        return self._retired_cpu_seconds + (live or 0.0)

    def _retire_cpu(self) -> None:
        if self._process is not None:
            self._retired_cpu_seconds += process_cpu_seconds(self._process.pid) or 0.0

    def _kill(self) -> None:
        if self._process is not None:
            self._retire_cpu()
            self._process.kill()
            self._process.wait(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def request_stop(self) -> None:
        """Ask the process to leave its loop (no wait)."""
        if self._conn is not None and self.alive:
            with contextlib.suppress(OSError, EOFError):
                self._conn.send(("stop",))

    def stop(self, grace_seconds: float = 0.5) -> None:
        """Like a sandbox being reclaimed: a short grace period, then the process is killed."""
        with self._lock:
            self._retire_cpu()
            self.request_stop()
            if self._process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=grace_seconds)
                self._process.kill()
                self._process.wait(timeout=5)
            if self._conn is not None:
                self._conn.close()
            self._process, self._conn = None, None

    # ------------------------------------------------------------------ invoke
    def invoke(self, event: dict[str, Any]) -> Invocation:
        with self._lock:
            cold = False
            try:
                if not self.alive:
                    self.spawn()
                    self.wait_ready()
                    cold = True
                elif self._pending_cold_start:
                    cold = True
            except RuntimeError as error:
                self.errors += 1
                return Invocation(ok=False, error_type="Runtime.InitError", error_message=str(error), cold_start=True)
            self._pending_cold_start = False
            assert self._conn is not None
            self.invocations += 1
            began = time.monotonic()
            self._conn.send(("invoke", str(uuid.uuid4()), event))
            if not self._conn.poll(self.spec.timeout_seconds):
                self._kill()  # Lambda kills the sandbox; the next invocation starts cold
                self.errors += 1
                return Invocation(
                    ok=False,
                    error_type="Sandbox.Timedout",
                    error_message=f"Task timed out after {self.spec.timeout_seconds:.2f} seconds",
                    duration_ms=(time.monotonic() - began) * 1000,
                    cold_start=cold,
                )
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                self._kill()
                self.errors += 1
                return Invocation(
                    ok=False, error_type="Runtime.ExitError", error_message="worker exited", cold_start=cold
                )
            if message[0] == "ok":
                return Invocation(ok=True, payload=message[1], duration_ms=float(message[2]), cold_start=cold)
            self.errors += 1
            if message[1] == _SIMULATED_CRASH:
                self._kill()  # the process is leaving its loop; the next invocation starts cold
            return Invocation(
                ok=False,
                error_type=str(message[1]),
                error_message=str(message[2]),
                duration_ms=float(message[3]),
                cold_start=cold,
            )


class FunctionPool:
    """The instances of one function, as Lambda scales it: at most `max_instances` invocations at once, each on an
    instance of its own; a warm idle instance is reused (the most recently used first), and another instance is
    spawned only when every one stayed busy `scale_up_wait` seconds and the machine has CPU to spare, or when the
    event has waited `starved_after` seconds (in its queue and here) and no other instance is in its cold start,
    whatever the machine's load (else it keeps waiting for a warm one). Instances stay warm until the pool stops.
    Quacks like one `FunctionWorker` for the engine (invoke, configure, the figures summed over instances)."""

    def __init__(
        self,
        spec: WorkerSpec,
        max_instances: int = 1,
        *,
        scale_up_wait: float = SCALE_UP_WAIT_SECONDS,
        starved_after: float = STARVED_SCALE_UP_SECONDS,
        machine: MachineLoad = MACHINE_LOAD,
    ) -> None:
        self.spec = spec
        self.concurrency = max(1, max_instances)  # the function's, as deployed
        self.max_instances = self.concurrency  # what the pool may use now (`limit_instances`)
        self.scale_up_wait = scale_up_wait
        self.starved_after = starved_after
        self._machine = machine
        self.instances: list[FunctionWorker] = [FunctionWorker(spec)]
        self._idle: list[FunctionWorker] = list(self.instances)
        self._cold: set[FunctionWorker] = set()  # spawned by a backlog, its first invocation (cold start) not over
        self.cold_starting_most = 0  # the most instances in their cold start at once
        self._free = threading.Condition()
        self.busy_most = 0  # the most instances invoked at once (the report's concurrency, per function)
        self._busy = 0

    # ------------------------------------------------------------------ the figures, over every instance
    @property
    def invocations(self) -> int:
        return sum(w.invocations for w in self.instances)

    @property
    def errors(self) -> int:
        return sum(w.errors for w in self.instances)

    @property
    def cold_starts(self) -> int:
        return sum(w.cold_starts for w in self.instances)

    @property
    def init_ms(self) -> list[float]:
        return [ms for w in self.instances for ms in w.init_ms]

    @property
    def cpu_seconds(self) -> float:
        return sum(w.cpu_seconds for w in self.instances)

    @property
    def alive(self) -> bool:
        return any(w.alive for w in self.instances)

    @property
    def size(self) -> int:
        """Instances now (idle or busy)."""
        return len(self.instances)

    # ------------------------------------------------------------------ lifecycle
    def spawn(self) -> None:
        """The first instance's process (the pool's start; `wait_ready` waits for it)."""
        self.instances[0].spawn()

    def wait_ready(self, timeout: float = _READY_TIMEOUT_SECONDS) -> None:
        self.instances[0].wait_ready(timeout)

    def start(self) -> FunctionPool:
        self.spawn()
        self.wait_ready()
        return self

    def limit_instances(self, limit: int | None) -> None:
        """Use at most `limit` instances from now on (None: the function's concurrency again). A fault plan that
        counts calls ("the first N") keeps its count per process, so such a run keeps one instance per function,
        as the count means; instances beyond the limit stay idle until the pool stops."""
        with self._free:
            self.max_instances = self.concurrency if limit is None else max(1, min(limit, self.concurrency))

    def configure(self, env_updates: dict[str, str]) -> None:
        """New environment values for every instance, live and to come."""
        with self._free:
            self.spec = replace(self.spec, env={**self.spec.env, **env_updates})
            instances = list(self.instances)
        for worker in instances:
            worker.configure(env_updates)

    def request_stop(self) -> None:
        for worker in list(self.instances):
            worker.request_stop()

    def stop(self, grace_seconds: float = 0.5) -> None:
        for worker in list(self.instances):
            worker.stop(grace_seconds=grace_seconds)

    # ------------------------------------------------------------------ invoke
    def _acquire(self, began: float) -> FunctionWorker:
        with self._free:
            waited = False
            while True:
                usable = [w for w in self._idle if self.instances.index(w) < self.max_instances]
                if usable:
                    worker = usable[-1]
                    self._idle.remove(worker)
                    break
                if len(self.instances) < self.max_instances and waited and self._may_scale_up(began):
                    worker = FunctionWorker(self.spec)  # its first invocation is its cold start
                    self.instances.append(worker)
                    self._cold.add(worker)
                    self.cold_starting_most = max(self.cold_starting_most, len(self._cold))
                    break
                waited = not self._free.wait(self.scale_up_wait) or waited
            self._busy += 1
            self.busy_most = max(self.busy_most, self._busy)
            return worker

    def _may_scale_up(self, began: float) -> bool:
        """Another instance for an event waiting since `began` (monotonic): the machine has CPU to spare, or the
        event is starved and no instance is starting already (one cold start at a time on a busy machine)."""
        starved = time.monotonic() - began >= self.starved_after and not self._cold
        return starved or self._machine.has_room()

    def _release(self, worker: FunctionWorker) -> None:
        with self._free:
            self._cold.discard(worker)
            self._busy -= 1
            self._idle.append(worker)
            self._free.notify()

    def invoke(self, event: dict[str, Any], *, queued_at: float | None = None) -> Invocation:
        """`queued_at`: when the event entered its queue (epoch seconds), if it came through one: the time it
        waited there counts towards starvation."""
        now = time.monotonic()
        waited = 0.0 if queued_at is None else max(0.0, time.time() - queued_at)
        worker = self._acquire(now - waited)
        try:
            return worker.invoke(event)
        finally:
            self._release(worker)


def start_all(workers: Iterable[FunctionWorker | FunctionPool]) -> None:
    """Spawn every worker first, then wait: cold starts overlap instead of adding up."""
    started = list(workers)
    for worker in started:
        worker.spawn()
    for worker in started:
        worker.wait_ready()


def stop_all(workers: Iterable[FunctionWorker | FunctionPool]) -> None:
    stopping = list(workers)
    for worker in stopping:
        worker.request_stop()
    for worker in stopping:
        worker.stop(grace_seconds=0.5)


def runtime_env(function_name: str, memory_mb: int) -> dict[str, str]:
    """Variables the Lambda runtime itself sets (not part of the stack's function environment)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
    }


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
