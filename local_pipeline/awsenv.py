"""The embedded AWS: moto in its own processes on loopback, each request counted, and the engine's front door.

    engine process                       emulator processes (local_pipeline.emulator, decision 115)
      LocalAws.client(service) ------->    dynamodb:  moto's DynamoDB, one request at a time (decision 098)
      front door (LocalAws.endpoint) -->   services:  SNS, SQS, EventBridge, ECS, SSM, Lambda, Logs, S3, ...
        Invoke of a routed function -> fake Lambda;  ECS task call of a routed cluster -> fake Fargate

Worker processes reach moto over HTTP exactly as a Lambda function reaches AWS: `AWS_ENDPOINT_URL` (the services
process) and the service-specific `AWS_ENDPOINT_URL_DYNAMODB` (botocore's service-specific endpoint variables),
beside the fake Fargate's and fake Lambda's own (`local_pipeline.function_env`). Every caller gets its own fake
access key (`local-<env>-router`, `local-<env>-ch-...`, `local-engine`); the emulator processes read the SigV4
credential scope of each request and count it by caller, service and operation, so the benchmark can say how many
AWS calls each function made per submission without touching the functions' code. `LocalAws.counter` merges
their counts with the ones the fakes in this process keep.

The front door (`LocalAws.endpoint`) is for a client with one endpoint for every service (the operator tool's
`--endpoint-url`, a test): it serves what this process fakes (an Invoke of a function a fake Lambda serves, a task
call of the fake Fargate's cluster) and passes everything else to the emulator process of its service, as it came.
The engine's own clients and the workers go to the emulator processes directly. Nothing here overrides a private
method of moto (decision 102); the three places the emulator reaches into moto, in its DynamoDB process, are
`local_pipeline.emulator.dynamodb_transactions`, `.dynamodb_responses` and `.dynamodb_queries`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

import boto3
import requests
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local_pipeline.emulator.counting import OperationCounts, RequestCounter, caller_and_service
from local_pipeline.emulator.processes import EmulatorProcess, forward

__all__ = [
    "ECS_TASK_ACTIONS",
    "ENGINE_KEY",
    "FAKE_SECRET",
    "REGION",
    "EcsRoute",
    "EmulatorCounter",
    "LambdaRoute",
    "LocalAws",
    "RequestCounter",
    "caller_and_service",
]

REGION = "us-east-1"
FAKE_SECRET = "local-secret"  # moto accepts any key pair; never a real credential
ENGINE_KEY = "local-engine"
DYNAMODB_GROUP, SERVICES_GROUP = "dynamodb", "services"  # the emulator processes (local_pipeline.emulator.server)

# Shared by the engine's threads (one client per service and key): a pool for each poller and reader at once.
_ENGINE_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30, max_pool_connections=64
)


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
    reaches it through the front door, which forwards the request over HTTP as it came)."""

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


class _FrontDoor:
    """WSGI app of the one endpoint for every service: what this process fakes, else the service's emulator process
    (which counts the request; the fakes count their own)."""

    def __init__(self, backend_for: Callable[[str], str]) -> None:
        self._backend_for = backend_for
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
        _, service = caller_and_service(environ.get("HTTP_AUTHORIZATION"))
        route = self._lambda_route(environ) if service == "lambda" else None
        if route is not None:
            return route.wsgi(environ, start_response)
        forwarded = self._ecs_forwarded(environ, start_response) if service == "ecs" else None
        if forwarded is not None:
            return forwarded
        return forward(self._backend_for(service), environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's request handler without its access log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class EmulatorCounter(RequestCounter):
    """The counts of this process (the fakes add theirs) plus the emulator processes' (fetched on each read;
    kept as last read once they stop)."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[Callable[[], OperationCounts]] = []

    def _remote_counts(self) -> Counter[tuple[str, str, str]]:
        merged: Counter[tuple[str, str, str]] = Counter()
        for source in list(self.sources):
            merged.update(source())
        return merged

    def operation_counts(self) -> OperationCounts:
        return dict(Counter(super().operation_counts()) + self._remote_counts())

    def freeze(self) -> None:
        """Keep the emulator processes' counts as they are now (before the processes stop)."""
        final = dict(self._remote_counts())
        self.sources = [lambda: final]


class LocalAws:
    """Start/stop the emulator processes and the front door; build engine-side clients bound to them."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self.counter = EmulatorCounter()
        self.endpoint = ""  # the front door: one endpoint for every service
        self.endpoints: dict[str, str] = {}  # emulator process group -> its URL
        self._processes: dict[str, EmulatorProcess] = {}
        self._front_door: _FrontDoor | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._session: boto3.session.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()

    def start(self) -> LocalAws:
        """Spawn both emulator processes (they load moto side by side; a request sent before waits for it) and
        serve the front door. Fresh processes: nothing to reset."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._processes = {group: EmulatorProcess(group) for group in (DYNAMODB_GROUP, SERVICES_GROUP)}
        try:
            for process in self._processes.values():
                process.spawn()
            self.endpoints = {group: process.wait_port() for group, process in self._processes.items()}
        except BaseException:
            self.stop()
            raise
        self.counter.sources = [process.counts for process in self._processes.values()]
        self._front_door = _FrontDoor(self.endpoint_for)
        self._server = make_server("127.0.0.1", 0, self._front_door, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-front-door", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}"
        return self

    def wait_ready(self) -> None:
        """Until moto is loaded in both processes (a caller timing its own first request wants this)."""
        for process in self._processes.values():
            process.wait_ready()

    def endpoint_for(self, service: str) -> str:
        """The emulator process serving `service` (a SigV4 signing name)."""
        assert self.endpoints, "start() first"
        return self.endpoints[DYNAMODB_GROUP if service == "dynamodb" else SERVICES_GROUP]

    @property
    def pids(self) -> dict[str, int]:
        """Emulator process group -> pid (for CPU accounting)."""
        return {group: p.pid for group, p in self._processes.items() if p.pid is not None}

    def emulator_cpu(self) -> dict[str, dict[tuple[str, str], float]]:
        """Emulator process group -> CPU seconds moto spent per (service, operation) (while the processes run)."""
        return {group: process.cpu() for group, process in self._processes.items()}

    def reset(self) -> None:
        """moto's state back to empty in every emulator process (the counts stay)."""
        for process in self._processes.values():
            process.reset()

    def stop(self) -> None:
        if self._processes:
            with contextlib.suppress(requests.RequestException, ValueError, KeyError):
                self.counter.freeze()  # the counts outlive the processes (a report read after stop)
        for process in self._processes.values():
            process.stop()
        self._processes = {}
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread, self._front_door = None, None, None
        with self._clients_lock:
            self._clients.clear()

    def route_lambda_invocations(self, route: LambdaRoute) -> None:
        """An Invoke on the front door of a function `route` serves goes to it (one `--endpoint-url` for every
        service, as the operator tool uses it, reaches the functions of the local pipeline)."""
        assert self._front_door is not None, "start() first"
        self._front_door.lambda_routes.append(route)

    def unroute_lambda_invocations(self, route: LambdaRoute) -> None:
        if self._front_door is not None and route in self._front_door.lambda_routes:
            self._front_door.lambda_routes.remove(route)

    def route_ecs_tasks(self, route: EcsRoute) -> None:
        """A task call (RunTask, DescribeTasks, StopTask, ListTasks) of `route`'s cluster on the front door goes to
        its fake Fargate, where the local pipeline's tasks are (moto's ECS has none of them)."""
        assert self._front_door is not None, "start() first"
        self._front_door.ecs_routes.append(route)

    def unroute_ecs_tasks(self, route: EcsRoute) -> None:
        if self._front_door is not None and route in self._front_door.ecs_routes:
            self._front_door.ecs_routes.remove(route)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str, access_key: str = ENGINE_KEY) -> Any:
        """The engine's client of `service` as `access_key`, bound to its emulator process: one per (service, key),
        shared by the engine's threads (botocore clients are thread-safe; register no event handler on one)."""
        key = (service, access_key)
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                client = self._clients[key] = self._session.client(  # type: ignore[call-overload]
                    service,
                    region_name=self.region,
                    endpoint_url=self.endpoint_for(service),
                    aws_access_key_id=access_key,
                    aws_secret_access_key=FAKE_SECRET,
                    config=_ENGINE_CLIENT_CONFIG,
                )
        return client

    def credentials_env(self, access_key: str) -> dict[str, str]:
        """What a worker process gets: fake credentials, the region, and the emulator processes' endpoints."""
        return {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_SESSION_TOKEN": "local-session",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoints[SERVICES_GROUP],
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoints[DYNAMODB_GROUP],
        }
