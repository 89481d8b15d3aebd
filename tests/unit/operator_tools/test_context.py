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
    challenge_id_argument,
    finite_number,
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


def test_a_challenge_id_is_taken_in_its_canonical_form() -> None:
    typed = " 30A1C2D4-5B6E-4F70-8A91-B2C3D4E5F601 "
    assert challenge_id_argument(typed) == "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"
    assert challenge_id_argument("30a1c2d45b6e4f708a91b2c3d4e5f601") == "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601"


def test_an_argument_that_is_not_a_uuid_is_a_usage_error_with_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="mm-processor pause")
    parser.add_argument("challenge_id", type=challenge_id_argument)
    with pytest.raises(SystemExit) as raised:
        parser.parse_args(["route-planner"])
    assert raised.value.code == EXIT_USAGE
    assert "'route-planner' is not a challenge id (a UUID)" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "nan", "NaN", "four"])
def test_a_number_argument_must_be_finite(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        finite_number(value)
    assert finite_number("2.5") == 2.5


def test_a_change_names_a_challenge_of_the_config_and_a_read_only_warns(capsys: pytest.CaptureFixture[str]) -> None:
    context = _context()
    context.require_known_challenge("30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601")
    with pytest.raises(OperatorError) as raised:
        context.require_known_challenge("00000000-0000-4000-8000-000000000000")
    assert raised.value.exit_code == EXIT_FAILED
    assert "is not a challenge of example's config" in str(raised.value)
    context.warn_unknown_challenge("00000000-0000-4000-8000-000000000000")
    assert "warning: 00000000-0000-4000-8000-000000000000 is not a challenge" in capsys.readouterr().err


def test_a_dry_run_under_json_prints_the_plan_as_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    context = _context(None, "--json")
    assert _gate(context, "--dry-run").approve("pause", ["pause X", "runs wait"]) is None
    assert json.loads(capsys.readouterr().out) == {
        "dryRun": True,
        "environment": "example",
        "action": "pause",
        "plan": ["pause X", "runs wait"],
    }


def test_under_json_the_plan_to_confirm_goes_to_stderr_before_the_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    context = _context(None, "--json")
    change = _gate(context, "--reason", "why", stdin=_Terminal("y\n")).approve("stop", ["StopTask arn:task/1"])
    assert change is not None
    out = capsys.readouterr()
    assert out.out == ""  # stdout keeps only the command's one result document
    assert out.err.index("stop in example:") < out.err.index("  StopTask arn:task/1") < out.err.index("proceed?")
