"""A warm interpreter that forks the scorer task processes (decision 116).

Each task stays a real process of its own: its own pid and session, its own exit code (a signal N as 128 + N),
its output in the task's log, SIGTERM then SIGKILL on StopTask, SIGKILL itself on `crash`. What changes is how it
starts: instead of a fresh `python3 scorer.py` (60-100 ms of CPU each to start the interpreter and import what the
scorer imports, a minute of CPU over a 1,000-task run on two cores), the task is a fork of an interpreter that has
already started and imported the script's top-level imports, with the task's environment, arguments, working
directory and output put in place before the script runs as `__main__`.

Only a command that is a Python interpreter running a script file (`python3 scorer.py ARGS`) or a code string
(`python3 -c CODE ARGS`) is forked (`forkable`); any other command, or a machine without `os.fork`, is started
with `subprocess.Popen` as before. One zygote per interpreter, started with the tasks' base environment.

This file is also the zygote's program (`python3 zygote.py FD`): standard library only, so it runs under the
task's interpreter. The zygote is single-threaded (it forks), reaps its children itself (`os.wait4`, which also
gives each task's CPU time) and reports each exit to the engine; a signal for a task goes through the zygote,
which sends it only while the task is not reaped (no pid reuse race). When the engine goes away (the socket
closes) the zygote kills every task it forked, then exits.
"""

from __future__ import annotations

import ast
import atexit
import builtins
import contextlib
import importlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import traceback
import types
from multiprocessing.connection import Connection, wait
from typing import Any

_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_KILLED = -signal.SIGKILL  # a task whose zygote died is reported as killed


def forkable(command: tuple[str, ...] | list[str]) -> bool:
    """True for `python[3[.N]] SCRIPT.py ARGS` and `python[3[.N]] -c CODE ARGS` on a machine with fork."""
    if not hasattr(os, "fork") or len(command) < 2 or not _PYTHON.match(os.path.basename(command[0])):
        return False
    if command[1] == "-c":
        return len(command) >= 3
    return not command[1].startswith("-")


# ---------------------------------------------------------------------------------------------- engine side
class ForkedProcess:
    """A task process the zygote forked: the part of `subprocess.Popen` the fake Fargate uses."""

    def __init__(self, zygote: Zygote, pid: int, args: list[str]) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None
        self.cpu_seconds: float | None = None  # user + system, once it exited
        self._zygote = zygote
        self._exited = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            self._zygote.signal(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _exit(self, returncode: int, cpu_seconds: float | None) -> None:
        self.returncode, self.cpu_seconds = returncode, cpu_seconds
        self._exited.set()


class Zygote:
    """The engine's handle on one zygote process (thread-safe; `spawn` answers in about a millisecond)."""

    def __init__(self, interpreter: str, env: dict[str, str]) -> None:
        self.interpreter = interpreter
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._state = threading.Condition()
        self._replies: dict[int, tuple[str, object]] = {}
        self._processes: dict[int, ForkedProcess] = {}
        self._args: dict[int, list[str]] = {}
        self._ids = itertools.count(1)
        self._reader: threading.Thread | None = None
        self.cpu_seconds = 0.0  # the tasks', summed as they exit

    def start(self) -> Zygote:
        parent, child = socket.socketpair()
        self._process = subprocess.Popen(
            [self.interpreter, __file__, str(child.fileno())],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(child.fileno(),),
        )
        child.close()
        self._conn = Connection(parent.detach())
        self._reader = threading.Thread(target=self._read, name="task-zygote", daemon=True)
        self._reader.start()
        return self

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None and self._conn is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _send(self, message: tuple[object, ...]) -> None:
        assert self._conn is not None, "start() first"
        with self._send_lock:
            self._conn.send(message)

    def spawn(self, argv: list[str], env: dict[str, str], log_path: str) -> ForkedProcess:
        """Fork one task process (its output to `log_path`); OSError when the zygote could not."""
        request = next(self._ids)
        with self._state:
            self._args[request] = list(argv)
        try:
            self._send(("spawn", request, list(argv), dict(env), log_path, os.getcwd()))
        except (OSError, EOFError, AssertionError) as error:
            raise OSError(f"task zygote unavailable: {error}") from error
        with self._state:
            self._state.wait_for(lambda: request in self._replies or self._conn is None, timeout=30)
            kind, value = self._replies.pop(request, ("failed", "task zygote gone"))
            self._args.pop(request, None)
        if kind != "spawned" or not isinstance(value, ForkedProcess):
            raise OSError(f"task zygote could not start the task: {value}")
        return value

    def warm(self, script: str) -> None:
        """Compile `script` and import its top-level imports now (start-up), not at the first task."""
        with contextlib.suppress(OSError, EOFError, AssertionError):
            self._send(("warm", script, os.getcwd()))

    def signal(self, pid: int, sig: int) -> None:
        with contextlib.suppress(OSError, EOFError, AssertionError):
            self._send(("signal", pid, int(sig)))

    def _read(self) -> None:
        assert self._conn is not None
        try:
            while True:
                message = self._conn.recv()
                with self._state:
                    self._handle(message)
                    self._state.notify_all()
        except (EOFError, OSError):
            pass
        with self._state:  # the zygote is gone: its tasks with it
            for process in self._processes.values():
                process._exit(_KILLED, None)
            self._processes.clear()
            self._conn = None
            self._state.notify_all()

    def _handle(self, message: tuple[Any, ...]) -> None:
        if message[0] == "spawned":
            request, pid = int(message[1]), int(message[2])
            process = ForkedProcess(self, pid, self._args.get(request, []))
            self._processes[pid] = process
            self._replies[request] = ("spawned", process)
        elif message[0] == "failed":
            self._replies[int(message[1])] = ("failed", message[2])
        elif message[0] == "exited":
            pid, code, cpu = int(message[1]), int(message[2]), float(message[3])
            self.cpu_seconds += cpu
            exited = self._processes.pop(pid, None)
            if exited is not None:
                exited._exit(code, cpu)

    def stop(self) -> None:
        """Every task still running is killed, then the zygote exits."""
        with contextlib.suppress(OSError, EOFError, AssertionError):
            self._send(("stop",))
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()


# ---------------------------------------------------------------------------------------------- zygote side
class _Server:
    """The zygote's loop: fork on request, reap, report, relay signals. Single-threaded by design."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.live: set[int] = set()
        self.compiled: dict[str, types.CodeType | None] = {}  # script path -> its code (None: let the task fail)
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    def run(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's; it stops the zygote itself
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_write)
        try:
            while True:
                ready = wait([self.conn, self.wake_read])
                if self.wake_read in ready:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_read, 512):
                            pass
                self.reap()
                if self.conn in ready and not self.handle(self.conn.recv()):
                    return
        except (EOFError, OSError):
            return
        finally:
            self.kill_all()

    def handle(self, message: tuple[Any, ...]) -> bool:
        if message[0] == "spawn":
            _, request, argv, env, log_path, cwd = message
            self.spawn(int(request), list(argv), dict(env), str(log_path), str(cwd))
        elif message[0] == "signal":
            pid, sig = int(message[1]), int(message[2])
            if pid in self.live:  # not reaped yet: the pid is still the task's (a zombie ignores it)
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        elif message[0] == "warm":
            self.warm(os.path.join(str(message[2]), str(message[1])))
        elif message[0] == "stop":
            return False
        return True

    def reap(self) -> None:
        while self.live:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.live.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            self.conn.send(("exited", pid, code, usage.ru_utime + usage.ru_stime))

    def kill_all(self) -> None:
        for pid in list(self.live):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # the task leads its own session and group
        for pid in list(self.live):
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        self.live.clear()

    def warm(self, path: str) -> types.CodeType | None:
        """The script compiled, once, and its top-level imports imported here, so a fork finds them loaded."""
        if path in self.compiled:
            return self.compiled[path]
        code: types.CodeType | None = None
        try:
            with open(path, "rb") as source:
                text = source.read()
            tree = ast.parse(text, path)
            code = compile(tree, path, "exec")
            for module in _top_level_imports(tree):
                with contextlib.suppress(Exception):
                    importlib.import_module(module)
        except (OSError, SyntaxError, ValueError):
            code = None  # the task itself reports it (as `python3 script.py` would)
        self.compiled[path] = code
        return code

    def spawn(self, request: int, argv: list[str], env: dict[str, str], log_path: str, cwd: str) -> None:
        try:
            code = None if argv[1] == "-c" else self.warm(os.path.join(cwd, argv[1]))
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except Exception as error:
            self.conn.send(("failed", request, f"{type(error).__name__}: {error}"))
            return
        if pid == 0:
            self._child(argv, env, log_path, cwd, code)
        self.live.add(pid)
        self.conn.send(("spawned", request, pid))

    def _child(
        self, argv: list[str], env: dict[str, str], log_path: str, cwd: str, code: types.CodeType | None
    ) -> None:
        """In the forked task: become the task (session, signals, output, environment, argv), run, exit."""
        status = 1
        try:
            os.setsid()
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.conn.close()
            os.close(self.wake_read)
            os.close(self.wake_write)
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
            os.close(null)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
            atexit._clear()  # only what the task registers runs at its exit
            status = _run_main(argv, code)
        except BaseException:  # the task's own error, reported as the interpreter would
            with contextlib.suppress(BaseException):
                traceback.print_exc()
            status = 1
        finally:
            with contextlib.suppress(BaseException):
                atexit._run_exitfuncs()
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)


def _top_level_imports(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and node.module != "__future__":
            names.append(node.module)
    return names


def _exit_status(code: object) -> int:
    """SystemExit's code as the interpreter turns it into an exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(BaseException):
        print(code, file=sys.stderr)
    return 1


def _run_main(argv: list[str], code: types.CodeType | None) -> int:
    """Run the script (or `-c` code) as `__main__`; its exit status."""
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    if argv[1] == "-c":
        sys.argv = ["-c", *argv[3:]]
        sys.path[0] = ""
        source: str | types.CodeType = argv[2]
        filename = "<string>"
    else:
        path = os.path.abspath(argv[1])
        sys.argv = [argv[1], *argv[2:]]
        sys.path[0] = os.path.dirname(path)
        main.__dict__["__file__"] = path
        if code is None:
            try:
                with open(path, "rb") as script:
                    source = script.read().decode()
            except OSError as error:
                print(f"{argv[0]}: can't open file {path!r}: [Errno {error.errno}] {error.strerror}", file=sys.stderr)
                return 2
        else:
            source = code
        filename = path
    sys.modules["__main__"] = main
    try:
        exec(source if isinstance(source, types.CodeType) else compile(source, filename, "exec"), main.__dict__)  # noqa: S102
        threading_shutdown = getattr(__import__("threading"), "_shutdown", None)
        if threading_shutdown is not None:
            threading_shutdown()  # non-daemon threads finish first, as at interpreter exit
        return 0
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # the interpreter's exit on an uncaught Ctrl-C
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException as error:  # uncaught: the traceback from the script's own frames, exit status 1
        traceback.print_exception(type(error), error, error.__traceback__.tb_next if error.__traceback__ else None)
        return 1


if __name__ == "__main__":
    sys.path.pop(0)  # this file's directory: a script's imports are warmed from where its own process finds them
    _Server(Connection(int(sys.argv[1]))).run()
