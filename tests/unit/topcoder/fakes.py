"""Socket-free fakes for the token provider tests: a JWT maker, a counting SSM/Secrets wrapper, and a
transport that answers like the Auth0 proxy."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from mm_adapters.topcoder.transport import HttpRequest, HttpResponse, case_insensitive


def make_jwt(exp: float | None, **claims: Any) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = dict(claims)
    if exp is not None:
        payload["exp"] = int(exp)
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


class CountingClient:
    """Wraps a boto3 client and counts calls per operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return target(*args, **kwargs)

        return counted


class FakeProxyTransport:
    """Answers POSTs like the Auth0 proxy: each call issues a new JWT valid `lifetime` seconds from the
    clock, `expires_in = exp - 60 - now`. `responder` overrides the answer (status, body)."""

    def __init__(self, clock: Callable[[], float], lifetime: int = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.posts: list[dict[str, Any]] = []
        self.issued: list[str] = []
        self.responder: Callable[[dict[str, Any]], tuple[int, Any]] | None = None

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        body = json.loads(request.body or b"null")
        self.posts.append({"method": request.method, "url": request.url, "json": body, "timeout": timeout})
        if self.responder is not None:
            status, answer = self.responder(body)
            return _answer(status, answer)
        now = self.clock()
        exp = int(now) + self.lifetime
        token = make_jwt(exp, sub=f"{body['client_id']}@clients", n=len(self.issued))
        self.issued.append(token)
        return _answer(200, {"access_token": token, "expires_in": int(exp - 60 - now)})


def _answer(status: int, body: Any) -> HttpResponse:
    """The proxy's answer: `body` as JSON, or as is when it is text (a proxy's plain-text error)."""
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return HttpResponse(status, case_insensitive({"Content-Type": "application/json"}), content)
