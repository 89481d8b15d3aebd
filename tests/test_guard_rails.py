"""The project's guard rails hold (decision 104).

The import contracts of pyproject.toml `[tool.importlinter]` are kept: `make lint` runs `lint-imports` too, and
this test makes the suite enforce the package graph wherever it runs. The pre-commit config runs what `make lint`
and `make typecheck` run, from the project venv, so a commit meets the same checks CI does.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    # Given the contracts in pyproject.toml, when lint-imports checks the tree (no cache: the tree is the truth),
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # then every contract is kept.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _make_recipe(target: str) -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    block = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert block, f"no `{target}` target in the Makefile"
    return [line.strip().replace("$(RUN)/", "") for line in block.group(1).splitlines()]


def test_pre_commit_runs_what_ci_runs() -> None:
    # Given the commands of `make lint` and `make typecheck` (what `make test`, and so CI, runs before pytest),
    ci_commands = _make_recipe("lint") + _make_recipe("typecheck")
    # when the pre-commit hooks are read,
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    entries = [hook["entry"].removeprefix(".venv/bin/") for hook in hooks]
    # then every hook is local and runs from the project venv (no download, no network at commit time),
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    assert {hook["language"] for hook in hooks} == {"system"}
    # and each CI command has a hook that runs it (ruff on the changed files, the rest on the whole tree).
    for command in ci_commands:
        tool_and_verb = command.removesuffix(" .")
        assert any(entry.startswith(tool_and_verb) for entry in entries), f"no pre-commit hook runs `{command}`"
