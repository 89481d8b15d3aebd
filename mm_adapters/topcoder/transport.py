"""The one HTTP transport under the Topcoder clients: urllib3, which botocore already loads (decision 122).

`TopcoderHttpClient` and the Auth0 proxy token provider build an `HttpRequest` (`prepare`) and hand it to a
`Transport`; the real one is `Urllib3Transport`. A fake API, or the fault layer wrapped around the real transport
(`fault_injection.http_faults`), is a `Transport` too, so tests and the local pipeline run the clients' own
retry, refresh and look-before-post logic unchanged.

A transport raises only these, and what each means decides whether the call may be repeated (decision 089):
- `ConnectFailed`: no connection was made (refused, name not resolved, connect timeout): the server never saw the
  request, so even a POST may be sent again;
- `ReadTimedOut`: the request went out and no answer came in time: the server may have processed it (or still may);
- `ConnectionLost`, `TransportFailed`: the connection broke, or something else failed, after the request may have
  gone out: as ambiguous as a read timeout.

Redirects are never followed and urllib3 retries nothing (`retries=False`): the client's own bounded retries are
the only ones, so no request is repeated behind its back. A proxy named by the standard variables (`HTTPS_PROXY`,
`HTTP_PROXY`, `NO_PROXY`, as botocore and `requests` read them) is used for the calls it covers: the deploy guide
offers one instead of a NAT gateway for the functions that call Topcoder.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib import request as urllib_request
from urllib.parse import urlencode, urlsplit

import urllib3
from botocore.httpsession import where as ca_bundle_path
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ProtocolError, ReadTimeoutError

JSON_CONTENT_TYPE = "application/json"


class TransportError(Exception):
    """The call got no HTTP answer. Subclasses say whether the request can have reached the server."""


class ConnectFailed(TransportError):
    """No connection was made: the server never saw the request."""


class ReadTimedOut(TransportError):
    """The request was sent and no answer came in time: it may have been processed."""


class ConnectionLost(TransportError):
    """The connection broke after the request may have been sent."""


class TransportFailed(TransportError):
    """Any other failure (TLS, a malformed answer): treated as ambiguous."""


@dataclass(frozen=True)
class HttpRequest:
    """A request as sent: the URL with its query string, the headers, the encoded body."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    """An answer: status, headers (looked up case-insensitively) and the whole body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes = b""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; `ValueError` when it is not JSON."""
        return json.loads(self.content)


class Transport(Protocol):
    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        """Send `request`, waiting at most `timeout` seconds to connect and as long for each read."""
        ...


def prepare(
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> HttpRequest:
    """The request: `params` as the query string (a list value repeats the key, a None value is left out),
    `json_body` as a JSON body."""
    all_headers = dict(headers or {})
    query = {key: value for key, value in (params or {}).items() if value is not None}
    if query:
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(query, doseq=True)}"
    body = None
    if json_body is not None:
        body = json.dumps(json_body, separators=(",", ":")).encode()
        all_headers["Content-Type"] = JSON_CONTENT_TYPE
    return HttpRequest(method.upper(), url, all_headers, body)


def case_insensitive(headers: Mapping[str, str]) -> Mapping[str, str]:
    """`headers` looked up case-insensitively, as a real answer's are (for answers a fake builds)."""
    return urllib3.HTTPHeaderDict(headers)


class Urllib3Transport:
    """The real transport: one urllib3 pool manager (kept-alive connections per host), TLS verified against the CA
    bundle botocore uses (certifi's when installed, else botocore's own); through a proxy where the environment
    names one (`proxies`: {scheme: proxy URL, "no": hosts to reach directly}, default the process environment's)."""

    def __init__(self, *, max_connections_per_host: int = 10, proxies: Mapping[str, str] | None = None) -> None:
        self._pool_options: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": max_connections_per_host,
            "retries": False,
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca_bundle_path(),
        }
        self._direct = urllib3.PoolManager(**self._pool_options)
        self._proxies = dict(urllib_request.getproxies_environment() if proxies is None else proxies)
        self._through: dict[str, urllib3.ProxyManager] = {}
        self._building = threading.Lock()

    def __repr__(self) -> str:
        return "Urllib3Transport()"  # never the proxy URL: it may carry credentials

    def _pool_for(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        # NO_PROXY as urllib (and so botocore and requests) reads it; in CPython, not in typeshed
        bypass = urllib_request.proxy_bypass_environment(parts.hostname or "", self._proxies)  # type: ignore[attr-defined]
        if not proxy or bypass:
            return self._direct
        with self._building:
            if proxy not in self._through:
                self._through[proxy] = urllib3.ProxyManager(proxy, **self._pool_options)
            return self._through[proxy]

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        try:
            answer = self._pool_for(request.url).request(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
                retries=False,
                preload_content=True,
            )
        except ConnectTimeoutError as error:  # also NewConnectionError and NameResolutionError
            raise ConnectFailed(type(error).__name__) from None
        except ReadTimeoutError as error:
            raise ReadTimedOut(type(error).__name__) from None
        except ProtocolError as error:
            raise ConnectionLost(type(error).__name__) from None
        except HTTPError as error:
            raise TransportFailed(type(error).__name__) from None
        return HttpResponse(answer.status, answer.headers, answer.data)


__all__ = [
    "ConnectFailed",
    "ConnectionLost",
    "HttpRequest",
    "HttpResponse",
    "ReadTimedOut",
    "Transport",
    "TransportError",
    "TransportFailed",
    "Urllib3Transport",
    "case_insensitive",
    "prepare",
]
