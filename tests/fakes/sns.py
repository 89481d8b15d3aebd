"""SNS PublishBatch / Publish behind a real boto3 client, delivering to fake queues by filter policy on the
`challengeId` message attribute (raw message delivery), so fault_injection's botocore faults apply."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE
from tests.fakes import boto_session
from tests.fakes.queues import FakeQueue

_PARAMS_KEY = "fake_sns_params"


class FakeSns:
    def __init__(self) -> None:
        self.subscriptions: dict[str, FakeQueue] = {}  # challenge id -> queue
        self.published: list[dict[str, Any]] = []

    def subscribe(self, challenge_id: str, queue: FakeQueue) -> None:
        self.subscriptions[challenge_id] = queue

    def _deliver(self, entry: dict[str, Any]) -> str:
        self.published.append(copy.deepcopy(entry))
        attribute = (entry.get("MessageAttributes") or {}).get(CHALLENGE_ID_ATTRIBUTE) or {}
        queue = self.subscriptions.get(str(attribute.get("StringValue")))
        if queue is not None:
            queue.send(str(entry["Message"]), attributes=entry.get("MessageAttributes"))
        return str(uuid.uuid4())

    def publish_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        successful = [
            {"Id": entry["Id"], "MessageId": self._deliver(entry)} for entry in params["PublishBatchRequestEntries"]
        ]
        return {"Successful": successful, "Failed": []}

    def publish(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"MessageId": self._deliver(params)}


def fake_sns_client(fake: FakeSns) -> Any:
    client = boto_session().client(
        "sns", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS_KEY] = params  # after fault_injection may have dropped entries (partial failure)

    def answer(model: Any, context: dict[str, Any], **_: Any) -> Any:
        params = context.get(_PARAMS_KEY, {})
        parsed = fake.publish_batch(params) if model.name == "PublishBatch" else fake.publish(params)
        parsed["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0}
        return AWSResponse(url="https://sns.fake/", status_code=200, headers=HTTPHeaders(), raw=None), parsed

    client.meta.events.register_last("before-parameter-build.sns", remember, unique_id="fake-sns-params")
    client.meta.events.register_last("before-call.sns", answer, unique_id="fake-sns-answer")
    return client
