"""A fake Lambda endpoint: the Invoke REST call on loopback, for the functions that are invoked asynchronously.

moto's Lambda runs function code only in Docker (not available here), and the functions here run as worker
processes anyway. The timeout sweeper reconciles a lost STOPPED event by invoking the completion function
asynchronously (decision 008); its worker's `AWS_ENDPOINT_URL_LAMBDA` points here. The operator tool triggers a
sweep now by invoking the sweeper asynchronously (decision 109); with one `--endpoint-url` for every service (the
emulator's front door), the front door hands an Invoke of a function registered here to `wsgi`
(`LocalAws.route_lambda_invocations`).
This endpoint:

- speaks `POST /2015-03-31/functions/{FunctionName}/invocations` (name, partial or full ARN; an optional
  `Qualifier`), errors as `x-amzn-ErrorType` plus a JSON body, which botocore turns into ClientError codes;
- accepts `X-Amz-Invocation-Type: Event` with 202 and hands the payload to the function's registered
  `deliver` callable (the engine puts it where the completion rule's target puts events, so the completion
  worker takes it exactly like an EventBridge delivery, with the same retries and DLQ);
- answers `DryRun` with 204, and `RequestResponse` (not needed by the pipeline) with an error;
- counts each request by caller (operation `Invoke`), like every other local AWS call.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from requests.structures import CaseInsensitiveDict

from local_pipeline.awsenv import RequestCounter, caller_and_service
from loopback import LoopbackServer, Request, Response

INVOKE_PATH_PREFIX = "/2015-03-31/functions/"
INVOKE_PATH_SUFFIX = "/invocations"
MAX_ASYNC_PAYLOAD_BYTES = 256 * 1024  # Lambda's limit for an asynchronous invocation's payload


class LambdaError(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def function_name_of(reference: str) -> str:
    """`name`, `name:qualifier`, `account:function:name` or a full ARN -> the function name."""
    if ":function:" in reference:
        reference = reference.split(":function:", 1)[1]
    return reference.split(":", 1)[0]


class FakeLambda:
    """Serves Invoke on `endpoint` for the registered functions (`register(name, deliver)`)."""

    def __init__(self, *, counter: RequestCounter | None = None) -> None:
        self.counter = counter or RequestCounter()
        self._lock = threading.Lock()
        self._functions: dict[str, Callable[[bytes], None]] = {}
        self.invocations: list[dict[str, Any]] = []  # function, type, caller, resources (never the payload)
        self._server = LoopbackServer(self._answer, name="fake-lambda", methods=("POST",))

    def register(self, function_name: str, deliver: Callable[[bytes], None]) -> None:
        with self._lock:
            self._functions[function_name] = deliver

    @property
    def endpoint(self) -> str:
        return self._server.url

    def start(self) -> FakeLambda:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def serves(self, target: str) -> bool:
        """Whether `target` (path and query) is an Invoke of a function registered here."""
        path = urlsplit(target).path
        if not (path.startswith(INVOKE_PATH_PREFIX) and path.endswith(INVOKE_PATH_SUFFIX)):
            return False
        name = function_name_of(unquote(path[len(INVOKE_PATH_PREFIX) : -len(INVOKE_PATH_SUFFIX)]))
        with self._lock:
            return name in self._functions

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The same answer as over loopback, for an Invoke the emulator's front door received (see the docstring)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(
            {key[5:].replace("_", "-"): str(value) for key, value in environ.items() if key.startswith("HTTP_")}
        )
        query = environ.get("QUERY_STRING")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        response = self._answer(Request(environ.get("REQUEST_METHOD", "POST"), target, headers, body))
        response_headers = [("Content-Type", response.content_type), *response.headers.items()]
        response_headers.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", response_headers)
        return [response.body]

    def invoke(self, path: str, invocation_type: str, payload: bytes, caller: str) -> int:
        """Handle one Invoke; returns the HTTP status (raises `LambdaError`)."""
        parts = urlsplit(path)
        if not (parts.path.startswith(INVOKE_PATH_PREFIX) and parts.path.endswith(INVOKE_PATH_SUFFIX)):
            raise LambdaError("UnknownOperationException", f"{parts.path} is not served by the local fake Lambda", 404)
        reference = unquote(parts.path[len(INVOKE_PATH_PREFIX) : -len(INVOKE_PATH_SUFFIX)])
        qualifiers = parse_qs(parts.query).get("Qualifier") or []
        qualifier = qualifiers[0] if qualifiers else None
        name = function_name_of(reference)
        with self._lock:
            deliver = self._functions.get(name)
        if deliver is None or qualifier not in (None, "$LATEST"):
            raise LambdaError("ResourceNotFoundException", f"Function not found: {reference}", 404)
        if invocation_type == "DryRun":
            return 204
        if invocation_type != "Event":
            raise LambdaError(
                "InvalidParameterValueException",
                f"InvocationType {invocation_type!r}: only Event (and DryRun) is served locally",
                400,
            )
        if len(payload) > MAX_ASYNC_PAYLOAD_BYTES:
            raise LambdaError("RequestTooLargeException", "Request must be smaller than 262144 bytes", 413)
        try:
            event = json.loads(payload or b"{}")
        except ValueError:
            raise LambdaError("InvalidRequestContentException", "Could not parse request body into json", 400) from None
        deliver(payload)
        # What was invoked for which resources (an event's ARNs), never the payload itself.
        resources = event.get("resources") if isinstance(event, dict) else None
        with self._lock:
            self.invocations.append(
                {
                    "function": name,
                    "type": invocation_type,
                    "caller": caller,
                    "resources": [str(r) for r in resources] if isinstance(resources, list) else [],
                }
            )
        return 202

    def _answer(self, request: Request) -> Response:
        """One HTTP request: count it by caller, invoke, and answer as Lambda does (errors as
        `x-amzn-ErrorType` and a JSON body)."""
        caller, _ = caller_and_service(request.headers.get("Authorization"))
        path = request.path
        invoke = path.startswith(INVOKE_PATH_PREFIX) and path.endswith(INVOKE_PATH_SUFFIX)
        self.counter.add(caller, "lambda", operation="Invoke" if invoke else "")
        invocation_type = request.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        try:
            status = self.invoke(request.target, invocation_type, request.body, caller)
        except LambdaError as error:
            headers["x-amzn-ErrorType"] = error.code
            return Response.json(error.status, {"Type": "User", "message": error.message}, headers=headers)
        except Exception as error:  # a bug here must look like a 5xx to the caller, not hang it
            headers["x-amzn-ErrorType"] = "ServiceException"
            return Response.json(500, {"Type": "Service", "message": type(error).__name__}, headers=headers)
        return Response(status, headers=headers)
