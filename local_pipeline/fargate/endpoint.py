"""The fake ECS's HTTP endpoint on loopback (`loopback.LoopbackServer`): the ECS JSON 1.1 protocol,
`X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Action>`, errors as `{"__type", "message"}` (which botocore
turns into ClientError codes), each request counted by caller and action."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from local_pipeline.awsenv import RequestCounter, caller_and_service
from local_pipeline.fargate.validation import EcsError
from loopback import LoopbackServer, Request, Response

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONTENT_TYPE = "application/x-amz-json-1.1"

Dispatch = Callable[[str, dict[str, Any]], dict[str, Any]]


class EcsEndpoint:
    """Serves `dispatch(action, body)` on `url`; an `EcsError` is its error answer, any other exception a 500."""

    def __init__(self, dispatch: Dispatch, counter: RequestCounter) -> None:
        self._dispatch = dispatch
        self.counter = counter
        self._server = LoopbackServer(self.answer, name="fake-fargate", methods=("POST",))

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def _payload(self, request: Request) -> dict[str, Any]:
        target = request.headers.get("X-Amz-Target") or ""
        if not target.startswith(TARGET_PREFIX):
            raise EcsError("UnknownOperationException", "missing or foreign X-Amz-Target")
        try:
            body = request.json(default={})
        except ValueError:
            raise EcsError("SerializationException", "body is not JSON") from None
        return self._dispatch(target[len(TARGET_PREFIX) :], body)

    def answer(self, request: Request) -> Response:
        caller, _ = caller_and_service(request.headers.get("Authorization"))
        target = request.headers.get("X-Amz-Target") or ""
        self.counter.add(caller, "ecs", operation=target.rsplit(".", 1)[-1])
        status, payload = 200, {}
        try:
            payload = self._payload(request)
        except EcsError as error:
            status, payload = error.status, {"__type": error.code, "message": error.message}
        except Exception as error:  # a bug here must look like a 5xx to the caller, not hang it
            status, payload = 500, {"__type": "ServerException", "message": type(error).__name__}
        return Response.json(
            status, payload, content_type=CONTENT_TYPE, headers={"x-amzn-RequestId": str(uuid.uuid4())}
        )
