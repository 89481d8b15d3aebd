"""`mm-processor caps show [CHALLENGE_ID]` / `mm-processor caps set (--environment | CHALLENGE_ID) ...`: the caps.

Two SSM documents hold the caps the functions apply (decisions 093, 094): the environment's `<ssmPrefix>/capacity`
(`EnvironmentCapacity`: maxRunningTasks, maxRunningVcpu, runTaskPerSecond) and each challenge's config
(`<ssmPrefix>/challenges/<id>/config`, its `capacity` block: maxRunningTasks, maxRunningTasksPerPhase). `show`
prints them with the live counts of the capacity table (and the challenge's paused flag). `set` reads the document,
changes only the named fields (every other field, known or not, stays as written), validates the result with the
same pydantic model the functions load it with (an invalid document is never written), shows before -> after, asks,
writes it back (Overwrite, the same type and key), stamps the version written on the capacity pool items
(`capsVersion` on every pool item for the environment's caps, `configVersion` on the challenge's pool item: decision
121), and leaves an audit item in the challenge's change log (challenge id `ENV` for the environment's caps). The
functions compare their cache with those stamps, so they apply the change at their next run that reads its pool item
(at the latest when their cache ages out: 60 s for the environment's caps, 300 s for a challenge config); a stamp
that cannot be written is said, and the sweeper stamps it within one sweep. The parameters belong to the stacks: the
next deploy that changes the parameter's value in the template writes the environment config's value over this one,
and a deploy that does not leaves it drifted (CloudFormation compares templates, not the live value), so a lasting
change belongs in `infrastructure/config/<env>.json` too (decision 107). A challenge id is canonicalised and `set`
refuses one the environment's config does not list; the audit item follows the write (it names the version written),
and one that cannot be written is said (exit 1), the change standing. Exit status: 0, 1 the document is missing or
would be invalid, an unknown challenge, or the change was made but not audited, 2 could not run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from mm_contracts.dynamodb_item_size import PARTITION_WRITE_UNITS_PER_SECOND
from mm_contracts.models.capacity import EnvironmentCapacity, largest_cap_at_pace
from mm_contracts.models.challenge import ChallengeConfig
from mm_contracts.models.phase import ScoringPhase
from mm_contracts.names import challenge_config_parameter_name
from operator_tools.context import (
    EXIT_FAILED,
    EXIT_OK,
    ChangeGate,
    OperatorContext,
    OperatorError,
    add_change_options,
    add_environment_options,
    challenge_id_argument,
    finite_number,
)

if TYPE_CHECKING:
    from mm_contracts.models.audit import OperatorChange

ENV_AUDIT_ID = "ENV"  # the audit log a change of the environment's caps goes to
ENV_CACHE_SECONDS = 60  # `capacity_cache_seconds` of the functions (mm_contracts.settings)
CONFIG_CACHE_SECONDS = 300  # `config_cache_seconds`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="caps_command", required=True)
    show = verbs.add_parser("show", help="the environment's caps, and a challenge's, with the live counts")
    show.add_argument(
        "challenge_id", nargs="?", type=challenge_id_argument, help="also this challenge's caps, counts and paused flag"
    )
    add_environment_options(show)
    change = verbs.add_parser("set", help="change the environment's or a challenge's caps (until the next deploy)")
    target = change.add_mutually_exclusive_group(required=True)
    target.add_argument("--environment", action="store_true", help="the environment's caps (<ssmPrefix>/capacity)")
    target.add_argument(
        "challenge_id",
        nargs="?",
        type=challenge_id_argument,
        help="this challenge's caps (its config's `capacity` block)",
    )
    change.add_argument("--max-running", type=int, metavar="N", help="maxRunningTasks")
    change.add_argument(
        "--phase-cap",
        action="append",
        metavar="PHASE=N",
        help="a challenge's maxRunningTasksPerPhase entry (repeatable; N = -1 removes the phase's cap)",
    )
    change.add_argument("--max-vcpu", type=finite_number, metavar="N", help="the environment's maxRunningVcpu")
    change.add_argument("--run-task-per-second", type=int, metavar="N", help="the environment's runTaskPerSecond")
    add_change_options(change)
    add_environment_options(change)


# ---------------------------------------------------------------------- the SSM document
@dataclass(frozen=True)
class Parameter:
    name: str
    document: dict[str, Any]
    type: str
    key_id: str | None
    version: int
    tier: str | None = None  # Standard / Advanced / Intelligent-Tiering, as described
    data_type: str | None = None  # text (a document), as described


def read_parameter(context: OperatorContext, name: str) -> Parameter:
    """The parameter's value and what a rewrite must keep (type, tier, data type, KMS key), from GetParameter and
    DescribeParameters (only the latter names the tier and the key)."""
    ssm = context.client("ssm")
    try:
        found = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise OperatorError(
                f"no parameter {name}: is the environment (or challenge) deployed?", EXIT_FAILED
            ) from None
        raise
    try:
        document = json.loads(found["Value"])
    except json.JSONDecodeError as error:
        raise OperatorError(f"{name} is not JSON ({error.msg}); fix it by a deploy", EXIT_FAILED) from None
    if not isinstance(document, dict):
        raise OperatorError(f"{name} is not a JSON object; fix it by a deploy", EXIT_FAILED)
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    about: dict[str, Any] = described[0] if described else {}
    return Parameter(
        name,
        document,
        str(found.get("Type", "String")),
        about.get("KeyId") if found.get("Type") == "SecureString" else None,
        int(found.get("Version", 0)),
        tier=about.get("Tier"),
        data_type=about.get("DataType") or found.get("DataType"),
    )


def write_parameter(context: OperatorContext, parameter: Parameter, document: dict[str, Any]) -> int:
    """PutParameter (Overwrite) with the type, tier, data type and key it had: a rewrite never moves an Advanced
    parameter to Standard (which PutParameter refuses) nor changes how it is encrypted. `allow_nan=False`: a value
    JSON cannot hold (Infinity, NaN) is refused here rather than written for every function to fail on."""
    request: dict[str, Any] = {
        "Name": parameter.name,
        "Value": json.dumps(document, separators=(",", ":"), allow_nan=False),
        "Type": parameter.type,
        "Overwrite": True,
    }
    if parameter.key_id:
        request["KeyId"] = parameter.key_id
    if parameter.tier:
        request["Tier"] = parameter.tier
    if parameter.data_type:
        request["DataType"] = parameter.data_type
    return int(context.client("ssm").put_parameter(**request).get("Version", 0))


def _field(document: dict[str, Any], camel: str, snake: str) -> str:
    """The name a document uses for a field (the models accept both; writers use camelCase)."""
    return snake if snake in document and camel not in document else camel


# ---------------------------------------------------------------------- the changes
def phase_caps(values: list[str] | None) -> dict[str, int]:
    """`PHASE=N` arguments as {PHASE: N}; OperatorError for a malformed one."""
    caps: dict[str, int] = {}
    for value in values or []:
        phase, _, number = value.partition("=")
        try:
            caps[ScoringPhase(phase.strip().upper()).value] = int(number)
        except ValueError:
            phases = ", ".join(phase.value for phase in ScoringPhase)
            raise OperatorError(f"--phase-cap {value!r}: expected PHASE=N with PHASE one of {phases}") from None
    return caps


def environment_changes(args: argparse.Namespace) -> dict[tuple[str, str], Any]:
    if args.phase_cap:
        raise OperatorError("--phase-cap is a challenge's cap: name the challenge instead of --environment")
    changes: dict[tuple[str, str], Any] = {}
    if args.max_running is not None:
        changes[("maxRunningTasks", "max_running_tasks")] = args.max_running
    if args.max_vcpu is not None:
        changes[("maxRunningVcpu", "max_running_vcpu")] = args.max_vcpu
    if args.run_task_per_second is not None:
        changes[("runTaskPerSecond", "run_task_per_second")] = args.run_task_per_second
    return changes


def changed_environment(document: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    changes = environment_changes(args)
    if not changes:
        raise OperatorError("nothing to change: give --max-running, --max-vcpu or --run-task-per-second")
    after = dict(document)
    for (camel, snake), value in changes.items():
        after[_field(document, camel, snake)] = value
    return after


def changed_challenge(document: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.max_vcpu is not None or args.run_task_per_second is not None:
        raise OperatorError("--max-vcpu and --run-task-per-second are the environment's: use --environment")
    phases = phase_caps(args.phase_cap)
    if args.max_running is None and not phases:
        raise OperatorError("nothing to change: give --max-running or --phase-cap PHASE=N")
    after = dict(document)
    block_name = "capacity"
    block = dict(after.get(block_name) or {})
    if args.max_running is not None:
        block[_field(block, "maxRunningTasks", "max_running_tasks")] = args.max_running
    if phases:
        per_phase_name = _field(block, "maxRunningTasksPerPhase", "max_running_tasks_per_phase")
        per_phase = dict(block.get(per_phase_name) or {})
        for phase, cap in phases.items():
            if cap == -1:
                per_phase.pop(phase, None)
            else:
                per_phase[phase] = cap
        block[per_phase_name] = per_phase
    after[block_name] = block
    return after


def validate(model: type[EnvironmentCapacity] | type[ChallengeConfig], name: str, document: dict[str, Any]) -> None:
    """The document as the functions would load it; OperatorError (exit 1, nothing written) if they could not, or
    if they could but its environment caps outrun the pool item at their pace."""
    try:
        loaded = model.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'document'}: {err['msg']}" for err in error.errors()
        )
        raise OperatorError(f"not written: {name} would be invalid: {problems}", EXIT_FAILED) from None
    # Caps the functions would apply but DynamoDB could not serve at their pace (decision 125): a deploy refuses
    # them too, so the tool never writes what the next deploy could not.
    refusal = loaded.pool_write_refusal() if isinstance(loaded, EnvironmentCapacity) else None
    if refusal is not None:
        raise OperatorError(f"not written: {name}: {refusal}", EXIT_FAILED)


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """`field: before -> after` for every leaf that differs."""
    if isinstance(before, dict) and isinstance(after, dict):
        lines: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            lines += differences(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        return lines
    return [] if before == after else [f"{path}: {_shown(before)} -> {_shown(after)}"]


def _shown(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value)


# ---------------------------------------------------------------------- the commands
def run(args: argparse.Namespace) -> int:
    context = OperatorContext.from_args(args)
    if args.caps_command == "show":
        return show(context, args.challenge_id)
    return set_caps(context, args)


def set_caps(context: OperatorContext, args: argparse.Namespace) -> int:
    model: type[EnvironmentCapacity] | type[ChallengeConfig]
    if args.environment:
        name, model, audit_id = context.plan().capacity_parameter(), EnvironmentCapacity, ENV_AUDIT_ID
        parameter = read_parameter(context, name)
        after = changed_environment(parameter.document, args)
        cache = ENV_CACHE_SECONDS
    else:
        audit_id = args.challenge_id
        context.require_known_challenge(audit_id)
        name, model = challenge_config_parameter_name(audit_id, context.config.ssm_prefix), ChallengeConfig
        parameter = read_parameter(context, name)
        after = changed_challenge(parameter.document, args)
        cache = CONFIG_CACHE_SECONDS
    validate(model, name, after)
    diff = differences(parameter.document, after)
    if not diff:
        context.emit({"parameter": name, "changed": False}, lambda: context.say(f"{name}: already so; nothing changed"))
        return EXIT_OK
    change = ChangeGate.from_args(args, context).approve("set-caps", [f"{name} (version {parameter.version}):", *diff])
    if change is None:
        return EXIT_OK
    version = write_parameter(context, parameter, after)
    raced = version != parameter.version + 1
    stamped, stamp_error = stamp_version(context, None if args.environment else audit_id, version)
    detail = f"{name} v{parameter.version} -> v{version}: " + "; ".join(diff)
    audit_error = record_change(context, audit_id, change, detail)
    document = {
        "parameter": name,
        "changed": True,
        "before": parameter.document,
        "after": after,
        "version": version,
        "requestId": change.request_id,
        "concurrentWrite": raced,
        "stampedPoolItems": stamped,
        "stampError": stamp_error,
        "audited": audit_error is None,
    }
    applied = _applied_when(context, stamped, stamp_error, cache)
    context.emit(document, lambda: _say_set(context, name, version, applied, raced, change.request_id))
    if audit_error is not None:
        raise OperatorError(
            f"changed ({name} is now version {version}), audit entry not recorded: {audit_error}; "
            f"record it by hand: {change.history_detail()}: {detail}",
            EXIT_FAILED,
        )
    return EXIT_OK


def stamp_version(context: OperatorContext, challenge_id: str | None, version: int) -> tuple[int, str | None]:
    """The version just written, on the pool items whose readers compare their cache with it (decision 121):
    `capsVersion` on the ENV and every challenge pool item (challenge_id None), else `configVersion` on the
    challenge's. Only forward (a concurrent newer write is never lowered), only on existing items. Returns how many
    were stamped and, when the stamp failed, why (the change stands: the sweeper stamps it within one sweep)."""
    from mm_capacity.config import CAPS_VERSION_ATTRIBUTE, CONFIG_VERSION_ATTRIBUTE, VersionStamps
    from mm_capacity.keys import challenge_pool_key

    stamps = VersionStamps(context.names.capacity_table, lambda: context.client("dynamodb"))
    try:
        if challenge_id is None:
            return stamps.stamp_forward(list(stamps.pool_versions()), CAPS_VERSION_ATTRIBUTE, version), None
        return stamps.stamp_forward([challenge_pool_key(challenge_id)], CONFIG_VERSION_ATTRIBUTE, version), None
    except Exception as error:  # throttling, credentials expired between the two calls
        return 0, f"{type(error).__name__}: {error}"


def _applied_when(context: OperatorContext, stamped: int, stamp_error: str | None, cache: int) -> str:
    if stamp_error is not None:
        minutes = context.config.sweeper_interval_minutes
        return (
            f"its version could not be stamped on the capacity pool items ({stamp_error}): the functions apply it "
            f"once the sweeper stamps it, within {minutes} min"
        )
    if stamped:
        return (
            f"the functions apply it at their next run (its version is stamped on {stamped} capacity pool "
            f"item(s)), at the latest within {cache} s"
        )
    return f"the functions apply it within {cache} s (no pool item yet: their cache of it ages out)"


def record_change(context: OperatorContext, audit_id: str, change: OperatorChange, detail: str) -> str | None:
    """The audit item of a change already written (decision 107: after the write, so it names the version written);
    None once recorded, else why not. The change stands either way: the caller says so, exit 1, never "could not
    run"."""
    try:
        context.capacity_store().record_challenge_change(audit_id, change, detail)
    except Exception as error:  # throttling, a missing table, credentials expired between the two calls
        return f"{type(error).__name__}: {error}"
    return None


def _say_set(context: OperatorContext, name: str, version: int, applied: str, raced: bool, request_id: str) -> None:
    context.say(f"wrote {name} (version {version}) [request {request_id}]")
    if raced:
        context.say("note: another write landed between the read and this one; check with `mm-processor caps show`")
    context.say(applied)
    context.say(
        f"this is drift from infrastructure/config/{context.config.environment}.json: the next deploy that changes "
        "this parameter writes the config's value over it; make a lasting change in the config too"
    )


def show(context: OperatorContext, challenge_id: str | None) -> int:
    store = context.capacity_store()
    snapshot = store.pools()
    document: dict[str, Any] = {"environment": context.config.environment}
    env_name = context.plan().capacity_parameter()
    document["environmentCaps"] = _document_or_none(context, env_name)
    document["environmentLive"] = {"running": snapshot.env.used, "cap": snapshot.env.cap}
    document["environmentPoolItem"] = _pool_item_when_full(document["environmentCaps"])
    if challenge_id:
        context.warn_unknown_challenge(challenge_id)
        name = challenge_config_parameter_name(challenge_id, context.config.ssm_prefix)
        config = _document_or_none(context, name)
        pool = snapshot.challenge(challenge_id)
        controls = store.controls(challenge_id)
        document["challenge"] = {
            "challengeId": challenge_id,
            "caps": (config or {}).get("capacity") if config is not None else None,
            "running": pool.used,
            "waiting": pool.waiting,
            "cap": pool.cap,
            "phases": {
                phase.value: {"running": state.used, "cap": state.cap}
                for (owner, phase), state in snapshot.phases.items()
                if owner == challenge_id
            },
            "paused": controls.paused,
            "pausedBy": controls.paused_by,
            "pauseReason": controls.pause_reason,
        }
    context.emit(document, lambda: _print_show(context, document, env_name))
    return EXIT_OK


def _pool_item_when_full(caps: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the environment's pool item needs with every slot held at the caps' pace, beside what one DynamoDB item
    takes (decision 125); None when the document is missing or unreadable."""
    try:
        environment = EnvironmentCapacity.model_validate(caps) if caps is not None else None
    except ValidationError:
        return None
    if environment is None:
        return None
    return {
        "writeUnitsPerSecond": environment.pool_write_units_per_second(),
        "itemLimit": PARTITION_WRITE_UNITS_PER_SECOND,
        "largestCapAtPace": largest_cap_at_pace(environment.run_task_per_second),
    }


def _document_or_none(context: OperatorContext, name: str) -> dict[str, Any] | None:
    try:
        return read_parameter(context, name).document
    except OperatorError:
        return None


def _print_show(context: OperatorContext, document: dict[str, Any], env_name: str) -> None:
    caps = document["environmentCaps"]
    live = document["environmentLive"]
    context.say(f"environment {document['environment']} ({env_name}):")
    context.say(f"  caps: {json.dumps(caps) if caps is not None else 'the parameter is missing'}")
    context.say(f"  live: running {live['running']}, cap applied {_cap(live['cap'])}")
    pool = document["environmentPoolItem"]
    if pool is not None:
        context.say(
            f"  pool item when full: {pool['writeUnitsPerSecond']:,} DynamoDB write units a second of the "
            f"{pool['itemLimit']:,} one item takes; at this pace the cap can be at most {pool['largestCapAtPace']:,}"
        )
    challenge = document.get("challenge")
    if challenge is None:
        return
    context.say(f"challenge {challenge['challengeId']}:")
    caps = challenge["caps"]
    context.say(f"  caps: {json.dumps(caps) if caps is not None else 'no config (or no capacity block: defaults)'}")
    context.say(
        f"  live: running {challenge['running']}, waiting {challenge['waiting']}, cap applied {_cap(challenge['cap'])}"
    )
    for phase, state in sorted(challenge["phases"].items()):
        context.say(f"  phase {phase}: running {state['running']}, cap applied {_cap(state['cap'])}")
    if challenge["paused"]:
        context.say(f"  PAUSED by {challenge['pausedBy']}: {challenge['pauseReason']}")


def _cap(value: int | None) -> str:
    return "not yet" if value is None else str(value)
