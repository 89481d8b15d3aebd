"""`operator_tools.context`: the options every command shares, the confirmation of a change, and its audit entry."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from operator_tools.console import PlainConsole
from operator_tools.context import (
    EXIT_FAILED,
    EXIT_USAGE,
    ChangeGate,
    OperatorContext,
    OperatorError,
    add_change_options,
    add_environment_options,
    local_actor,
)

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


class _Terminal(io.StringIO):
    """stdin of an operator at a terminal, who answers `answer`."""

    def isatty(self) -> bool:
        return True


class _Clients:
    """STS answering (or failing) GetCallerIdentity; any other service is not needed here."""

    def __init__(self, arn: str | None) -> None:
        self.arn = arn

    def client(self, service_name: str) -> Any:
        assert service_name == "sts"
        return self

    def get_caller_identity(self) -> dict[str, str]:
        if self.arn is None:
            raise RuntimeError("no credentials")
        return {"Arn": self.arn}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_environment_options(parser)
    add_change_options(parser)
    return parser.parse_args(list(argv))


def _context(arn: str | None = "arn:aws:sts::123456789012:assumed-role/ops/alice", *argv: str) -> OperatorContext:
    return OperatorContext.from_args(_args("--env", "example", *argv), PlainConsole(), _Clients(arn))


def _gate(context: OperatorContext, *argv: str, stdin: io.StringIO | None = None) -> ChangeGate:
    gate = ChangeGate.from_args(_args(*argv), context, stdin=stdin or io.StringIO())
    gate.clock = lambda: NOW
    return gate


def test_the_environment_names_every_resource_and_mm_env_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_ENV", "staging")
    context = OperatorContext.from_args(_args(), PlainConsole(), _Clients(None))
    assert context.config.environment == "staging"
    assert context.names.status_table == "mm-staging-runs"
    assert context.names.capacity_table == "mm-staging-capacity"
    assert context.plan().capacity_parameter().endswith("/capacity")


def test_an_unknown_environment_is_a_usage_error() -> None:
    with pytest.raises(OperatorError) as raised:
        OperatorContext.from_args(_args("--env", "no-such-env"), PlainConsole())
    assert raised.value.exit_code == EXIT_USAGE
    assert "no-such-env" in str(raised.value)


def test_the_actor_is_the_callers_arn_else_user_at_host() -> None:
    assert _context().actor() == "arn:aws:sts::123456789012:assumed-role/ops/alice"
    assert _context(None).actor() == local_actor()
    assert "@" in local_actor()


def test_a_confirmed_change_carries_actor_time_action_reason_and_the_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    context = _context()
    change = _gate(context, "--reason", "scorer image fixed", stdin=_Terminal("y\n")).approve("pause", ["pause X"])
    assert change is not None
    assert (change.actor, change.at, change.action, change.reason) == (
        "arn:aws:sts::123456789012:assumed-role/ops/alice",
        NOW,
        "pause",
        "scorer image fixed",
    )
    assert change.request_id == context.request_id
    assert len(change.request_id) == 12
    out = capsys.readouterr()
    assert "pause in example:" in out.out
    assert "  pause X" in out.out
    assert "proceed? [y/N]" in out.err


def test_yes_skips_the_question() -> None:
    change = _gate(_context(), "--yes", "--reason", "why").approve("stop", ["stop it"])
    assert change is not None
    assert change.action == "stop"


def test_dry_run_shows_the_plan_changes_nothing_and_needs_no_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert _gate(_context(), "--dry-run").approve("set-caps", ["maxRunningTasks: 5 -> 3"]) is None
    out = capsys.readouterr().out
    assert "maxRunningTasks: 5 -> 3" in out
    assert "dry run: nothing changed" in out


@pytest.mark.parametrize("reason", [None, "   ", "x" * 301])
def test_a_real_change_needs_a_reason_of_1_to_300_characters(reason: str | None) -> None:
    argv = ["--yes"] + ([] if reason is None else ["--reason", reason])
    with pytest.raises(OperatorError) as raised:
        _gate(_context(), *argv).approve("pause", [])
    assert raised.value.exit_code == EXIT_USAGE
    assert "--reason" in str(raised.value)


def test_without_yes_and_without_a_terminal_the_change_is_refused() -> None:
    with pytest.raises(OperatorError) as raised:
        _gate(_context(), "--reason", "why", stdin=io.StringIO("y\n")).approve("pause", [])
    assert raised.value.exit_code == EXIT_USAGE
    assert "--yes" in str(raised.value)


@pytest.mark.parametrize("answer", ["\n", "n\n", "no\n", "sure\n"])
def test_anything_but_yes_at_the_prompt_declines(answer: str) -> None:
    with pytest.raises(OperatorError) as raised:
        _gate(_context(), "--reason", "why", stdin=_Terminal(answer)).approve("pause", [])
    assert raised.value.exit_code == EXIT_FAILED


def test_json_prints_the_document_and_not_the_human_text(capsys: pytest.CaptureFixture[str]) -> None:
    context = _context(None, "--json")
    context.emit({"a": 1, "at": NOW}, lambda: context.say("for a person"))
    context.say("also not printed")
    assert json.loads(capsys.readouterr().out) == {"a": 1, "at": "2026-03-02T10:15:00+00:00"}


def test_without_json_the_human_text_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    context = _context(None)
    context.emit({"a": 1}, lambda: context.say("[mm-processor] for a person"))
    assert capsys.readouterr().out == "[mm-processor] for a person\n"


def test_the_session_takes_profile_region_and_endpoint_from_the_options() -> None:
    from operator_tools.clients import AwsClients

    args = _args("--env", "example", "--profile", "ops", "--endpoint-url", "http://127.0.0.1:5000")
    clients = OperatorContext.from_args(args, PlainConsole()).clients
    assert isinstance(clients, AwsClients)
    assert (clients._profile, clients._region, clients._endpoint_url) == ("ops", "us-east-1", "http://127.0.0.1:5000")
    other = OperatorContext.from_args(_args("--env", "example", "--region", "eu-west-1"), PlainConsole()).clients
    assert isinstance(other, AwsClients)
    assert other._region == "eu-west-1"
