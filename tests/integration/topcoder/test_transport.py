"""The Topcoder clients' urllib3 transport against loopback servers: what reaches the wire, and how each failure
is named, since that name decides whether a POST may be sent again (decisions 089, 122)."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loopback.server import LoopbackServer, Request, Response
from mm_adapters.topcoder import ApiOutcomeUnknownError, ApiRejectedError, SubmissionApiClient
from mm_adapters.topcoder.transport import (
    ConnectFailed,
    ConnectionLost,
    ReadTimedOut,
    TransportFailed,
    Urllib3Transport,
    prepare,
)
from tests.integration.topcoder.support import failure_review
from tests.unit.certificate_monitor.test_certificate_monitor import certificate


class _Tokens:
    def get_token(self, force_refresh: bool = False) -> str:
        return "token-1"


@contextmanager
def raw_server(behave: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback TCP server that hands each accepted connection to `behave`; yields its http URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                behave(connection)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()


def test_what_the_transport_sends_is_the_prepared_request() -> None:
    # Given a loopback server that records what it receives
    received: list[Request] = []

    def record(request: Request) -> Response:
        received.append(request)
        return Response.json(201, {"ok": True}, headers={"X-Next-Page": "2"})

    # When a JSON POST with repeated query parameters goes out
    with LoopbackServer(record, name="probe") as server:
        request = prepare(
            "post",
            f"{server.url}/v5/reviews",
            params={"page": 1, "typeId": ["a", "b"]},
            json_body={"score": 1},
            headers={"Authorization": "Bearer token-1"},
        )
        answer = Urllib3Transport().send(request, timeout=5)

    # Then the method, query, headers and body are as prepared, and the answer reads like any HTTP answer
    [seen] = received
    assert (seen.method, seen.path, seen.query) == ("POST", "/v5/reviews", {"page": ["1"], "typeId": ["a", "b"]})
    assert seen.headers["Authorization"] == "Bearer token-1"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.json() == {"score": 1}
    assert (answer.status_code, answer.json()) == (201, {"ok": True})
    assert answer.headers["x-next-page"] == "2"  # header names are case-insensitive


def test_a_query_leaves_out_what_is_none_and_keeps_what_the_url_has() -> None:
    request = prepare("GET", "https://api.example/v5/reviews?x=1", params={"page": 2, "typeId": None})
    assert request.url == "https://api.example/v5/reviews?x=1&page=2"
    assert (request.body, dict(request.headers)) == (None, {})


def test_a_proxy_in_the_environment_carries_the_call_and_no_proxy_bypasses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a forward proxy on loopback, named by HTTP_PROXY (as an egress proxy would be instead of a NAT gateway)
    seen: list[str] = []

    def forward(request: Request) -> Response:
        seen.append(request.target)
        return Response.json(200, {"via": "proxy"})

    with LoopbackServer(forward, name="proxy") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        # When a call goes to an API host that does not even resolve here
        answer = Urllib3Transport().send(prepare("GET", "http://api.topcoder.invalid/v5/reviews?page=1"), timeout=5)
        # Then it went through the proxy, which got the whole URL
        assert answer.json() == {"via": "proxy"}
        assert seen == ["http://api.topcoder.invalid/v5/reviews?page=1"]
        # And a host NO_PROXY names is called directly (here: it does not resolve), never through the proxy
        monkeypatch.setenv("NO_PROXY", "api.topcoder.invalid")
        with pytest.raises(ConnectFailed):
            Urllib3Transport().send(prepare("GET", "http://api.topcoder.invalid/v5/reviews"), timeout=5)
    assert len(seen) == 1


def test_a_redirect_is_answered_not_followed() -> None:
    # Given an API that answers a POST with a redirect elsewhere
    received: list[str] = []

    def redirect(request: Request) -> Response:
        received.append(request.path)
        return Response(302, b"", headers={"Location": "/elsewhere"})

    with LoopbackServer(redirect, name="redirecting") as server:
        client = SubmissionApiClient(f"{server.url}/v5", _Tokens(), max_retries=2, sleep=lambda _: None)
        # When the client posts, then the 302 is a rejection and the Location is never requested
        with pytest.raises(ApiRejectedError) as caught:
            client.create_review(failure_review())
    assert caught.value.status_code == 302
    assert received == ["/v5/reviews"]


def test_a_port_nobody_listens_on_is_a_connect_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed):
        Urllib3Transport().send(prepare("POST", f"http://127.0.0.1:{port}/v5/reviews", json_body={}), timeout=2)


def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    def hold(connection: socket.socket) -> None:
        connection.recv(65536)
        threading.Event().wait(2)

    with raw_server(hold) as url, pytest.raises(ReadTimedOut):
        Urllib3Transport().send(prepare("GET", f"{url}/v5/reviews"), timeout=0.2)


def test_a_connection_closed_after_the_request_is_lost_and_a_post_is_not_sent_again() -> None:
    # Given a server that reads each request, then hangs up without an answer (it may have processed it)
    requests_read: list[bytes] = []

    def hang_up(connection: socket.socket) -> None:
        requests_read.append(connection.recv(65536))

    with raw_server(hang_up) as url:
        # Then the transport says the connection was lost...
        with pytest.raises(ConnectionLost):
            Urllib3Transport().send(prepare("POST", f"{url}/v5/reviews", json_body={}), timeout=2)
        # ...and the client does not repeat a POST whose outcome is unknown
        client = SubmissionApiClient(f"{url}/v5", _Tokens(), max_retries=2, sleep=lambda _: None)
        with pytest.raises(ApiOutcomeUnknownError, match="connection lost"):
            client.create_review(failure_review())
    assert len(requests_read) == 2


def _server_context(directory: Path) -> ssl.SSLContext:
    """A TLS server context with a self-signed certificate (the certificate monitor tests' maker)."""
    pem, key = certificate(1, name="127.0.0.1", now=datetime.datetime.now(datetime.UTC))
    (directory / "cert.pem").write_text(pem)
    (directory / "key.pem").write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


def test_tls_is_verified_so_an_untrusted_certificate_fails_before_anything_is_sent(tmp_path: Path) -> None:
    # Given an HTTPS server whose certificate no CA in the bundle signed
    context = _server_context(tmp_path)
    received: list[bytes] = []

    def tls(connection: socket.socket) -> None:
        try:
            with context.wrap_socket(connection, server_side=True) as secure:
                received.append(secure.recv(65536))
        except (ssl.SSLError, OSError):
            return  # the client refused the handshake

    with raw_server(tls) as url:
        https = url.replace("http://", "https://")
        with pytest.raises(TransportFailed, match="SSLError"):
            Urllib3Transport().send(prepare("GET", f"{https}/v5/reviews"), timeout=2)
    assert received == []
