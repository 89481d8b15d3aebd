"""The sweeper writes synthetic ECS events but never parses one, so its cold start builds none of the event's models
(issue 13): it takes the event's names from the pydantic-free `mm_contracts.models.ecs_names`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mm_contracts.models import ecs_event, ecs_names

ROOT = Path(__file__).resolve().parents[3]


def test_a_cold_sweeper_import_loads_no_ecs_event_model_module() -> None:
    # When the sweeper's handler is imported in a fresh interpreter
    code = "import json, sys, sweeper_lambda.handler; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = set(json.loads(result.stdout.splitlines()[-1]))
    # Then the event's names are there and its models are not
    assert "mm_contracts.models.ecs_names" in modules
    assert "mm_contracts.models.ecs_event" not in modules


def test_the_ecs_event_module_re_exports_the_very_same_names() -> None:
    for name in ecs_names.__all__:
        assert getattr(ecs_event, name) is getattr(ecs_names, name)
