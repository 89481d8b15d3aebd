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
# Dev tools never ship in an asset (the import contracts hold the code to it; this holds the import graph).
DEV_TOOLS = frozenset({"fault_injection", "local_pipeline", "loopback", "topcoder_standin", "moto", "tests"})
# An HTTP client only where the first invocation may call Topcoder; the X.509 parser only in the monitor; no
# asyncio where the handler builds its partial batch response itself (Powertools' batch utility imports it).
NOT_NEEDED = {
    "router_lambda.handler": frozenset({"requests", "cryptography", "asyncio"}),
    "challenge_lambda.handler": frozenset({"requests", "cryptography", "asyncio"}),
    "completion_lambda.handler": frozenset({"cryptography"}),
    "sweeper_lambda.handler": frozenset({"requests", "cryptography"}),
    "certificate_monitor.handler": frozenset({"requests"}),
    "scorer_token_refresher.handler": frozenset({"cryptography"}),
}


def imported_packages(module: str) -> set[str]:
    """Top-level packages in `sys.modules` after importing `module` in a fresh interpreter."""
    code = (
        "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, module],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},  # no POWERTOOLS_TRACE_DISABLED needed
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("handler_module", sorted(NOT_NEEDED))
def test_a_cold_handler_import_loads_no_tracing_sdk_and_nothing_its_first_call_does_not_need(
    handler_module: str,
) -> None:
    # When the handler is imported cold
    packages = imported_packages(handler_module)
    # Then no tracing SDK, no dev tool and nothing its first invocation does not need is loaded
    assert packages & (TRACING_SDK | DEV_TOOLS | NOT_NEEDED[handler_module]) == set()
    # And the function's own package is there (the check above saw a real import)
    assert handler_module.partition(".")[0] in packages
