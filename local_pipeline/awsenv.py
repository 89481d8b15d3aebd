"""The embedded AWS: moto's WSGI app on loopback (werkzeug's threaded server), with a request counter in front.

Worker processes reach it over HTTP (`AWS_ENDPOINT_URL`), exactly as a Lambda function reaches AWS.
Every caller gets its own fake access key (`local-<env>-router`, `local-<env>-ch-...`, `local-engine`), and the
counting middleware reads the SigV4 credential scope of each request, so the benchmark can say how many
AWS calls each function made per submission, by service, without touching the functions' code.

moto keeps its state in module globals: one emulator per process at a time (reset on start and stop).
The server is built from moto's public pieces only (`DomainDispatcherApplication(create_backend_app)`, the app
moto's own server runs, and its `MotoRequestHandler`), served by werkzeug's `make_server`: nothing here
overrides a private method of moto (decision 102).

DynamoDB requests are served one at a time. moto's TransactWriteItems is not isolated: it deep-copies each table
it touches and, when a condition fails, puts the copy back, so a write another worker made meanwhile would vanish
(a queue entry gone, a run left WAITING for ever). DynamoDB itself serializes conflicting transactions
(TransactionConflict); one lock gives the emulator the same guarantee (decision 098).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import boto3
import requests
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

REGION = "us-east-1"
FAKE_SECRET = "local-secret"  # moto accepts any key pair; never a real credential
ENGINE_KEY = "local-engine"

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ENGINE_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)


class RequestCounter:
    """Thread-safe counts of requests by (caller access key, service)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, caller: str, service: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(caller, service)] += n

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def by_caller(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for (caller, service), count in sorted(self.snapshot().items()):
            result.setdefault(caller, {})[service] = count
        return result


def caller_and_service(authorization: str | None) -> tuple[str, str]:
    """(access key, service) from a SigV4 Authorization header; ("anonymous", "unknown") without one."""
    match = _SCOPE.search(authorization or "")
    if not match:
        return "anonymous", "unknown"
    return match.group(1), match.group(3)


class _CountingApp:
    """WSGI middleware: count, then hand the request to moto unchanged (DynamoDB's one at a time, see above)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], counter: RequestCounter) -> None:
        self._app = app
        self._counter = counter
        self._dynamodb = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        caller, service = caller_and_service(environ.get("HTTP_AUTHORIZATION"))
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            self._counter.add(caller, service)
        if service != "dynamodb":
            return self._app(environ, start_response)
        with self._dynamodb:
            return list(self._app(environ, start_response))  # the whole answer inside the lock


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without werkzeug's access log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class CountingEmulator:
    """moto's WSGI app behind the counting middleware, on werkzeug's threaded server in a daemon thread."""

    def __init__(self, counter: RequestCounter, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        self.counter = counter
        self._address = (ip_address, port)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> CountingEmulator:
        app = _CountingApp(DomainDispatcherApplication(create_backend_app), self.counter)
        host, port = self._address
        self._server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-emulator", daemon=True)
        self._thread.start()
        return self

    def host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None


class LocalAws:
    """Start/stop the emulator; build engine-side clients bound to it."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self.counter = RequestCounter()
        self._server: CountingEmulator | None = None
        self.endpoint = ""

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = CountingEmulator(self.counter).start()
        host, port = self._server.host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.reset()
        return self

    def reset(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10)

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(requests.RequestException):
                self.reset()
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str, access_key: str = ENGINE_KEY) -> Any:
        return boto3.session.Session().client(  # type: ignore[call-overload]
            service,
            region_name=self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=FAKE_SECRET,
            config=_ENGINE_CLIENT_CONFIG,
        )

    def credentials_env(self, access_key: str) -> dict[str, str]:
        """What a worker process gets: fake credentials, the region, and the emulator endpoint."""
        return {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_SESSION_TOKEN": "local-session",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }
