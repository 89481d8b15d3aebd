"""Faults the stand-in plays on its API side: the ones a test queues (`respond_with`) and the Topcoder kinds of a
`fault_injection.FaultPlan` (decision 079), each turned into a one-off `Fault` for the request it hits."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from topcoder_standin.records import Reply
from topcoder_standin.spec import API_PREFIX, V6_API_PREFIX

# Fault-plan defaults on the API side (the callers' read timeout is 10 s): a slow commit lands, and a timed-out
# request is answered, after the caller gave up.
DEFAULT_SLOW_COMMIT_SECONDS = 12.0
DEFAULT_TIMEOUT_DELAY = 12.0
WRITES = frozenset({"POST", "PUT", "PATCH"})
INVALID_TOKEN = {"message": "Invalid Token."}


@dataclass
class Fault:
    method: str
    path: str
    status: int | None  # None: answer normally (after `delay`)
    body: Any
    headers: dict[str, str]
    delay: float
    after_store: bool  # process (store) first, then answer `status`: a commit-then-fail server
    remaining: int
    submission_id: str | None = None  # only requests about this submission (body, query or path); None: any
    rotate_token: bool = False  # revoke the presented token and issue a new one first (topcoder-401-rotated)

    def before_store(self) -> Reply | None:
        """The answer that replaces the request's processing, if this fault fails it before storing anything."""
        return self._reply() if not self.after_store else None

    def after_storing(self) -> Reply | None:
        """The answer that replaces a processed request's answer (a commit-then-fail server)."""
        return self._reply() if self.after_store else None

    def _reply(self) -> Reply | None:
        return Reply(self.status, self.body, self.headers) if self.status is not None else None


def submission_of(path: str, query: Mapping[str, list[str]], body: Any) -> str | None:
    """The submission a request is about: `submissionId` in the JSON body or the query, or the path's id."""
    if isinstance(body, dict) and body.get("submissionId") is not None:
        return str(body["submissionId"])
    if query.get("submissionId"):
        return query["submissionId"][0]
    prefix = f"{API_PREFIX}/submissions/"
    if path.startswith(prefix):
        return path[len(prefix) :].split("/", 1)[0] or None
    return None


class FaultBook:
    """The queued faults and the fault plan; `for_request` picks the one (if any) a request meets."""

    def __init__(self, lock: threading.RLock, clock: Callable[[], float]) -> None:
        self._lock = lock
        self._clock = clock
        self._queued: list[Fault] = []
        self.plan: Any = None  # a fault_injection.FaultPlan whose HTTP kinds this API plays
        self.on_rotate: Callable[[str], None] | None = None
        self._slowest_delay = 0.0

    @property
    def slowest_delay(self) -> float:
        with self._lock:
            return self._slowest_delay

    def queue(self, fault: Fault) -> None:
        with self._lock:
            self._queued.append(fault)
            self._slowest_delay = max(self._slowest_delay, fault.delay)

    def use_plan(self, plan: Any, on_rotate: Callable[[str], None] | None) -> None:
        with self._lock:
            self.plan = plan
            self.on_rotate = on_rotate
            for rule in plan.rules:
                name = str(rule.kind.value)
                if name == "topcoder-slow-commit":
                    delay = rule.param("commit_delay_seconds", DEFAULT_SLOW_COMMIT_SECONDS)
                elif name == "topcoder-timeout":
                    delay = rule.param("delay_seconds", DEFAULT_TIMEOUT_DELAY)
                else:
                    continue
                self._slowest_delay = max(self._slowest_delay, delay)

    def for_request(self, method: str, path: str, query: Mapping[str, list[str]], body: Any) -> Fault | None:
        """The plan's fault for this request, else the first queued one it matches (which it then uses up)."""
        return plan_fault(self.plan, method, path, query, body, self._clock()) or self.take(
            method, path, submission_of(path, query, body)
        )

    def take(self, method: str, path: str, submission_id: str | None = None) -> Fault | None:
        with self._lock:
            for fault in self._queued:
                if fault.submission_id is not None and fault.submission_id != submission_id:
                    continue
                if fault.method == method and fault.path == path and fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._queued.remove(fault)
                    return fault
        return None


def _api_prefix(path: str) -> str | None:
    return next((p for p in (API_PREFIX, V6_API_PREFIX) if path.startswith(p + "/") or path == p), None)


def _ids_of(path: str, query: Mapping[str, list[str]], body: Any) -> list[str]:
    """Every id a rule's target may name: the path's segments, the query's and the body's `submissionId`."""
    ids = [segment for segment in path.split("/") if segment]
    ids += [*query.get("submissionId", [])]
    if isinstance(body, dict) and body.get("submissionId") is not None:
        ids.append(str(body["submissionId"]))
    return ids


def _plan_kinds(method: str) -> list[Any]:
    """The Topcoder kinds that apply to a request of `method`, in the order they are tried."""
    from fault_injection import FaultKind

    kinds = [
        FaultKind.TOPCODER_401_REVOKED,
        FaultKind.TOPCODER_401_ROTATED,
        FaultKind.TOPCODER_429,
        FaultKind.TOPCODER_5XX,
        FaultKind.TOPCODER_TIMEOUT,
    ]
    if method in WRITES:
        kinds += [FaultKind.TOPCODER_400, FaultKind.TOPCODER_404, FaultKind.TOPCODER_SLOW_COMMIT]
    return kinds


def plan_fault(
    plan: Any, method: str, path: str, query: Mapping[str, list[str]], body: Any, now: float
) -> Fault | None:
    """The plan's fault for this API request, as a one-off `Fault` (None: answer normally). Rules may narrow by
    the params `method` and `path` (a prefix of the route after `/v5` or `/v6`)."""
    prefix = _api_prefix(path)
    if plan is None or prefix is None:
        return None
    route = path[len(prefix) :]
    ids = _ids_of(path, query, body)

    def accept(rule: Any) -> bool:
        wanted_method = str(rule.params.get("method", "")).upper()
        wanted_path = str(rule.params.get("path", ""))
        return (not wanted_method or wanted_method == method) and (not wanted_path or route.startswith(wanted_path))

    for kind in _plan_kinds(method):
        rule = plan.fire(kind, ids=ids, now=now, accept=accept)
        if rule is not None:
            return _fault_of(kind, rule, method, path)
    return None


def _fault_of(kind: Any, rule: Any, method: str, path: str) -> Fault:
    """What one fired rule of `kind` does to the request."""
    from fault_injection import FaultKind

    message = {"message": f"injected {kind.value}"}
    if kind is FaultKind.TOPCODER_SLOW_COMMIT:
        delay = rule.param("commit_delay_seconds", DEFAULT_SLOW_COMMIT_SECONDS)
        return Fault(method, path, None, None, {}, delay, False, 1)
    if kind is FaultKind.TOPCODER_TIMEOUT:
        delay = rule.param("delay_seconds", DEFAULT_TIMEOUT_DELAY)
        return Fault(method, path, 504, message, {}, delay, False, 1)
    if kind is FaultKind.TOPCODER_429:
        retry_after = {"Retry-After": f"{rule.param('retry_after', 1.0):g}"}
        return Fault(method, path, 429, message, retry_after, 0.0, False, 1)
    if kind is FaultKind.TOPCODER_401_ROTATED:
        return Fault(method, path, 401, dict(INVALID_TOKEN), {}, 0.0, False, 1, rotate_token=True)
    if kind is FaultKind.TOPCODER_401_REVOKED:
        return Fault(method, path, 401, dict(INVALID_TOKEN), {}, 0.0, False, 1)
    status = {FaultKind.TOPCODER_5XX: 503, FaultKind.TOPCODER_400: 400, FaultKind.TOPCODER_404: 404}[kind]
    return Fault(method, path, status, message, {}, 0.0, False, 1)
