"""`mm-processor stop RUN_ID --reason TEXT [--yes] [--dry-run]`: stop a launched run's task.

StopTask of the run's task (the cluster from its item) with the reason "Stopped by operator <actor>: <why>" (at most
255 characters, StopTask's limit). ECS then reports the task STOPPED with stopCode UserInitiated; the completion
handler maps a UserInitiated stop whose reason is not the sweeper's timeout marker to "stopped by an operator":
the run ends FAILED with testStatus CANCELLED and the reason "scorer run was stopped by an operator: <the reason>"
(`completion_lambda.outcome`), and that outcome is reported like any other. The audit entry (who, when, why, the
request id) goes into the run's history. Only a LAUNCHED run has a task to stop: any other state is refused,
named. After the confirmation the run is read again and must still be LAUNCHED on the same task (else nothing is
stopped). An audit entry that cannot be written after the stop is said as "changed ..., audit entry not recorded"
(exit 1): the stop stands.
Exit status: 0 stopped (or --dry-run), 1 no such run / not LAUNCHED / StopTask failed, 2 could not run.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from mm_contracts.models.lifecycle import LifecycleRecord, SubmissionState
from mm_contracts.names import TIMEOUT_STOP_REASON_PREFIX
from operator_tools.context import (
    EXIT_FAILED,
    EXIT_OK,
    ChangeGate,
    OperatorContext,
    OperatorError,
    add_change_options,
    add_environment_options,
)

if TYPE_CHECKING:
    from mm_adapters.status_store import StatusStore
    from mm_contracts.models.audit import OperatorChange

MAX_STOP_REASON = 255  # StopTask `reason`: "Up to 255 characters are allowed in this message." (ECS API reference)
ACTION = "stop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", help="the run: <submissionId>#<PHASE> (see `mm-processor status SUBMISSION_ID`)")
    add_change_options(parser)
    add_environment_options(parser)


def stop_reason(actor: str, why: str) -> str:
    """The StopTask reason: names the operator, never the sweeper's timeout marker (that would read TIMED_OUT)."""
    reason = f"Stopped by operator {actor}: {why}"[:MAX_STOP_REASON]
    assert not reason.startswith(TIMEOUT_STOP_REASON_PREFIX)
    return reason


def stoppable(record: LifecycleRecord | None, run_id: str) -> LifecycleRecord:
    """The run, if it has a task to stop; OperatorError (exit 1) saying why not."""
    if record is None:
        raise OperatorError(f"no run {run_id} (see `mm-processor status <submission id>`)", EXIT_FAILED)
    if record.state is not SubmissionState.LAUNCHED:
        hint = " (a waiting run has no task: nothing to stop)" if record.state is SubmissionState.WAITING else ""
        raise OperatorError(f"run {run_id} is {record.state.value}, not LAUNCHED: nothing stopped{hint}", EXIT_FAILED)
    if not record.task_arn or not record.cluster_arn:
        raise OperatorError(f"run {run_id} is LAUNCHED but its item names no task or cluster", EXIT_FAILED)
    return record


def run(args: argparse.Namespace) -> int:
    context = OperatorContext.from_args(args)
    store = context.status_store()
    record = stoppable(store.get(args.run_id), args.run_id)
    gate = ChangeGate.from_args(args, context)
    reason = stop_reason(context.actor(), (args.reason or "").strip() or "<the --reason>")
    change = gate.approve(
        ACTION,
        [
            f"run {record.run_id} ({record.phase.value}, member {record.member_id}): LAUNCHED",
            f"StopTask {record.task_arn} (cluster {record.cluster_arn})",
            f"reason: {reason}",
            "then: the run ends FAILED (testStatus CANCELLED, 'stopped by an operator') and that outcome is reported",
        ],
    )
    if change is None:
        return EXIT_OK
    record = still_stoppable(store.get(args.run_id), record)
    try:
        context.client("ecs").stop_task(cluster=record.cluster_arn, task=record.task_arn, reason=reason)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise OperatorError(
            f"StopTask of {record.task_arn} failed ({code}): {error}; nothing changed", EXIT_FAILED
        ) from None
    recorded, audit_error = _audit(store, record.run_id, change)
    document = {
        "environment": context.config.environment,
        "runId": record.run_id,
        "taskArn": record.task_arn,
        "stopped": True,
        "audited": recorded,
        "requestId": change.request_id,
        "reason": reason,
    }
    context.emit(document, lambda: _say(context, record, recorded, change.request_id))
    if audit_error is not None:
        raise OperatorError(
            f"changed (the task of {record.run_id} is stopping), audit entry not recorded: {audit_error}",
            EXIT_FAILED,
        )
    return EXIT_OK if recorded else EXIT_FAILED


def still_stoppable(again: LifecycleRecord | None, shown: LifecycleRecord) -> LifecycleRecord:
    """The run read again after the operator confirmed: still LAUNCHED on the task the plan named, else
    OperatorError (exit 1, nothing stopped): it finished, or a rerun launched another task, while they read it."""
    if again is None or again.state is not SubmissionState.LAUNCHED or again.task_arn != shown.task_arn:
        now = "gone" if again is None else f"{again.state.value} on {again.task_arn or 'no task'}"
        raise OperatorError(
            f"run {shown.run_id} changed while the stop was confirmed (it was LAUNCHED on {shown.task_arn}, now "
            f"{now}): nothing stopped; look again with `mm-processor status {shown.run_id}`",
            EXIT_FAILED,
        )
    return again


def _audit(store: StatusStore, run_id: str, change: OperatorChange) -> tuple[bool, str | None]:
    """(recorded, why not) of the run's audit entry, after the stop: the stop stands whatever this says. The append
    is conditioned on the run's item existing only (`append_operator_entry` takes no condition on the task)."""
    try:
        return store.append_operator_entry(run_id, change), None
    except Exception as error:  # throttling, credentials expired between the two calls
        return False, f"{type(error).__name__}: {error}"


def _say(context: OperatorContext, record: LifecycleRecord, recorded: bool, request_id: str) -> None:
    context.say(f"stopped the task of {record.run_id} [request {request_id}]")
    if not recorded:
        context.say("but its audit entry was not recorded (see below, or: the run's item is gone)")
    context.say(f"follow it: mm-processor status {record.run_id} --env {context.config.environment}")
