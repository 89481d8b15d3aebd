"""A dead letter as an operator reads it: when it was sent, how often received, which submission and runs it is
about, and why it is there.

- challenge and fan-out DLQs: the body is the routed submission (a fan-out DLQ message may also be SNS's JSON
  envelope when raw delivery was off); the reason is the run's state and `reason` from the status table.
- completion DLQ: either the event itself (an EventBridge target DLQ message: why in its `ERROR_CODE` /
  `ERROR_MESSAGE` attributes) or a Lambda on-failure destination record (`requestPayload` is the event;
  why in `requestContext.condition` and `responsePayload`). The event is an ECS Task State Change (the run from
  its container overrides `MM_SUBMISSION_ID` / `MM_PHASE`) or a Run Report Due event (`detail.runId`).

Only what is named here is read from a message's attributes: never all of them. A completion body can hold the
scorer's token: in the insecure credentials mode the launcher puts `MM_M2M_TOKEN` in the RunTask overrides and the
STOPPED event carries them (decision 025), so every container override variable a sensitive name names is
redacted (`is_sensitive_variable`, as the completion function redacts when parsing) before a letter is built:
nothing printed, human or JSON, holds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mm_adapters.status_store import StatusStore
from mm_contracts.models.ecs_event import REDACTED, is_sensitive_variable
from mm_contracts.models.lifecycle import LifecycleRecord
from mm_contracts.models.phase import RunKey, ScoringPhase
from mm_contracts.models.task import TaskEnv
from operator_tools.dead_letters.queues import PeekedMessage, QueueKind

# The attributes EventBridge sets on a message it sends to a target's DLQ
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
EVENTBRIDGE_ERROR_ATTRIBUTES = ("ERROR_CODE", "ERROR_MESSAGE", "EXHAUSTED_RETRY_CONDITION", "RETRY_ATTEMPTS")
MAX_REASON = 300


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    sent_at: datetime | None
    receive_count: int
    submission_id: str | None
    challenge_id: str | None
    run_ids: list[str]
    reason: str
    document: Any  # the decoded body (the routed submission, or the completion event / on-failure record), redacted
    event: dict[str, Any] | None = None  # completion: the event in it, redacted (a redrive invokes the body's own)
    runs: dict[str, str] = field(default_factory=dict)  # run id -> "STATE: reason"

    def to_dict(self, *, with_body: bool) -> dict[str, Any]:
        document: dict[str, Any] = {
            "messageId": self.message_id,
            "sentAt": self.sent_at.isoformat() if self.sent_at else None,
            "receiveCount": self.receive_count,
            "submissionId": self.submission_id,
            "challengeId": self.challenge_id,
            "runIds": self.run_ids,
            "runs": self.runs,
            "reason": self.reason,
        }
        if with_body:
            document["body"] = self.document
        return document


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _redact_environment(pairs: list[Any]) -> list[Any]:
    return [
        {**pair, "value": REDACTED}
        if isinstance(pair, dict) and "value" in pair and is_sensitive_variable(str(pair.get("name", "")))
        else redact(pair)
        for pair in pairs
    ]


def redact(document: Any) -> Any:
    """A copy of `document` with the value of every sensitive variable in an `environment` list (name/value pairs,
    as ECS writes `detail.overrides.containerOverrides[].environment`) replaced by REDACTED, at any depth: the
    event itself and an on-failure record's `requestPayload` alike."""
    if isinstance(document, dict):
        return {
            key: _redact_environment(value) if key == "environment" and isinstance(value, list) else redact(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [redact(item) for item in document]
    return document


def routed_document(body: str) -> dict[str, Any] | None:
    """The routed submission of a challenge or fan-out dead letter (unwrapping an SNS envelope), or None."""
    document = _json(body)
    if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
        document = _json(str(document["Message"]))
    return document if isinstance(document, dict) else None


def _run_ids_of(store: StatusStore, submission_id: str, challenge_id: str | None, phase: str | None) -> list[str]:
    """The runs a message is about: its phase's run, else every run of the submission (of its challenge)."""
    if phase:
        try:
            return [RunKey(submission_id, ScoringPhase(phase)).run_id]
        except ValueError:
            return []
    return [r.run_id for r in store.get_runs(submission_id) if challenge_id in (None, r.challenge_id)]


def _run_summary(record: LifecycleRecord) -> str:
    reason = f": {record.reason}" if record.reason else ""
    report = f" (report {record.report_status.value})" if record.report_status else ""
    return f"{record.state.value}{report}{reason}"[:MAX_REASON]


def _runs(store: StatusStore, run_ids: list[str]) -> dict[str, str]:
    found = store.get_many(run_ids) if run_ids else {}
    return {run_id: (_run_summary(found[run_id]) if run_id in found else "no status item") for run_id in run_ids}


def _letter(
    message: PeekedMessage,
    store: StatusStore,
    about: tuple[str | None, str | None, Any],
    reason_of: Callable[[dict[str, str]], str],
    document: Any,
    event: dict[str, Any] | None = None,
) -> DeadLetter:
    """A dead letter about (submission, challenge, phase): its runs read from the status table, its reason from them."""
    submission_id, challenge_id, phase = about
    run_ids = _run_ids_of(store, submission_id, challenge_id, phase) if submission_id else []
    runs = _runs(store, run_ids)
    return DeadLetter(
        message.message_id,
        message.sent_at,
        message.receive_count,
        submission_id,
        challenge_id,
        run_ids,
        reason_of(runs)[:MAX_REASON],
        document,
        event=event,
        runs=runs,
    )


def _routed(message: PeekedMessage, store: StatusStore) -> DeadLetter:
    document = routed_document(message.body)
    if document is None:
        return DeadLetter(
            message.message_id,
            message.sent_at,
            message.receive_count,
            None,
            None,
            [],
            "the body is not a routed submission (JSON)",
            message.body[:MAX_REASON],
        )
    submission_id = str(document.get("submissionId") or "") or None
    challenge_id = str(document.get("challengeId") or "") or None

    def reason_of(runs: dict[str, str]) -> str:
        return "; ".join(f"{k}: {v}" for k, v in runs.items()) if runs else "no run recorded for this submission"

    return _letter(message, store, (submission_id, challenge_id, document.get("phase")), reason_of, document)


def _event_run(event: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(submission id, phase, challenge id) of a completion event, from what the pipeline set on it."""
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    assert isinstance(detail, dict)
    if event.get("detail-type") == "Run Report Due":
        try:
            key = RunKey.parse(str(detail.get("runId", "")))
        except ValueError:
            return None, None, None
        return key.submission_id, key.phase.value, None
    values: dict[str, str] = {}
    overrides = detail.get("overrides") if isinstance(detail.get("overrides"), dict) else {}
    assert isinstance(overrides, dict)
    for container in overrides.get("containerOverrides") or []:
        for pair in container.get("environment") or [] if isinstance(container, dict) else []:
            if isinstance(pair, dict):
                values.setdefault(str(pair.get("name")), str(pair.get("value")))
    return (
        values.get(TaskEnv.SUBMISSION_ID.value),
        values.get(TaskEnv.PHASE.value),
        values.get(TaskEnv.CHALLENGE_ID.value),
    )


def completion_event(document: Any) -> tuple[dict[str, Any] | None, str]:
    """(the event to invoke the completion function with, why it failed) of a completion dead letter's body."""
    if not isinstance(document, dict):
        return None, "the body is not JSON"
    if "requestContext" in document and "requestPayload" in document:
        context = document.get("requestContext") or {}
        response = document.get("responsePayload")
        why = f"on-failure record: {context.get('condition', 'unknown condition')}"
        if isinstance(response, dict) and (response.get("errorType") or response.get("errorMessage")):
            why += f": {response.get('errorType', '')} {response.get('errorMessage', '')}".rstrip()
        payload = document.get("requestPayload")
        return (payload if isinstance(payload, dict) else None), why
    return document, ""


def _completion(message: PeekedMessage, store: StatusStore) -> DeadLetter:
    document = redact(_json(message.body))
    event, why = completion_event(document)
    if not why:
        errors = [
            f"{name}={message.attributes[name]}" for name in EVENTBRIDGE_ERROR_ATTRIBUTES if name in message.attributes
        ]
        why = "target DLQ: " + ", ".join(errors) if errors else "no error attributes (a redriven or local event)"
    submission_id, phase, challenge_id = _event_run(event) if event else (None, None, None)

    def reason_of(runs: dict[str, str]) -> str:
        return why + ("; " + "; ".join(f"{k}: {v}" for k, v in runs.items()) if runs else "")

    # A body that is not JSON cannot be redacted: only its length is shown.
    shown = document if document is not None else f"<not JSON: {len(message.body)} characters>"
    return _letter(message, store, (submission_id, challenge_id, phase), reason_of, shown, event=event)


def decode(kind: QueueKind, message: PeekedMessage, store: StatusStore) -> DeadLetter:
    if kind is QueueKind.COMPLETION:
        return _completion(message, store)
    return _routed(message, store)
