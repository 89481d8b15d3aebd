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
import io
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

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


class LambdaRoute(Protocol):
    """A fake Lambda that serves some functions' Invoke (`local_pipeline.lambda_endpoint.FakeLambda`)."""

    def serves(self, target: str) -> bool: ...

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]: ...


ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
# The calls the fake Fargate serves (`local_pipeline.fargate`): the tasks. Everything else of ECS (task
# definitions, clusters) stays moto's.
ECS_TASK_ACTIONS = frozenset({"RunTask", "DescribeTasks", "StopTask", "ListTasks"})
_FORWARDED_HEADERS = ("CONTENT_TYPE", "HTTP_X_AMZ_TARGET", "HTTP_AUTHORIZATION", "HTTP_X_AMZ_DATE", "HTTP_USER_AGENT")


@dataclass(frozen=True)
class EcsRoute:
    """The task calls of one cluster, served by a fake Fargate on `endpoint` (the workers reach it directly through
    `AWS_ENDPOINT_URL_ECS`; a client with one endpoint for every service, the operator tool's `--endpoint-url`,
    reaches it through the emulator, which forwards the request over HTTP as it came)."""

    endpoint: str
    cluster_arn: str

    def serves(self, action: str, body: dict[str, Any]) -> bool:
        cluster = body.get("cluster")
        return action in ECS_TASK_ACTIONS and cluster in (self.cluster_arn, self.cluster_arn.rsplit("/", 1)[-1])

    def forward(self, environ: dict[str, Any], body: bytes, start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            name[5:].replace("_", "-") if name.startswith("HTTP_") else "Content-Type": str(environ[name])
            for name in _FORWARDED_HEADERS
            if environ.get(name)
        }
        answer = requests.post(f"{self.endpoint}/", data=body, headers=headers, timeout=30)
        kept = [(name, value) for name, value in answer.headers.items() if name.lower() in ("content-type",)]
        request_id = answer.headers.get("x-amzn-RequestId")
        if request_id:
            kept.append(("x-amzn-RequestId", request_id))
        kept.append(("Content-Length", str(len(answer.content))))
        start_response(f"{answer.status_code} {HTTPStatus(answer.status_code).phrase}", kept)
        return [answer.content]


def _ecs_call(environ: dict[str, Any]) -> tuple[str, dict[str, Any], bytes]:
    """(action, JSON body, raw body) of an ECS request; the body is put back for whoever reads it next."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    action = target[len(ECS_TARGET_PREFIX) :] if target.startswith(ECS_TARGET_PREFIX) else ""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    return action, body if isinstance(body, dict) else {}, raw


class _CountingApp:
    """WSGI middleware: count, then hand the request to moto unchanged (DynamoDB's one at a time, see above); an
    Invoke of a function a fake Lambda serves goes to that fake Lambda (which counts it itself)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], counter: RequestCounter) -> None:
        self._app = app
        self._counter = counter
        self._dynamodb = threading.Lock()
        self.lambda_routes: list[LambdaRoute] = []
        self.ecs_routes: list[EcsRoute] = []

    def _ecs_forwarded(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        """The fake Fargate's answer to a task call of its cluster (it counts the request itself), else None."""
        if not self.ecs_routes:
            return None
        action, body, raw = _ecs_call(environ)
        route = next((route for route in list(self.ecs_routes) if route.serves(action, body)), None)
        return None if route is None else route.forward(environ, raw, start_response)

    def _lambda_route(self, environ: dict[str, Any]) -> LambdaRoute | None:
        query = environ.get("QUERY_STRING")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        return next((route for route in list(self.lambda_routes) if route.serves(target)), None)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        caller, service = caller_and_service(environ.get("HTTP_AUTHORIZATION"))
        route = self._lambda_route(environ) if service == "lambda" else None
        if route is not None:
            return route.wsgi(environ, start_response)
        forwarded = self._ecs_forwarded(environ, start_response) if service == "ecs" else None
        if forwarded is not None:
            return forwarded
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
        self.lambda_routes: list[LambdaRoute] = []  # shared with the app: routes added before or after start
        self.ecs_routes: list[EcsRoute] = []

    def start(self) -> CountingEmulator:
        app = _CountingApp(DomainDispatcherApplication(create_backend_app), self.counter)
        app.lambda_routes = self.lambda_routes
        app.ecs_routes = self.ecs_routes
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

    def route_lambda_invocations(self, route: LambdaRoute) -> None:
        """An Invoke on the emulator's endpoint of a function `route` serves goes to it (one `--endpoint-url` for
        every service, as the operator tool uses it, reaches the functions of the local pipeline)."""
        assert self._server is not None, "start() first"
        self._server.lambda_routes.append(route)

    def unroute_lambda_invocations(self, route: LambdaRoute) -> None:
        if self._server is not None and route in self._server.lambda_routes:
            self._server.lambda_routes.remove(route)

    def route_ecs_tasks(self, route: EcsRoute) -> None:
        """A task call (RunTask, DescribeTasks, StopTask, ListTasks) of `route`'s cluster on the emulator's endpoint
        goes to its fake Fargate, where the local pipeline's tasks are (moto's ECS has none of them)."""
        assert self._server is not None, "start() first"
        self._server.ecs_routes.append(route)

    def unroute_ecs_tasks(self, route: EcsRoute) -> None:
        if self._server is not None and route in self._server.ecs_routes:
            self._server.ecs_routes.remove(route)

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
