"""The router handler's import path: a type used only in annotations must not load its package (decision 113)."""

from __future__ import annotations

import subprocess
import sys


def test_the_handler_import_does_not_load_powertools_batch_processors() -> None:
    # Powertools' batch package imports its processors, asyncio and the event data classes: ~100 ms of a cold start
    probe = (
        "import sys, router_lambda.handler; "
        "print(sorted(m for m in ('aws_lambda_powertools.utilities.batch', 'asyncio') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
