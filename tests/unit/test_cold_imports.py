"""A handler's cold import carries only what its first invocation needs (issue 13, decision 112).

Each handler module is imported in a fresh interpreter, as in a new Lambda execution environment, and the
top-level packages it left in `sys.modules` are checked. Behaviour, not timing: the figures are the cold start
benchmark's (`benchmarks/cold_start_benchmark.py`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The X-Ray SDK (in maintenance mode) and its wrapt dependency: tracing is Lambda's active tracing or the ADOT
# layer, configured outside the code, so no function imports a tracing SDK.
TRACING_SDK = frozenset({"aws_xray_sdk", "wrapt"})
# boto3 and what it brings: the functions build botocore clients (`mm_adapters.aws`) and read DynamoDB values with
# `mm_adapters.dynamodb_types`; `import boto3` (even `boto3.dynamodb.types`) loads s3transfer and multiprocessing.
BOTO3 = frozenset({"boto3", "s3transfer", "multiprocessing"})
# Dev tools never ship in an asset (the import contracts hold the code to it; this holds the import graph).
DEV_TOOLS = frozenset({"fault_injection", "local_pipeline", "loopback", "topcoder_standin", "moto", "tests"})
# `requests` and what it brings: the Topcoder clients send through urllib3, which botocore loads anyway (122).
REQUESTS = frozenset({"requests", "charset_normalizer", "idna"})
# The X.509 parser only in the monitor; no asyncio where the handler builds its partial batch response itself
# (Powertools' batch utility imports it).
NOT_NEEDED = {
    "router_lambda.handler": frozenset({"cryptography", "asyncio"}),
    "challenge_lambda.handler": frozenset({"cryptography", "asyncio"}),
    "completion_lambda.handler": frozenset({"cryptography"}),
    "sweeper_lambda.handler": frozenset({"cryptography"}),
    "certificate_monitor.handler": frozenset(),
    "scorer_token_refresher.handler": frozenset({"cryptography"}),
}


def loaded_modules(module: str) -> set[str]:
    """Every module in `sys.modules` after importing `module` in a fresh interpreter (the one such helper: the
    other cold-import tests read it)."""
    code = "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code, module],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},  # no POWERTOOLS_TRACE_DISABLED needed
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def imported_packages(module: str) -> set[str]:
    """Top-level packages in `sys.modules` after importing `module` in a fresh interpreter."""
    return {name.split(".")[0] for name in loaded_modules(module)}


@pytest.mark.parametrize("handler_module", sorted(NOT_NEEDED))
def test_a_cold_handler_import_loads_no_tracing_sdk_no_boto3_and_nothing_its_first_call_does_not_need(
    handler_module: str,
) -> None:
    # When the handler is imported cold
    packages = imported_packages(handler_module)
    # Then no tracing SDK, no boto3, no requests, no dev tool and nothing its first invocation does not need is loaded
    assert packages & (TRACING_SDK | BOTO3 | REQUESTS | DEV_TOOLS | NOT_NEEDED[handler_module]) == set()
    # And the function's own package is there (the check above saw a real import)
    assert handler_module.partition(".")[0] in packages


def imported_modules(module: str, package: str) -> set[str]:
    """The modules of `package` in `sys.modules` after importing `module` in a fresh interpreter."""
    return {name for name in loaded_modules(module) if name.split(".")[0] == package}


# The status-table and capacity models: built only by the functions that read or write those tables. The ports
# name them in annotations only, and `mm_contracts.models` loads a name on first use, not every model at once.
STATUS_MODELS = frozenset(
    f"mm_contracts.models.{name}" for name in ("lifecycle", "ledger", "outcome", "capacity", "report_due", "ecs_event")
)
# The router's inbound Kafka models: only the router parses bus messages (the others check ids with
# `models.base.canonical_uuid`).
BUS_MODELS = frozenset({"mm_contracts.models.bus"})
# The audit shapes: the router's audit record and an operator's change, built by the router and the operator tools;
# the others write an operator's history entry with the pydantic-free `mm_contracts.models.audit_names`.
AUDIT_MODELS = frozenset({"mm_contracts.models.audit"})
MODELS_NOT_BUILT = {
    "router_lambda.handler": STATUS_MODELS | {"mm_contracts.models.task"},
    "challenge_lambda.handler": BUS_MODELS | AUDIT_MODELS | {"mm_contracts.models.ecs_event"},
    # An ECS event is its common invocation: it tells a report-due one by `mm_contracts.models.report_due_names`.
    "completion_lambda.handler": BUS_MODELS | AUDIT_MODELS | {"mm_contracts.models.report_due"},
    "sweeper_lambda.handler": BUS_MODELS | AUDIT_MODELS | {"mm_contracts.models.ecs_event"},
    "certificate_monitor.handler": STATUS_MODELS
    | {f"mm_contracts.models.{name}" for name in ("audit", "bus", "challenge", "routed", "task")},
    # The refresher needs a token, not the review shapes (`mm_contracts.topcoder_auth` holds the Auth0 ones).
    "scorer_token_refresher.handler": STATUS_MODELS
    | {f"mm_contracts.models.{name}" for name in ("audit", "bus", "challenge", "routed", "task")}
    | {"mm_contracts.topcoder"},
}


@pytest.mark.parametrize("handler_module", sorted(MODELS_NOT_BUILT))
def test_a_cold_handler_import_builds_only_the_models_its_function_uses(handler_module: str) -> None:
    # When the handler is imported cold
    modules = imported_modules(handler_module, "mm_contracts")
    # Then no model module of a table or stage the function does not touch is loaded
    assert modules & MODELS_NOT_BUILT[handler_module] == set()
    # And the contracts are there (the check above saw a real import: every function reads its settings)
    assert "mm_contracts.env_settings.base" in modules


# Each function's settings model, in its module of `mm_contracts.env_settings` (beside `base` and `token`).
OWN_SETTINGS = {
    "router_lambda.handler": "router",
    "challenge_lambda.handler": "challenge_processor",
    "completion_lambda.handler": "completion",
    "sweeper_lambda.handler": "timeout_sweeper",
    "certificate_monitor.handler": "certificate_monitor",
    "scorer_token_refresher.handler": "scorer_token_refresher",
}


@pytest.mark.parametrize("handler_module", sorted(OWN_SETTINGS))
def test_a_cold_handler_import_builds_its_own_settings_model_and_no_other_functions(handler_module: str) -> None:
    # When the handler is imported cold
    modules = imported_modules(handler_module, "mm_contracts")
    # Then of the functions' settings models only its own is loaded (`mm_contracts.settings` loads each on use)
    prefix = "mm_contracts.env_settings."
    loaded = {name.removeprefix(prefix) for name in modules if name.startswith(prefix)} - {"base", "token"}
    assert loaded == {OWN_SETTINGS[handler_module]}
