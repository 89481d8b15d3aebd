"""`loopback.LoopbackServer`: the one HTTP server helper of the emulators, over a real loopback socket."""

from __future__ import annotations

import threading

import pytest
import requests

from loopback import LoopbackServer, Request, Response


def _echo(request: Request) -> Response:
    return Response.json(
        201,
        {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "json": request.json(),
            "header": request.headers.get("x-probe"),  # case-insensitive
        },
        headers={"X-Answered": "yes"},
    )


def test_a_request_reaches_the_handler_and_its_answer_the_client() -> None:
    with LoopbackServer(_echo, name="echo") as server:
        answer = requests.post(f"{server.url}/a/b?x=1&x=2", json={"k": "v"}, headers={"X-Probe": "p"}, timeout=5)
    assert answer.status_code == 201
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Answered"] == "yes"
    assert answer.json() == {
        "method": "POST",
        "path": "/a/b",
        "query": {"x": ["1", "2"]},
        "json": {"k": "v"},
        "header": "p",
    }


def test_the_server_binds_loopback_on_a_free_port_and_knows_its_url() -> None:
    server = LoopbackServer(_echo, name="echo").start()
    try:
        assert server.running
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert server.start() is server  # a second start does nothing
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(RuntimeError, match="echo is not running"):
        _ = server.url


def test_a_request_without_a_body_has_an_empty_body_and_no_json() -> None:
    seen: list[Request] = []

    def handle(request: Request) -> Response:
        seen.append(request)
        return Response.text(200, "plain")

    with LoopbackServer(handle, name="plain") as server:
        answer = requests.get(f"{server.url}/x", timeout=5)
    assert (answer.status_code, answer.text, answer.headers["Content-Type"]) == (
        200,
        "plain",
        "text/plain; charset=utf-8",
    )
    assert seen[0].body == b""
    assert seen[0].json() is None
    assert seen[0].json(default={}) == {}


def test_a_method_the_server_does_not_serve_is_answered_501_without_the_handler() -> None:
    called = threading.Event()

    def handle(request: Request) -> Response:
        called.set()
        return Response(204)

    with LoopbackServer(handle, name="post-only", methods=("POST",)) as server:
        assert requests.get(f"{server.url}/", timeout=5).status_code == 501
        assert not called.is_set()
        assert requests.post(f"{server.url}/", timeout=5).status_code == 204
    assert called.is_set()


def test_an_empty_answer_has_content_length_zero_and_the_connection_stays_usable() -> None:
    with LoopbackServer(lambda _request: Response(202), name="empty") as server, requests.Session() as session:
        first = session.post(f"{server.url}/one", data=b"x", timeout=5)
        second = session.post(f"{server.url}/two", data=b"y", timeout=5)
    assert (first.status_code, first.content, first.headers["Content-Length"]) == (202, b"", "0")
    assert second.status_code == 202
