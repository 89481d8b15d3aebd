"""The `mm-processor` entry point (`operator_tools.cli`): the operator commands stand without the development
environment. rich is a dev dependency and `local_pipeline` the dev-only harness: `--help` and the operator
commands' help must work without either, and `local` loads the harness only when asked for."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from operator_tools.cli import COMMANDS, main
from operator_tools.console import PlainConsole, PlainTable, escape

# Runs `main(argv)` in a fresh interpreter in which `rich` (and, with hide_harness, `local_pipeline`) cannot be
# imported, and prints which of the hidden packages got imported anyway.
_WITHOUT = textwrap.dedent(
    """
    import importlib.abc, sys
    hidden = {hidden!r}

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in hidden:
                raise ImportError(f"hidden for the test: {{name}}")
            return None

    sys.meta_path.insert(0, Hide())
    from operator_tools.cli import COMMANDS, main
    try:
        status = main({argv!r})
    except SystemExit as exit:
        status = exit.code
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & {{"rich", "local_pipeline"}})
    print("STATUS", status, "LOADED", loaded)
    """
)


def _run_without(hidden: set[str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = _WITHOUT.format(hidden=sorted(hidden), argv=argv)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)


OPERATOR_COMMANDS = [command.name for command in COMMANDS] + ["smoke"]


# Prints every command's help in one fresh interpreter in which the hidden packages cannot be imported.
_EVERY_HELP = textwrap.dedent(
    """
    import importlib.abc, sys
    hidden = {hidden!r}

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in hidden:
                raise ImportError(f"hidden for the test: {{name}}")
            return None

    sys.meta_path.insert(0, Hide())
    from operator_tools.cli import main
    for argv in {argv_list!r}:
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(hidden))
        print("STATUS", status, "LOADED", loaded)
    """
)


def test_help_of_every_command_works_from_a_runtime_only_install() -> None:
    # No rich, no harness, no tests, no moto: what `pip install .` without the dev group has.
    argv_list = [["--help"], *([name, "--help"] for name in OPERATOR_COMMANDS), ["caps", "set", "--help"]]
    code = _EVERY_HELP.format(hidden=sorted({"rich", "local_pipeline", "tests", "moto"}), argv_list=argv_list)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.stdout.count("STATUS 0 LOADED []") == len(argv_list), result.stderr
    for name in OPERATOR_COMMANDS:
        assert f"usage: mm-processor {name}" in result.stdout


def test_the_top_level_help_lists_every_command_without_loading_the_harness() -> None:
    result = _run_without({"local_pipeline"}, ["--help"])
    assert "STATUS 0" in result.stdout, result.stderr
    for command in ("local", *OPERATOR_COMMANDS):
        assert command in result.stdout
    assert "'local_pipeline'" not in result.stdout.split("LOADED", 1)[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601", "--env", "no-such-env"],
        ["pause", "30a1c2d4-5b6e-4f70-8a91-b2c3d4e5f601", "--env", "no-such-env", "--yes", "--reason", "r"],
    ],
)
def test_an_unknown_environment_exits_2_with_a_sentence(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mm-processor: error: ")
    assert "no-such-env" in err


def test_local_without_the_harness_says_what_is_missing() -> None:
    result = _run_without({"local_pipeline"}, ["local", "run"])
    assert "STATUS 2" in result.stdout
    assert "needs the development environment" in result.stderr


def test_local_run_help_comes_from_the_harness(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["local", "run", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--messages" in out
    assert "--fault" in out


def test_the_plain_console_prints_tables_and_drops_style_tags_only(capsys: pytest.CaptureFixture[str]) -> None:
    table = PlainTable("health of example")
    table.add_column("check")
    table.add_column("ok")
    table.add_row("alarms", "[red]FAILED[/red]")
    table.add_row(escape("[mm-processor example]"), "ok")
    console = PlainConsole()
    console.print(table)
    console.print("[red]error:[/red] [mm-processor example] stays")
    console.print("[red]verbatim[/red]", markup=False)
    console.print_json('{"a": 1}')
    assert capsys.readouterr().out.splitlines() == [
        "health of example",
        "check                   ok",
        "alarms                  FAILED",
        "[mm-processor example]  ok",
        "error: [mm-processor example] stays",
        "[red]verbatim[/red]",
        "{",
        '  "a": 1',
        "}",
    ]
