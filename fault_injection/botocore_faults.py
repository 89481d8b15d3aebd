"""Faults in AWS calls, injected with botocore event handlers on a client (or a session) (decision 077).

`install_botocore_faults(client, plan)` registers three handlers on the client's event system:
- `before-parameter-build.*`: decide whether a fault fires for this call (the targeting ids come from the
  request parameters) and remember the API parameters in the call's context;
- `before-call.*`: answer instead of the service (an error response, so botocore raises the service's own
  modeled `ClientError`; a RunTask answer with `failures[]`; a `ReadTimeoutError`), or run a competing
  call first (condition races, clientToken conflicts);
- `after-call.*`: the call happened, then the caller sees a 5xx, a read timeout or dies (`SimulatedCrash`).
An injected answer replaces the whole call as the caller sees it, after botocore's own retries: one fault
that fires is one failed API call. Handlers are registered first, so they run before any other
`before-call` answerer (botocore's Stubber, a fake service) while moto (`before-send`) is never reached.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError, ReadTimeoutError

from fault_injection.kinds import FaultKind
from fault_injection.plan import FaultPlan, FaultRule
from mm_contracts.models.phase import RUN_ID_SEPARATOR, ScoringPhase
from mm_contracts.models.task import TaskEnv
from mm_contracts.names import CHALLENGE_ID_ATTRIBUTE, STATUS_TABLE_PARTITION_KEY

_CONTEXT_KEY = "mm_fault_injection"
_CAPACITY_REASON = "Capacity is unavailable at this time. Please try again later or in a different availability zone"
# Appended to the scorer container's environment by the competing earlier call of RUN_TASK_CONFLICT, so
# the same clientToken arrives with other parameters (as after a config change between two attempts).
CONFLICT_MARKER_ENV = "MM_FAULT_EARLIER_PARAMETERS"


class SimulatedCrash(BaseException):  # a BaseException on purpose: handler code never catches it
    """The function instance died here (timeout, OOM, host failure). A BaseException: no handler catches it."""


@dataclass(frozen=True)
class _ErrorAnswer:
    status: int
    code: str
    message: str


_ERRORS: dict[FaultKind, _ErrorAnswer] = {
    FaultKind.SNS_OUTAGE: _ErrorAnswer(500, "InternalError", "Internal Error (injected)"),
    FaultKind.DYNAMODB_THROTTLING: _ErrorAnswer(
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded (injected)",
    ),
    FaultKind.DYNAMODB_OUTAGE: _ErrorAnswer(500, "InternalServerError", "Internal server error (injected)"),
    FaultKind.SSM_THROTTLING: _ErrorAnswer(400, "ThrottlingException", "Rate exceeded (injected)"),
    FaultKind.SSM_OUTAGE: _ErrorAnswer(500, "InternalServerError", "Internal server error (injected)"),
    FaultKind.RUN_TASK_THROTTLING: _ErrorAnswer(400, "ThrottlingException", "Rate exceeded (injected)"),
    FaultKind.RUN_TASK_5XX_BEFORE_START: _ErrorAnswer(500, "ServerException", "Service unavailable (injected)"),
}
_SERVER_ERROR_AFTER_START = _ErrorAnswer(500, "ServerException", "Service unavailable (injected after start)")

# (service id, operation) -> kinds that may fire there, in the order they are asked.
_RUN_TASK_KINDS = (
    FaultKind.RUN_TASK_FAILURES,
    FaultKind.RUN_TASK_THROTTLING,
    FaultKind.RUN_TASK_CONFLICT,
    FaultKind.RUN_TASK_5XX_BEFORE_START,
    FaultKind.RUN_TASK_TIMEOUT_BEFORE_START,
)
_RUN_TASK_AFTER_KINDS = (
    FaultKind.RUN_TASK_5XX_AFTER_START,
    FaultKind.RUN_TASK_TIMEOUT_AFTER_START,
    FaultKind.CRASH_AFTER_RUN_TASK,
)
_DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_SERVICES = ("ecs", "dynamodb", "sns", "ssm")


@dataclass
class _Decision:
    kind: FaultKind | None = None
    rule: FaultRule | None = None
    params: dict[str, Any] = field(default_factory=dict)
    ids: tuple[str, ...] = ()
    failed_entries: list[dict[str, Any]] = field(default_factory=list)  # SNS partial failure


@dataclass
class FaultInstallation:
    """Handles of an installation; `uninstall()` removes the handlers again."""

    emitter: Any
    handlers: list[tuple[str, Callable[..., Any], str]]

    def uninstall(self) -> None:
        for event, handler, unique_id in self.handlers:
            self.emitter.unregister(event, handler, unique_id=unique_id)


class _Injector:
    def __init__(self, plan: FaultPlan, clock: Callable[[], float], client: Any | None) -> None:
        self._plan = plan
        self._clock = clock
        self._client = client  # for competing calls and modeled exception classes (None on a session)
        self._local = threading.local()

    # ---- handlers
    def before_parameter_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if getattr(self._local, "competing", False):
            return
        service = model.service_model.service_id.hyphenize()
        operation = model.name
        ids = tuple(_ids_of(service, operation, params))
        decision = _Decision(params=copy.deepcopy(params), ids=ids)
        context[_CONTEXT_KEY] = decision
        now = self._clock()
        if service == "sns" and operation == "PublishBatch" and self._plan.has(FaultKind.SNS_PUBLISH_PARTIAL_FAILURE):
            kept = []
            for entry in params.get("PublishBatchRequestEntries") or []:
                entry_ids = tuple(_sns_entry_ids(entry))
                if self._plan.fire(FaultKind.SNS_PUBLISH_PARTIAL_FAILURE, ids=entry_ids, now=now):
                    decision.failed_entries.append(
                        {"Id": entry.get("Id"), "Code": "InternalError", "Message": "injected", "SenderFault": False}
                    )
                else:
                    kept.append(entry)
            if decision.failed_entries:
                decision.kind = FaultKind.SNS_PUBLISH_PARTIAL_FAILURE
                if kept:  # in place: the service sees only the kept ones (all failed: answered in before-call)
                    params["PublishBatchRequestEntries"] = kept
                return
        for kind in _before_kinds(service, operation, params):
            rule = self._plan.fire(kind, ids=ids, now=now)
            if rule is not None:
                decision.kind, decision.rule = kind, rule
                return

    def before_call(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> Any:
        decision: _Decision | None = context.get(_CONTEXT_KEY)
        if decision is None or decision.kind is None:
            return None
        kind = decision.kind
        if kind is FaultKind.SNS_PUBLISH_PARTIAL_FAILURE:
            if not _kept_entries(decision):
                return _answer(200, {"Successful": [], "Failed": decision.failed_entries})
            return None
        if kind in _ERRORS:
            return _error_answer(_ERRORS[kind])
        if kind is FaultKind.RUN_TASK_FAILURES:
            reason = str((decision.rule.params if decision.rule else {}).get("reason", _CAPACITY_REASON))
            return _answer(200, {"tasks": [], "failures": [{"reason": reason, "detail": "injected"}]})
        if kind is FaultKind.RUN_TASK_TIMEOUT_BEFORE_START:
            raise ReadTimeoutError(endpoint_url=str(params.get("url", "")))
        if kind is FaultKind.RUN_TASK_CONFLICT:
            earlier = self._compete("run_task", _conflicting(decision.params))
            arn = ((earlier or {}).get("tasks") or [{}])[0].get("taskArn")
            if not arn:
                return None  # nothing to conflict with: the call goes on as asked
            return _answer(
                400,
                {
                    "Error": {"Code": "ConflictException", "Message": "clientToken already used (injected)"},
                    "resourceIds": [arn],
                },
            )
        if kind is FaultKind.DYNAMODB_CONDITION_RACE:
            # A concurrent writer's identical write lands first (and that writer then goes away).
            self._compete(_snake(model.name), decision.params)
            return None
        return None

    def after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        decision: _Decision | None = context.get(_CONTEXT_KEY)
        if decision is None or getattr(self._local, "competing", False):
            return
        if decision.kind is FaultKind.SNS_PUBLISH_PARTIAL_FAILURE and http_response.status_code < 300:
            parsed.setdefault("Failed", [])
            known = {f.get("Id") for f in parsed["Failed"]}
            parsed["Failed"].extend(f for f in decision.failed_entries if f.get("Id") not in known)
            return
        service = model.service_model.service_id.hyphenize()
        if decision.kind is not None or service != "ecs" or model.name != "RunTask":
            return
        if http_response.status_code >= 300 or not (parsed.get("tasks") or []):
            return  # nothing started: an "after the task started" fault has nothing to follow
        for kind in _RUN_TASK_AFTER_KINDS:
            if self._plan.fire(kind, ids=decision.ids, now=self._clock()) is None:
                continue
            if kind is FaultKind.CRASH_AFTER_RUN_TASK:
                raise SimulatedCrash("injected: the function died after RunTask returned")
            if kind is FaultKind.RUN_TASK_TIMEOUT_AFTER_START:
                raise ReadTimeoutError(endpoint_url="https://ecs.amazonaws.com/")
            raise self._client_error(_SERVER_ERROR_AFTER_START, model.name)

    # ---- helpers
    def _compete(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if self._client is None:
            return None  # installed on a session: no client to make the competing call with
        self._local.competing = True
        try:
            result: dict[str, Any] = getattr(self._client, method)(**params)
            return result
        except ClientError:
            return None
        finally:
            self._local.competing = False

    def _client_error(self, answer: _ErrorAnswer, operation: str) -> ClientError:
        response: Any = {
            "Error": {"Code": answer.code, "Message": answer.message},
            "ResponseMetadata": {"HTTPStatusCode": answer.status},
        }
        if self._client is not None:
            error_class = self._client.exceptions.from_code(answer.code)
            return error_class(response, operation)
        return ClientError(response, operation)


def install_botocore_faults(
    target: Any, plan: FaultPlan, *, clock: Callable[[], float] = time.time
) -> FaultInstallation:
    """Install the plan's AWS faults on a boto3 client (`client.meta.events`) or a boto3/botocore session
    (clients created from it afterwards inherit the handlers; competing calls need a client)."""
    client = target if hasattr(target, "meta") and hasattr(target.meta, "events") else None
    if client is not None:
        emitter = client.meta.events
    elif hasattr(target, "events"):  # boto3.Session
        emitter = target.events
    else:  # botocore.session.Session
        emitter = target.get_component("event_emitter")
    injector = _Injector(plan, clock, client)
    tag = f"mm-fault-injection-{id(injector)}"
    # Per service: botocore calls the handlers of the more specific event name first, so a handler on plain
    # `before-call` would run after a fake service's `before-call.ecs` answerer.
    services = (client.meta.service_model.service_id.hyphenize(),) if client is not None else _SERVICES
    handlers: list[tuple[str, Callable[..., Any], str]] = []
    for service in services:
        handlers += [
            (f"before-parameter-build.{service}", injector.before_parameter_build, f"{tag}-{service}-params"),
            (f"before-call.{service}", injector.before_call, f"{tag}-{service}-call"),
            (f"after-call.{service}", injector.after_call, f"{tag}-{service}-after"),
        ]
    for event, handler, unique_id in handlers:
        emitter.register_first(event, handler, unique_id=unique_id)
    return FaultInstallation(emitter, handlers)


# ---- targeting ids from request parameters


def _before_kinds(service: str, operation: str, params: dict[str, Any]) -> tuple[FaultKind, ...]:
    if service == "ecs" and operation == "RunTask":
        return _RUN_TASK_KINDS
    if service == "dynamodb":
        race = (
            (FaultKind.DYNAMODB_CONDITION_RACE,)
            if operation in _DYNAMODB_WRITES and params.get("ConditionExpression")
            else ()
        )
        return (FaultKind.DYNAMODB_THROTTLING, FaultKind.DYNAMODB_OUTAGE, *race)
    if service == "ssm":
        return (FaultKind.SSM_THROTTLING, FaultKind.SSM_OUTAGE)
    if service == "sns" and operation in {"Publish", "PublishBatch"}:
        return (FaultKind.SNS_OUTAGE,)
    return ()


def _ids_of(service: str, operation: str, params: dict[str, Any]) -> Iterator[str]:
    """The ids a call is about (submission, run, task, parameter name, challenge), for a rule's `ids` to match."""
    if service == "ecs":
        yield from _run_task_ids(params)
        for arn in params.get("tasks") or []:
            yield str(arn)
    elif service == "dynamodb":
        yield from _status_item_ids(params)
    elif service == "ssm":
        yield from _parameter_ids(params)
    elif service == "sns":
        for entry in params.get("PublishBatchRequestEntries") or [params]:
            yield from _sns_entry_ids(entry)


def _status_item_ids(params: dict[str, Any]) -> Iterator[str]:
    # The status key is the run id `<submissionId>#<PHASE>` (decision 084): a rule may name the run or the
    # submission (every run of it); an item also carries `submissionId` itself.
    for container in ("Key", "Item"):
        for attribute in (STATUS_TABLE_PARTITION_KEY, "submissionId"):
            value = (params.get(container) or {}).get(attribute) or {}
            if isinstance(value, dict) and value.get("S"):
                yield str(value["S"])
                yield str(value["S"]).partition(RUN_ID_SEPARATOR)[0]


def _parameter_ids(params: dict[str, Any]) -> Iterator[str]:
    """A parameter's name and each of its path segments (a rule may name the challenge in the path)."""
    for name in [params.get("Name"), *(params.get("Names") or [])]:
        if name:
            yield str(name)
            yield from (part for part in str(name).split("/") if part)


def _run_task_ids(params: dict[str, Any]) -> Iterator[str]:
    token = str(params.get("clientToken") or "")
    if token:
        yield token
        run = token.rpartition("-")[0] or token  # `{submissionId}-{PHASE}-{attempt}` (or `{submissionId}-{attempt}`)
        yield run
        submission, _, phase = run.rpartition("-")
        if submission and phase in {p.value for p in ScoringPhase}:
            yield submission
            yield f"{submission}{RUN_ID_SEPARATOR}{phase}"
    started_by = str(params.get("startedBy") or "")
    if started_by:
        yield started_by.rpartition("/")[2]
    for override in (params.get("overrides") or {}).get("containerOverrides") or []:
        for variable in override.get("environment") or []:
            if variable.get("name") in {TaskEnv.SUBMISSION_ID, TaskEnv.CHALLENGE_ID}:
                yield str(variable.get("value") or "")


def _sns_entry_ids(entry: dict[str, Any]) -> Iterator[str]:
    attribute = (entry.get("MessageAttributes") or {}).get(CHALLENGE_ID_ATTRIBUTE) or {}
    if attribute.get("StringValue"):
        yield str(attribute["StringValue"])
    try:
        body = json.loads(str(entry.get("Message") or ""))
    except ValueError:
        return
    if isinstance(body, dict):
        for key in ("submissionId", "challengeId"):
            if body.get(key):
                yield str(body[key])


# ---- answers


def _answer(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {**parsed, "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}}
    return AWSResponse(url="https://injected.invalid/", status_code=status, headers=HTTPHeaders(), raw=None), parsed


def _error_answer(answer: _ErrorAnswer) -> tuple[AWSResponse, dict[str, Any]]:
    return _answer(answer.status, {"Error": {"Code": answer.code, "Message": answer.message}})


def _kept_entries(decision: _Decision) -> list[Any]:
    failed = {f.get("Id") for f in decision.failed_entries}
    return [e for e in decision.params.get("PublishBatchRequestEntries") or [] if e.get("Id") not in failed]


def _conflicting(params: dict[str, Any]) -> dict[str, Any]:
    earlier = copy.deepcopy(params)
    overrides = earlier.setdefault("overrides", {}).setdefault("containerOverrides", [])
    if not overrides:
        overrides.append({"name": "scorer", "environment": []})
    overrides[0].setdefault("environment", []).append({"name": CONFLICT_MARKER_ENV, "value": "true"})
    return earlier


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


__all__ = ["CONFLICT_MARKER_ENV", "FaultInstallation", "SimulatedCrash", "install_botocore_faults"]
