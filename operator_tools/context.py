"""What every operator command shares (decision 107): the environment options, the AWS session, the stores, the
confirmation of a change and its audit entry, and the exit statuses.

    add_environment_options(parser)   --env (default $MM_ENV), --profile, --region, --endpoint-url, --json
    add_change_options(parser)        --yes/-y, --dry-run, --reason TEXT (required for a real change)
    OperatorContext.from_args(args)   the environment's config and names, one AWS session, the console
    ChangeGate.from_args(args, ctx)   shows the plan, asks (or --yes / --dry-run), hands out the OperatorChange

Resource names come only from the environment config and its wiring plan (the one source the stacks use), never
from the command line. Credentials come from the standard AWS chain (`--profile` names a profile of it); the
clients are built on first use, so `--help` and argument errors never touch AWS. Nothing here imports rich, the
local pipeline or a development-only package: a runtime-only install runs every command.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import socket
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TextIO

from operator_tools.clients import AwsClients, ClientSource
from operator_tools.console import Output, make_console

if TYPE_CHECKING:
    from infrastructure.config import EnvironmentConfig
    from infrastructure.wiring import ResourceNames, WiringPlan
    from mm_adapters.challenge_config import ChallengeConfigLoader
    from mm_adapters.status_store import StatusStore
    from mm_capacity.store import CapacityStore
    from mm_contracts.models.audit import OperatorChange

EXIT_OK = 0
EXIT_FAILED = 1  # not found, refused, a change partly failed
EXIT_USAGE = 2  # could not run: unknown environment, credentials, a missing --reason, no tty to confirm on

MAX_REASON = 300
# The operator tool reads a challenge's config afresh every time (a command runs once; no cache to age).
_CONFIG_MAX_AGE_SECONDS = 0


class OperatorError(Exception):
    """The command cannot go on; `str(error)` is the sentence to print, `exit_code` the status to exit with."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_environment_options(parser: argparse.ArgumentParser) -> None:
    """--env, --profile, --region, --endpoint-url, --json: where the command reads and writes, and how it prints."""
    parser.add_argument(
        "--env", help="environment config name (default: $MM_ENV, else the default environment); names every resource"
    )
    parser.add_argument("--profile", help="AWS profile (default: the standard credential chain)")
    parser.add_argument("--region", help="AWS region of the clients (default: the environment's)")
    parser.add_argument("--endpoint-url", help="one endpoint for every AWS service (the local pipeline, an emulator)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout, for scripts")


def add_change_options(parser: argparse.ArgumentParser) -> None:
    """--yes, --dry-run, --reason: every command that changes something asks first and records why."""
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    parser.add_argument(
        "--reason", help=f"why (1..{MAX_REASON} characters; kept in the audit entry); required for a real change"
    )


def challenge_id_argument(value: str) -> str:
    """An argparse `type`: a challenge id in its canonical form (lower-case, hyphenated), as the pools, queues and
    configs are keyed; anything `uuid.UUID` cannot parse is a usage error (exit 2) with a sentence."""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a challenge id (a UUID)") from None


def finite_number(value: str) -> float:
    """An argparse `type`: a finite number (`inf` and `nan` parse as floats but are no cap; JSON cannot hold them)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return number


def environment_name(args: argparse.Namespace) -> str:
    from infrastructure.config import DEFAULT_ENVIRONMENT

    return getattr(args, "env", None) or os.environ.get("MM_ENV") or DEFAULT_ENVIRONMENT


@dataclass
class OperatorContext:
    """One command invocation's environment: its config and names, one AWS session, the console, --json."""

    config: EnvironmentConfig
    names: ResourceNames
    console: Output
    json: bool = False
    clients: ClientSource = field(default_factory=AwsClients)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, console: Output | None = None, clients: ClientSource | None = None
    ) -> OperatorContext:
        """The context of `args` (see `add_environment_options`); OperatorError (exit 2) for an unknown or
        invalid environment."""
        from infrastructure.config import EnvironmentConfigError, load_environment
        from infrastructure.wiring import ResourceNames

        try:
            config = load_environment(environment_name(args))
        except EnvironmentConfigError as error:
            raise OperatorError(str(error)) from None
        region = getattr(args, "region", None) or config.region
        source = clients or AwsClients(
            profile=getattr(args, "profile", None), region=region, endpoint_url=getattr(args, "endpoint_url", None)
        )
        return cls(
            config=config,
            names=ResourceNames(config.environment),
            console=console or make_console(),
            json=bool(getattr(args, "json", False)),
            clients=source,
        )

    def client(self, service: str) -> Any:
        return self.clients.client(service)

    @cached_property
    def _plan(self) -> WiringPlan:
        from infrastructure.wiring import WiringPlan

        return WiringPlan(self.config)

    def plan(self) -> WiringPlan:
        """The environment's wiring plan: queue names, filter policies, parameter names, function names."""
        return self._plan

    @cached_property
    def _status_store(self) -> StatusStore:
        from mm_adapters.status_store import StatusStore

        return StatusStore(self.names.status_table, dynamodb_client=self.client("dynamodb"))

    def status_store(self) -> StatusStore:
        return self._status_store

    @cached_property
    def _capacity_store(self) -> CapacityStore:
        from mm_capacity.store import CapacityStore

        return CapacityStore(
            self.names.capacity_table, self.names.status_table, dynamodb_client=self.client("dynamodb")
        )

    def capacity_store(self) -> CapacityStore:
        return self._capacity_store

    @cached_property
    def _config_loader(self) -> ChallengeConfigLoader:
        from mm_adapters.challenge_config import ChallengeConfigLoader
        from mm_contracts.names import challenge_config_parameter_name

        prefix = self.config.ssm_prefix
        return ChallengeConfigLoader(
            lambda challenge_id: challenge_config_parameter_name(challenge_id, prefix),
            _CONFIG_MAX_AGE_SECONDS,
            self.client("ssm"),
        )

    def config_loader(self) -> ChallengeConfigLoader:
        """Each challenge's deployed config (`<ssmPrefix>/challenges/<id>/config`), as the functions read it."""
        return self._config_loader

    @cached_property
    def _actor(self) -> str:
        try:
            arn = self.client("sts").get_caller_identity().get("Arn")
        except Exception:  # no credentials, an emulator without STS: the local identity still says who
            arn = None
        return str(arn) if arn else local_actor()

    def actor(self) -> str:
        """Who runs the command: the caller's STS Arn, else "<user>@<host>"."""
        return self._actor

    def is_known_challenge(self, challenge_id: str) -> bool:
        return any(challenge.challenge_id == challenge_id for challenge in self.config.challenges)

    def require_known_challenge(self, challenge_id: str) -> None:
        """A change names a challenge of the environment's config; OperatorError (exit 1) otherwise: a typo would
        change a pool, a queue or a config no function reads."""
        if not self.is_known_challenge(challenge_id):
            raise OperatorError(
                f"{challenge_id} is not a challenge of {self.config.environment}'s config "
                f"(infrastructure/config/{self.config.environment}.json): nothing changed",
                EXIT_FAILED,
            )

    def warn_unknown_challenge(self, challenge_id: str) -> None:
        """A read of a challenge the config does not list goes on, with one line on stderr saying so."""
        if not self.is_known_challenge(challenge_id):
            print(
                f"mm-processor: warning: {challenge_id} is not a challenge of {self.config.environment}'s config",
                file=sys.stderr,
            )

    def emit(self, document: dict[str, Any], human: Callable[[], None]) -> None:
        """--json: print `document`; else call `human()` (which prints for a person)."""
        if self.json:
            self.console.print_json(json.dumps(document, default=_json_value))
        else:
            human()

    def say(self, text: str) -> None:
        """One line for a person, verbatim (ids and names never read as markup); nothing under --json."""
        if not self.json:
            self.console.print(text, markup=False, highlight=False)


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def local_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class ChangeGate:
    """Shows what a change will do, then: --dry-run changes nothing; --yes goes on; otherwise asks on a terminal
    and refuses (exit 2) without one. Hands out the `OperatorChange` the command records."""

    context: OperatorContext
    yes: bool = False
    dry_run: bool = False
    reason: str | None = None
    stdin: TextIO | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def from_args(cls, args: argparse.Namespace, context: OperatorContext, stdin: TextIO | None = None) -> ChangeGate:
        return cls(
            context=context,
            yes=bool(getattr(args, "yes", False)),
            dry_run=bool(getattr(args, "dry_run", False)),
            reason=getattr(args, "reason", None),
            stdin=stdin,
        )

    def _checked_reason(self) -> str:
        reason = (self.reason or "").strip()
        if not reason:
            raise OperatorError("a change needs --reason TEXT (why; it is kept in the audit entry)")
        if len(reason) > MAX_REASON:
            raise OperatorError(f"--reason is {len(reason)} characters; at most {MAX_REASON}")
        return reason

    def approve(self, action: str, plan_lines: list[str]) -> OperatorChange | None:
        """The change to record, once approved; None for --dry-run (nothing may change). OperatorError: no
        --reason (exit 2), declined (exit 1), no terminal to ask on without --yes (exit 2)."""
        from mm_contracts.models.audit import OperatorChange

        reason = None if self.dry_run and not self.reason else self._checked_reason()
        if self.dry_run:
            self._show_dry_run(action, plan_lines)
            return None
        self._show(action, plan_lines)
        if not self.yes:
            if self.context.json:  # stdout holds the one result document: the plan to confirm goes to stderr
                self._show(action, plan_lines, stream=sys.stderr)
            self._confirm()
        assert reason is not None
        return OperatorChange(
            actor=self.context.actor(),
            at=self.clock(),
            action=action,
            reason=reason,
            request_id=self.context.request_id,
        )

    def _show(self, action: str, plan_lines: list[str], stream: TextIO | None = None) -> None:
        """The plan for a person (nothing under --json unless `stream` is given: then there, verbatim)."""
        lines = [f"{action} in {self.context.config.environment}:", *(f"  {line}" for line in plan_lines)]
        if stream is not None:
            stream.write("".join(f"{line}\n" for line in lines))
            stream.flush()
            return
        for line in lines:
            self.context.say(line)

    def _show_dry_run(self, action: str, plan_lines: list[str]) -> None:
        document = {
            "dryRun": True,
            "environment": self.context.config.environment,
            "action": action,
            "plan": plan_lines,
        }

        def human() -> None:
            self._show(action, plan_lines)
            self.context.say("dry run: nothing changed")

        self.context.emit(document, human)

    def _confirm(self) -> None:
        stdin = self.stdin or sys.stdin
        if not stdin.isatty():
            raise OperatorError("not confirmed: stdin is not a terminal; pass --yes to go ahead (or --dry-run)")
        sys.stderr.write("proceed? [y/N] ")
        sys.stderr.flush()
        answer = stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            raise OperatorError("not confirmed: nothing changed", EXIT_FAILED)


def run_guarded(body: Callable[[], int]) -> int:
    """`body()`, with an OperatorError printed as one line on stderr and turned into its exit status, and an AWS
    session or call that could not run (no credentials, unknown profile, a missing table) said as exit 2."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return body()
    except OperatorError as error:
        print(f"mm-processor: error: {error}", file=sys.stderr)
        return error.exit_code
    except (BotoCoreError, ClientError) as error:
        print(f"mm-processor: error: AWS: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_USAGE
