"""`mm-processor caps show|set`: the caps documents in SSM, validated before they are written, and audited."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from pydantic import ValidationError

from mm_adapters.challenge_config import parse_challenge_config
from mm_capacity.store import CapacityStore
from mm_contracts.models.capacity import EnvironmentCapacity
from mm_contracts.names import capacity_parameter_name, challenge_config_parameter_name
from operator_tools.clients import AwsClients
from operator_tools.console import PlainConsole
from operator_tools.context import OperatorContext
from tests.unit.operator_tools.conftest import ROUTE_PLANNER, Deployed
from tests.unit.operator_tools.operator_helpers import capacity_store, cli, output_json, waiting_run


def _parameter(deployed: Deployed, name: str) -> tuple[dict[str, Any], int]:
    found = deployed.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    return json.loads(found["Value"]), int(found["Version"])


def _env_name(deployed: Deployed) -> str:
    return capacity_parameter_name(deployed.plan.config.ssm_prefix)


def _challenge_name(deployed: Deployed) -> str:
    return challenge_config_parameter_name(ROUTE_PLANNER, deployed.plan.config.ssm_prefix)


def test_set_the_environments_caps_changes_only_the_named_fields_and_audits_it(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    before, version = _parameter(deployed, _env_name(deployed))
    assert cli("caps", "set", "--environment", "--max-running", "7", "--yes", "--reason", "quota raised", "--json") == 0
    document = output_json(capsys)
    after, new_version = _parameter(deployed, _env_name(deployed))
    assert after == {**before, "maxRunningTasks": 7}
    assert new_version == version + 1
    assert document["concurrentWrite"] is False
    [(change, detail)] = capacity_store(deployed).challenge_changes("ENV")
    assert (change.action, change.reason) == ("set-caps", "quota raised")
    assert f"maxRunningTasks: {json.dumps(before.get('maxRunningTasks'))} -> 7" in detail


def test_set_a_challenges_caps_and_phase_caps(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    before, _ = _parameter(deployed, _challenge_name(deployed))
    argv = ["caps", "set", ROUTE_PLANNER, "--max-running", "2", "--phase-cap", "system=1", "--yes", "--reason", "r"]
    assert cli(*argv) == 0
    out = capsys.readouterr().out
    after, _ = _parameter(deployed, _challenge_name(deployed))
    assert after["capacity"]["maxRunningTasks"] == 2
    assert after["capacity"]["maxRunningTasksPerPhase"] == {"SYSTEM": 1}
    assert {key: value for key, value in after.items() if key != "capacity"} == {
        key: value for key, value in before.items() if key != "capacity"
    }
    assert "within 300 s" in out
    assert "the next deploy that changes this parameter writes the config's value over it" in out
    [(change, _)] = capacity_store(deployed).challenge_changes(ROUTE_PLANNER)
    assert change.action == "set-caps"


def test_an_invalid_document_is_never_written(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    before = _parameter(deployed, _env_name(deployed))
    assert cli("caps", "set", "--environment", "--run-task-per-second", "500", "--yes", "--reason", "r") == 1
    assert "would be invalid" in capsys.readouterr().err
    assert _parameter(deployed, _env_name(deployed)) == before
    assert capacity_store(deployed).challenge_changes("ENV") == []


def test_caps_the_pool_item_could_not_take_at_their_pace_are_never_written(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    # decision 125: a cap of 500 at 20 runs a second is a valid document the functions would load, but its full pool
    # item would need 2,240 write units a second of one DynamoDB item, which takes 1,000
    before = _parameter(deployed, _env_name(deployed))
    argv = ["caps", "set", "--environment", "--max-running", "500", "--run-task-per-second", "20", "--yes"]
    assert cli(*argv, "--reason", "r") == 1
    error = capsys.readouterr().err
    assert "not written" in error
    assert "2,240 DynamoDB write units a second" in error
    assert "maxRunningTasks can be at most 218" in error
    assert _parameter(deployed, _env_name(deployed)) == before
    assert capacity_store(deployed).challenge_changes("ENV") == []
    # what fits at that pace is written
    assert cli("caps", "set", "--environment", "--max-running", "218", "--run-task-per-second", "20", "--yes",
               "--reason", "r") == 0  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        ["--environment", "--phase-cap", "SYSTEM=1"],
        [ROUTE_PLANNER, "--max-vcpu", "4"],
        [ROUTE_PLANNER, "--phase-cap", "NOPE=1"],
        [ROUTE_PLANNER],
    ],
)
def test_options_that_do_not_fit_the_target_are_refused(deployed: Deployed, argv: list[str]) -> None:
    before = _parameter(deployed, _challenge_name(deployed))
    assert cli("caps", "set", *argv, "--yes", "--reason", "r") == 2
    assert _parameter(deployed, _challenge_name(deployed)) == before


def test_dry_run_shows_before_and_after_and_writes_nothing(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _parameter(deployed, _challenge_name(deployed))
    assert cli("caps", "set", ROUTE_PLANNER, "--max-running", "0", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "capacity.maxRunningTasks:" in out
    assert "-> 0" in out
    assert "dry run: nothing changed" in out
    assert _parameter(deployed, _challenge_name(deployed)) == before


def test_a_missing_challenge_config_is_named(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    deployed.client("ssm").delete_parameter(Name=_challenge_name(deployed))
    assert cli("caps", "set", ROUTE_PLANNER, "--max-running", "1", "--yes", "--reason", "r") == 1
    assert f"no parameter {_challenge_name(deployed)}" in capsys.readouterr().err


def test_a_challenge_not_in_the_config_is_refused_and_nothing_is_written(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    name = challenge_config_parameter_name(unknown, deployed.plan.config.ssm_prefix)
    deployed.client("ssm").put_parameter(Name=name, Value=json.dumps({"capacity": {}}), Type="String")
    assert cli("caps", "set", unknown, "--max-running", "1", "--yes", "--reason", "r") == 1
    assert "is not a challenge of example's config" in capsys.readouterr().err
    assert _parameter(deployed, name) == ({"capacity": {}}, 1)
    assert capacity_store(deployed).challenge_changes(unknown) == []


def test_a_challenge_id_typed_in_upper_case_sets_the_challenges_own_config(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("caps", "set", ROUTE_PLANNER.upper(), "--max-running", "3", "--yes", "--reason", "r") == 0
    assert _parameter(deployed, _challenge_name(deployed))[0]["capacity"]["maxRunningTasks"] == 3
    [(change, _)] = capacity_store(deployed).challenge_changes(ROUTE_PLANNER)
    assert change.action == "set-caps"


@pytest.mark.parametrize("value", ["inf", "Infinity", "nan"])
def test_a_vcpu_cap_that_is_not_a_finite_number_is_refused_before_anything_is_read(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    before = _parameter(deployed, _env_name(deployed))
    with pytest.raises(SystemExit) as raised:
        cli("caps", "set", "--environment", "--max-vcpu", value, "--yes", "--reason", "r")
    assert raised.value.code == 2
    assert "is not a finite number" in capsys.readouterr().err
    assert _parameter(deployed, _env_name(deployed)) == before


def test_the_environments_capacity_model_refuses_infinity_and_nan() -> None:
    for value in (float("inf"), float("nan"), "Infinity"):
        with pytest.raises(ValidationError):
            EnvironmentCapacity.model_validate({"maxRunningVcpu": value})
    assert EnvironmentCapacity.model_validate({"maxRunningVcpu": 8}).max_running_vcpu == 8


def test_a_document_json_cannot_hold_is_never_written(deployed: Deployed) -> None:
    from operator_tools.caps import read_parameter, write_parameter

    context = OperatorContext.from_args(argparse.Namespace(env="example"), PlainConsole(), deployed.clients)
    parameter = read_parameter(context, _env_name(deployed))
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_parameter(context, parameter, {**parameter.document, "maxRunningVcpu": float("inf")})
    assert _parameter(deployed, _env_name(deployed)) == (parameter.document, parameter.version)


def _put_parameter_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every PutParameter the commands send (moto keeps a tier an update leaves out; AWS applies the account's
    default tier to it, so the request itself must name the tier)."""
    sent: list[dict[str, Any]] = []
    original = AwsClients.client

    def client_for(self: AwsClients, service_name: str, **options: Any) -> Any:
        client = original(self, service_name, **options)
        if service_name == "ssm" and not getattr(client, "_put_recorded", False):
            client.meta.events.register(
                "provide-client-params.ssm.PutParameter", lambda params, **_: sent.append(dict(params))
            )
            client._put_recorded = True
        return client

    monkeypatch.setattr(AwsClients, "client", client_for)
    return sent


def test_a_rewrite_keeps_the_type_and_tier_and_the_document_still_loads(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm = deployed.client("ssm")
    name = _challenge_name(deployed)
    text = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    ssm.put_parameter(Name=name, Value=text, Type="String", Tier="Advanced", Overwrite=True)
    sent = _put_parameter_requests(monkeypatch)
    assert cli("caps", "set", ROUTE_PLANNER, "--max-running", "4", "--yes", "--reason", "r") == 0
    [request] = sent
    assert (request["Type"], request["Tier"], request["DataType"]) == ("String", "Advanced", "text")
    [described] = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    assert (described["Type"], described["Tier"], described.get("DataType", "text")) == ("String", "Advanced", "text")
    written = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    config = parse_challenge_config(ROUTE_PLANNER, name, written)
    assert config.capacity.max_running_tasks == 4


def test_a_change_whose_audit_write_fails_says_it_changed_and_exits_1(
    deployed: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(CapacityStore, "record_challenge_change", refuse)
    _, version = _parameter(deployed, _env_name(deployed))
    assert cli("caps", "set", "--environment", "--max-running", "9", "--yes", "--reason", "r") == 1
    err = capsys.readouterr().err
    assert f"changed ({_env_name(deployed)} is now version {version + 1}), audit entry not recorded" in err
    assert "RuntimeError: throttled" in err
    assert _parameter(deployed, _env_name(deployed))[0]["maxRunningTasks"] == 9


def test_show_prints_the_documents_the_live_counts_and_the_pause(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting_run(deployed, ROUTE_PLANNER, 1)
    assert cli("pause", ROUTE_PLANNER, "--yes", "--reason", "hold") == 0
    capsys.readouterr()
    assert cli("caps", "show", ROUTE_PLANNER, "--json") == 0
    document = output_json(capsys)
    assert document["environmentCaps"] == _parameter(deployed, _env_name(deployed))[0]
    challenge = document["challenge"]
    assert challenge["caps"] == _parameter(deployed, _challenge_name(deployed))[0]["capacity"]
    assert (challenge["waiting"], challenge["paused"], challenge["pauseReason"]) == (1, True, "hold")
    # the example's caps (10 at 10 RunTask a second): its full pool item beside one item's limit (decision 125)
    assert document["environmentPoolItem"] == {"writeUnitsPerSecond": 40, "itemLimit": 1000, "largestCapAtPace": 460}
    assert cli("caps", "show", ROUTE_PLANNER) == 0
    out = capsys.readouterr().out
    assert "PAUSED" in out
    assert "waiting 1" in out
    assert "pool item when full: 40 DynamoDB write units a second of the 1,000 one item takes" in out
