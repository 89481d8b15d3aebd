"""The challenge queues as the completion function and the sweeper send to them: an admitted run's message, a
relaunch, each with the `challengeId` attribute the challenge processor's subscription filters use; and the queue
entry an ADMITTED run is re-sent from (`entry_of_admitted`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mm_capacity.dispatcher import Admitted, admitted_message_body
from mm_capacity.store import WaitEntry
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE


class ChallengeQueues:
    """Challenge queue URLs by challenge id, from the queue name template (one GetQueueUrl per challenge and
    container), and the one way a run's message goes back to its challenge queue."""

    def __init__(self, name_template: str, sqs: Callable[[], Any]) -> None:
        self._template = name_template
        self._sqs = sqs
        self._urls: dict[str, str] = {}

    def url(self, challenge_id: str) -> str:
        url = self._urls.get(challenge_id)
        if url is None:
            name = self._template.format(challenge_id=challenge_id)
            url = str(self._sqs().get_queue_url(QueueName=name)["QueueUrl"])
            self._urls[challenge_id] = url
        return url

    def send(self, challenge_id: str, body: str, *, delay_seconds: int = 0) -> None:
        request: dict[str, Any] = {
            "QueueUrl": self.url(challenge_id),
            "MessageBody": body,
            "MessageAttributes": {CHALLENGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": challenge_id}},
        }
        if delay_seconds:
            request["DelaySeconds"] = delay_seconds
        self._sqs().send_message(**request)

    def send_admitted(self, admitted: Admitted) -> None:
        """The admitted run's routed message (narrowed to its phase) to its challenge queue, where the challenge
        processor claims its launch from ADMITTED exactly as for a first delivery."""
        self.send(admitted.entry.challenge_id, admitted_message_body(admitted))


def entry_of_admitted(record: LifecycleRecord) -> WaitEntry:
    """The queue entry an ADMITTED run was admitted from, rebuilt from its status item (what a re-send needs)."""
    return WaitEntry(
        challenge_id=record.challenge_id,
        run_id=record.run_id,
        submission_id=record.submission_id,
        phase=record.phase,
        member_id=record.member_id if record.member_id is not None else 0,
        wait_order=record.wait_order or "",
        enqueued_at=record.enqueued_at if record.enqueued_at is not None else 0,
        rerun=record.rerun,
    )
