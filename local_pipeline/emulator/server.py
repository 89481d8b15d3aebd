"""One emulator process: moto's backend apps for a group of services on loopback, each request counted.

    python -m local_pipeline.emulator.server --group dynamodb|services --parent-pid PID

Started by `local_pipeline.emulator.processes.EmulatorProcess` (decision 115). It binds a loopback port first and
writes it on stdout (so the parent can go on at once), then imports moto and serves on werkzeug's threaded server.
Each request goes straight to the moto app of its service, known from the SigV4 credential scope (one cached
`create_backend_app(backend)` per service), instead of moto's per-request host lookup (a scan of moto's module
directory and of every backend's URL patterns); a request the fast path does not know (unsigned, or a service
whose routing moto decides from the request itself) goes through moto's own `DomainDispatcherApplication`, which
shares the same apps. The `dynamodb` group serves one request at a time (decision 098) and installs the
item-level rollback of TransactWriteItems (`dynamodb_transactions`), the JSON-speed serialization of items
(`dynamodb_responses`), partition or index-match reads for queries (`dynamodb_queries`), update expressions
parsed once per string (`dynamodb_expressions`) and validated without moto's per-node overheads
(`dynamodb_validation`); the `services` group
holds every other service, so that SNS -> SQS and EventBridge -> SQS deliveries, which moto makes in process, stay
in one process, and installs ReceiveMessage's cheap retention check (`sqs_receive`) and SendMessage without counting
the queue's messages, EventBridge input paths parsed once (`services_delivery`): the seven places the emulator
reaches into moto.

`GET /_emulator/counts` answers the counts (caller, service, operation), `GET /_emulator/cpu` the CPU seconds
moto spent per (service, operation), `GET /_emulator/ready` 200 once the apps are built. Connections are kept
alive (`keep_alive_handler`; werkzeug's development server closes each one). The process exits when its parent
does (stdin closes, or the parent pid changes) and ignores SIGINT (Ctrl-C stops the engine, which then stops
this process).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from local_pipeline.emulator.counting import RequestCounter, caller_and_service, counts_to_rows, operation_of

LOOPBACK = "127.0.0.1"
INTERNAL_PREFIX = "/_emulator/"
GROUPS: dict[str, tuple[str, ...]] = {
    "dynamodb": ("dynamodb",),
    "services": ("sqs", "sns", "events", "ecs", "ssm", "logs", "lambda", "sts", "s3", "secretsmanager", "monitoring"),
}
# Signing names moto routes by name and region alone (its `infer_service_region_host` default branch, moto 5.2.5).
# DynamoDB (its API version in X-Amz-Target) and S3 (S3 Control) are checked per request below; every other
# service goes through moto's dispatcher.
_ROUTED_BY_NAME = frozenset(
    {"sqs", "sns", "events", "ecs", "ssm", "logs", "lambda", "sts", "secretsmanager", "monitoring", "iam", "kms"}
)
_PARENT_POLL_SECONDS = 0.5

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _scope(authorization: str | None) -> tuple[str, str] | None:
    """(region, signing name) of a SigV4 Authorization header."""
    try:
        credential = (authorization or "").split(",")[0].split()[1]
        _, _, region, service, _ = credential.split("/")
    except (IndexError, ValueError):
        return None
    return region, service.lower()


class OperationCpu:
    """CPU seconds moto spent per (service, operation) in this process (the serving thread's CPU time around the
    app call, answer serialized): where the emulator's CPU goes, for the benchmark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[tuple[str, str], float] = {}

    def add(self, service: str, operation: str, seconds: float) -> None:
        with self._lock:
            key = (service, operation)
            self._seconds[key] = self._seconds.get(key, 0.0) + seconds

    def rows(self) -> list[list[Any]]:
        with self._lock:
            return [[service, operation, round(s, 6)] for (service, operation), s in sorted(self._seconds.items())]


class EmulatorApp:
    """Count, then hand the request to its service's moto app (one at a time when `serialize`)."""

    def __init__(self, counter: RequestCounter, *, serialize: bool) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        self.counter = counter
        self._apps: dict[str, WsgiApp] = {}
        self._apps_lock = threading.Lock()
        self._backends: dict[tuple[str, str], str | None] = {}
        self._dispatcher = DomainDispatcherApplication(self.backend_app)  # type: ignore[arg-type]
        self._serialized = threading.Lock() if serialize else None
        self.ready = threading.Event()
        self.cpu = OperationCpu()

    def backend_app(self, backend: str) -> WsgiApp:
        """moto's app of one backend, built once (moto's dispatcher shares it)."""
        app = self._apps.get(backend)
        if app is None:
            from moto.moto_server.werkzeug_app import create_backend_app

            with self._apps_lock:
                app = self._apps.get(backend)
                if app is None:
                    app = self._apps[backend] = create_backend_app(backend)  # type: ignore[arg-type]
        return app

    def backend_of(self, environ: dict[str, Any]) -> str | None:
        """The backend a signed request goes to, when its signing name and region say it; None otherwise."""
        scope = _scope(environ.get("HTTP_AUTHORIZATION"))
        if scope is None:
            return None
        region, service = scope
        if service == "dynamodb":
            return "dynamodb" if str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_20120810.") else None
        if service == "s3":
            s3_control = str(environ.get("PATH_INFO", "")).startswith("/v20180820/")
            return None if s3_control or "s3-control" in str(environ.get("HTTP_HOST", "")) else "s3"
        if service not in _ROUTED_BY_NAME:
            return None
        if (region, service) not in self._backends:
            backend = self._dispatcher.get_backend_for_host(f"{service}.{region}.amazonaws.com")
            self._backends[(region, service)] = str(backend) if backend else None
        return self._backends[(region, service)]

    def warm(self, signing_names: Iterable[str], region: str = "us-east-1") -> None:
        """Build the group's apps before the first request needs them."""
        for service in signing_names:
            backend = self.backend_of(
                {
                    "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=warm/20000101/{region}/{service}/aws4_request",
                    "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.ListTables",
                }
            )
            if backend:
                self.backend_app(backend)
        self.ready.set()

    def _internal(self, path: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if path == f"{INTERNAL_PREFIX}counts":
            body = json.dumps({"counts": counts_to_rows(self.counter.operation_counts())}).encode()
            status = "200 OK"
        elif path == f"{INTERNAL_PREFIX}cpu":
            body, status = json.dumps({"cpu": self.cpu.rows()}).encode(), "200 OK"
        elif path == f"{INTERNAL_PREFIX}ready" and self.ready.is_set():
            body, status = b'{"ready": true}', "200 OK"
        else:
            body, status = b'{"ready": false}', "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(INTERNAL_PREFIX):
            return self._internal(path, start_response)
        caller, service = caller_and_service(environ.get("HTTP_AUTHORIZATION"))
        operation = operation_of(environ, service)
        if not path.startswith("/moto-api"):
            self.counter.add(caller, service, operation=operation)
        backend = self.backend_of(environ)
        app: WsgiApp = self.backend_app(backend) if backend else self._dispatcher
        started = time.thread_time()
        try:
            if self._serialized is None:
                return list(app(environ, start_response))
            with self._serialized:
                return list(app(environ, start_response))  # the whole answer inside the lock
        finally:
            self.cpu.add(service, operation, time.thread_time() - started)


def _whole_body(environ: dict[str, Any]) -> None:
    """The request body read whole into memory (so the next request on the connection is never read as its rest)."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = environ["wsgi.input"].read(int(length))
    else:
        body = environ["wsgi.input"].read() if environ.get("wsgi.input_terminated") else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)


def _call(app: WsgiApp, environ: dict[str, Any], log: Callable[..., Any]) -> tuple[str, list[Any], bytes]:
    """(status, headers, body) of one WSGI call; an exception is a 500 (logged as werkzeug logs it)."""
    answer: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer[:] = [status, headers]
        return written.append

    try:
        chunks = app(environ, start_response)
        payload = b"".join([*written, *chunks])
    except Exception as error:
        log("error", f"Error on request: {type(error).__name__}: {error}")
        return "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")], b"Internal Server Error"
    return str(answer[0]), list(answer[1]), payload


def keep_alive_handler() -> type[Any]:
    """moto's request handler (werkzeug's, keeping headers with underscores), serving HTTP/1.1 keep-alive.

    werkzeug's development server closes every connection ("Connection: close"), so each AWS call cost a TCP
    connection and a thread on both sides. Here the request body is read whole before the app runs, the answer
    goes out with its Content-Length, and Nagle is off (headers and body are two writes)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return None

        def run_wsgi(self) -> None:
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            environ = self.make_environ()
            _whole_body(environ)
            status, headers, payload = _call(self.server.app, environ, self.server.log)
            code = int(status.split(" ", 1)[0])
            self.send_response(code, status.partition(" ")[2])
            declared = next((value for name, value in headers if name.lower() == "content-length"), None)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            no_body = self.command == "HEAD" or code in (204, 304) or code < 200
            self.send_header("Content-Length", declared if no_body and declared else str(len(payload)))
            self.end_headers()
            if payload and not no_body:
                self.wfile.write(payload)

    return KeepAliveHandler


def _exit_with_parent(parent_pid: int) -> None:
    """Exit when the parent goes: its end of stdin closes (any death, SIGKILL included), or, should another
    process hold that pipe, the parent pid changes (re-parented)."""

    def stdin_closed() -> None:
        with open(0, "rb", buffering=0) as stdin:
            while stdin.read(1024):
                pass
        os._exit(0)

    def parent_changed() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=stdin_closed, name="parent-stdin", daemon=True).start()
    threading.Thread(target=parent_changed, name="parent-pid", daemon=True).start()


def _announce(port: int) -> None:
    """The port on stdout for the parent, then stdout to /dev/null (moto prints to it)."""
    os.write(1, f"{port}\n".encode())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one emulator process (local pipeline)")
    parser.add_argument("--group", choices=sorted(GROUPS), required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(args.parent_pid)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(256)
    _announce(listener.getsockname()[1])

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.group == "dynamodb":
        from local_pipeline.emulator import (
            dynamodb_expressions,
            dynamodb_queries,
            dynamodb_responses,
            dynamodb_transactions,
            dynamodb_validation,
        )

        dynamodb_transactions.install()
        dynamodb_responses.install()
        dynamodb_queries.install()
        dynamodb_expressions.install()
        dynamodb_validation.install()
    else:
        from local_pipeline.emulator import services_delivery, sqs_receive

        sqs_receive.install()
        services_delivery.install()
    app = EmulatorApp(RequestCounter(), serialize=args.group == "dynamodb")
    host, port = listener.getsockname()[:2]
    server = make_server(host, port, app, threaded=True, request_handler=keep_alive_handler(), fd=listener.fileno())
    app.warm(GROUPS[args.group])
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
