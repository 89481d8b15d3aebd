"""Who called what: each request's caller (the SigV4 access key), service (the credential scope) and operation.

Every caller of the local pipeline has its own fake access key, so the counts say how many AWS calls each function
made, by service and by operation, without touching the functions' code. The operation is read from what the
protocol already carries, never by parsing the request fully: `X-Amz-Target` for the JSON services (DynamoDB, SQS,
ECS, SSM, EventBridge, Logs), the form body's `Action` for the query services (SNS, STS), the path for the REST
services (Lambda's Invoke, S3's object and bucket calls by method) and the CBOR ones (`/service/<s>/operation/<op>`).

Standard library only: the emulator processes import this before moto, and the engine without moto.
"""

from __future__ import annotations

import io
import re
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_FORM_ACTION = re.compile(rb"(?:^|&)Action=([^&]*)")
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/[^/]+/invocations$")
_S3_OPERATIONS = {
    ("PUT", False): "CreateBucket",
    ("PUT", True): "PutObject",
    ("GET", False): "ListObjects",
    ("GET", True): "GetObject",
    ("HEAD", False): "HeadBucket",
    ("HEAD", True): "HeadObject",
    ("DELETE", False): "DeleteBucket",
    ("DELETE", True): "DeleteObject",
}
_MAX_FORM_BODY = 1 << 20  # a query-protocol body larger than this is counted without its Action

OperationCounts = dict[tuple[str, str, str], int]


def caller_and_service(authorization: str | None) -> tuple[str, str]:
    """(access key, service) from a SigV4 Authorization header; ("anonymous", "unknown") without one."""
    match = _SCOPE.search(authorization or "")
    if not match:
        return "anonymous", "unknown"
    return match.group(1), match.group(3)


def operation_of(environ: dict[str, Any], service: str = "") -> str:
    """The API operation of a WSGI request, as cheaply as its protocol allows ("" when it cannot tell). A form
    body read here is put back for whoever reads it next."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    path = str(environ.get("PATH_INFO") or "/")
    method = str(environ.get("REQUEST_METHOD") or "POST")
    if str(environ.get("CONTENT_TYPE") or "").startswith(_FORM_CONTENT_TYPE):
        return _form_action(environ) or method
    if "/operation/" in path:  # smithy-rpc-v2-cbor (CloudWatch)
        return path.rsplit("/operation/", 1)[-1].split("/", 1)[0]
    if _LAMBDA_INVOKE.match(path):
        return "Invoke"
    if service == "s3":  # path style: /bucket or /bucket/key (a sub-resource query is not told apart)
        parts = path.strip("/").split("/", 1)
        return _S3_OPERATIONS.get((method, len(parts) == 2 and bool(parts[1])), method)
    first = path.strip("/").split("/", 1)[0]
    return f"{method} /{first}" if first else method


def _form_action(environ: dict[str, Any]) -> str:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length or length > _MAX_FORM_BODY:
        return ""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    match = _FORM_ACTION.search(body)
    return unquote_plus(match.group(1).decode("ascii", "replace")) if match else ""


class RequestCounter:
    """Thread-safe counts of requests by (caller access key, service, operation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, caller: str, service: str, n: int = 1, operation: str = "") -> None:
        with self._lock:
            self._counts[(caller, service, operation)] += n

    def operation_counts(self) -> OperationCounts:
        """Every count: {(caller, service, operation): n}."""
        with self._lock:
            return dict(self._counts)

    def snapshot(self) -> dict[tuple[str, str], int]:
        """{(caller, service): n}, the operations summed."""
        result: Counter[tuple[str, str]] = Counter()
        for (caller, service, _), count in self.operation_counts().items():
            result[(caller, service)] += count
        return dict(result)

    def by_caller(self) -> dict[str, dict[str, int]]:
        """{caller: {service: n}}."""
        result: dict[str, dict[str, int]] = {}
        for (caller, service), count in sorted(self.snapshot().items()):
            result.setdefault(caller, {})[service] = count
        return result

    def by_caller_operation(self) -> dict[str, dict[str, dict[str, int]]]:
        """{caller: {service: {operation: n}}} ("" for a request whose operation could not be told)."""
        result: dict[str, dict[str, dict[str, int]]] = {}
        for (caller, service, operation), count in sorted(self.operation_counts().items()):
            result.setdefault(caller, {}).setdefault(service, {})[operation] = count
        return result


def counts_to_rows(counts: OperationCounts) -> list[list[Any]]:
    """JSON-friendly rows [caller, service, operation, n] (what an emulator process answers)."""
    return [[caller, service, operation, n] for (caller, service, operation), n in sorted(counts.items())]


def rows_to_counts(rows: Iterable[list[Any]]) -> OperationCounts:
    return {(str(c), str(s), str(o)): int(n) for c, s, o, n in rows}
