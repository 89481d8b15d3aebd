"""The parent's side of the emulator processes: spawn one (`EmulatorProcess`), read its counts, stop it, and pass
a request on to it over HTTP as it came (`forward`, the engine's front door).

Start-up is quick: the child binds its port before it imports moto and writes the port on stdout, so `start()`
returns in the time Python takes to start; a request sent before moto is loaded waits in the listen backlog.
The child dies with this process (it watches its stdin, which only this process holds, and its parent pid).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any

import requests

from local_pipeline.emulator.counting import OperationCounts, rows_to_counts

_REPO_ROOT = str(Path(__file__).resolve().parents[2])
_START_TIMEOUT_SECONDS = 30.0
_STOP_GRACE_SECONDS = 5.0
# Never passed on: hop-by-hop, and lengths the forwarding side sets itself.
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"})
_sessions = threading.local()


class EmulatorProcess:
    """One `local_pipeline.emulator.server` child serving `group` on loopback."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start the child; `wait_port()` reads its address."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_pipeline.emulator.server",
                "--group",
                self.group,
                "--parent-pid",
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_REPO_ROOT,
            env=env,
        )

    def wait_port(self, timeout: float = _START_TIMEOUT_SECONDS) -> str:
        assert self._process is not None, "spawn() first"
        assert self._process.stdout is not None
        line = _read_line(self._process.stdout, timeout)
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"emulator process {self.group!r} did not start (exit {self._process.poll()})")
        self.url = f"http://127.0.0.1:{int(line)}"
        return self.url

    def start(self) -> EmulatorProcess:
        self.spawn()
        self.wait_port()
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout: float = _START_TIMEOUT_SECONDS) -> None:
        """Until the child's moto apps are built (not needed before a request: one sent earlier just waits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/_emulator/ready", timeout=timeout).status_code == HTTPStatus.OK:
                    return
            if not self.alive():
                break
            time.sleep(0.05)
        raise RuntimeError(f"emulator process {self.group!r} not ready")

    def counts(self) -> OperationCounts:
        answer = requests.get(f"{self.url}/_emulator/counts", timeout=30)
        answer.raise_for_status()
        return rows_to_counts(answer.json()["counts"])

    def cpu(self) -> dict[tuple[str, str], float]:
        """CPU seconds moto spent per (service, operation) in the child."""
        answer = requests.get(f"{self.url}/_emulator/cpu", timeout=30)
        answer.raise_for_status()
        return {(str(service), str(operation)): float(s) for service, operation, s in answer.json()["cpu"]}

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_GRACE_SECONDS)
        if process.stdout is not None:
            process.stdout.close()


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """One line of a child's stdout, or "" after `timeout` or at its end."""
    fd = stream.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return ""
        chunk = os.read(fd, 64)
        if not chunk:
            return ""
        data += chunk
    return data.decode()


def _session() -> requests.Session:
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


def _request_body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        return bytes(stream.read(int(length)))
    return bytes(stream.read()) if environ.get("wsgi.input_terminated") else b""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def forward(base_url: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Pass a WSGI request on to `base_url` as it came (method, path, query, headers, body) and its answer back."""
    headers = {key[5:].replace("_", "-"): str(value) for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = str(environ["CONTENT_TYPE"])
    headers = {name: value for name, value in headers.items() if name.lower() not in _NOT_FORWARDED}
    query = environ.get("QUERY_STRING")
    url = f"{base_url}{environ.get('PATH_INFO', '/')}" + (f"?{query}" if query else "")
    answer = _session().request(
        str(environ.get("REQUEST_METHOD", "GET")),
        url,
        data=_request_body(environ),
        headers=headers,
        timeout=60,
        allow_redirects=False,
    )
    kept = [(name, value) for name, value in answer.headers.items() if name.lower() not in _NOT_FORWARDED]
    kept.append(("Content-Length", str(len(answer.content))))
    start_response(f"{answer.status_code} {_phrase(answer.status_code)}", kept)
    return [answer.content]
