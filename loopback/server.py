"""`LoopbackServer`: what every emulator of the harness used to write by hand around `ThreadingHTTPServer`.

The emulator supplies one `RequestHandler` (`Request` -> `Response`) and keeps its own routing and state; the
server reads the body (`Content-Length`), answers with `Content-Type` and `Content-Length` set, keeps HTTP/1.1
connections alive, disables Nagle (headers and body go out in separate writes: no 40 ms stalls), logs nothing
(requests may carry an Authorization header), and ignores a client that hung up before its answer. An exception
the handler raises goes to the HTTP server's own error path (the connection is closed): an emulator that must
answer a 5xx instead catches it itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

LOOPBACK_HOST = "127.0.0.1"
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """One request as received: `target` is the raw request target (path and query), `headers` are
    case-insensitive, `body` is empty when the request had none."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query_string(self) -> str:
        return urlsplit(self.target).query

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string)

    def json(self, default: Any = None) -> Any:
        """The body parsed as JSON; `default` when there is no body. Raises ValueError on a body that is not JSON."""
        return json.loads(self.body) if self.body else default


@dataclass
class Response:
    """An answer: status, body bytes, content type and any further headers."""

    status: int
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        *,
        content_type: str = JSON_CONTENT_TYPE,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return cls(status, json.dumps(payload).encode("utf-8"), content_type, dict(headers or {}))

    @classmethod
    def text(cls, status: int, text: str, *, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, text.encode("utf-8"), TEXT_CONTENT_TYPE, dict(headers or {}))


RequestHandler = Callable[[Request], Response]


class LoopbackServer:
    """`handle` served on `host:port` (port 0: any free one) by a daemon thread, from `start()` to `stop()`."""

    def __init__(
        self,
        handle: RequestHandler,
        *,
        name: str,
        host: str = LOOPBACK_HOST,
        port: int = 0,
        methods: Iterable[str] = ALL_METHODS,
        server_version: str | None = None,
        poll_interval: float = 0.05,  # how long stop() may wait for the serve loop to notice
    ) -> None:
        self._handle = handle
        self._name = name
        self._host = host
        self._port = port
        self._methods = tuple(method.upper() for method in methods)
        self._server_version = server_version or f"{name}/1.0"
        self._poll_interval = poll_interval
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> LoopbackServer:
        """Bind and serve (a second call while running does nothing)."""
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((self._host, self._port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self._poll_interval},
            name=self._name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (requests still being answered finish on their own threads)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://<host>:<port>`, no trailing slash."""
        return f"http://{self._host}:{self.port}"

    def answer(self, request: Request) -> Response:
        return self._handle(request)


def _handler_class(owner: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    """A `BaseHTTPRequestHandler` bound to `owner`, with `do_<METHOD>` for each method it serves (any other
    method is answered 501 by the standard library)."""
    attributes: dict[str, Any] = {
        "server_version": owner._server_version,
        **{f"do_{method}": _LoopbackHandler._serve for method in owner._methods},
        "owner": owner,
    }
    return type(f"{_LoopbackHandler.__name__}_{owner._name}", (_LoopbackHandler,), attributes)


class _LoopbackHandler(BaseHTTPRequestHandler):
    owner: LoopbackServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the emulators record or count requests themselves (never with their Authorization header)."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, CaseInsensitiveDict(self.headers.items()), body)
        response = self.owner.answer(request)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if response.body:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout): nothing to answer
