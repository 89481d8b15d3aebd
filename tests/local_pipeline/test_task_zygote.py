"""Scorer tasks forked from a warm interpreter stay real processes of their own (decision 116): each its own pid
and session, its exit status (a signal N as -N, which the runner reports as 128 + N), its environment, argv and
log; a stop signal reaches only a task still running; the tasks die with the zygote. A command that is not a
Python script is not forked."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_pipeline.fargate.zygote import Zygote, forkable
from local_pipeline.scenario import SCORER_SCRIPT

PYTHON = sys.executable


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    started = Zygote(PYTHON, {"PATH": os.environ.get("PATH", "")}).start()
    yield started
    started.stop()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_only_a_python_script_or_code_command_is_forked() -> None:
    assert forkable((PYTHON, str(SCORER_SCRIPT)))
    assert forkable(("python3", "-c", "pass", "arg"))
    assert not forkable(("python3", "-m", "scorer"))
    assert not forkable(("/usr/bin/env", "python3", "scorer.py"))
    assert not forkable(("python3",))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_task_is_its_own_process_with_its_environment_argv_and_log(zygote: Zygote, tmp_path: Path) -> None:
    code = "import os, sys; print(os.getpid(), os.getsid(0), ','.join(sys.argv[1:]), os.environ.get('MM_X'))"
    log = tmp_path / "task.log"
    process = zygote.spawn([PYTHON, "-c", code, "a", "b"], {"MM_X": "value"}, str(log))
    assert process.pid != os.getpid()
    assert process.wait(timeout=20) == 0
    pid, session, argv, value = log.read_text().split(" ", 3)
    assert int(pid) == process.pid == int(session)  # its own session, as `start_new_session` gave it
    assert (argv, value.strip()) == ("a,b", "value")
    assert process.cpu_seconds is not None
    assert zygote.cpu_seconds >= process.cpu_seconds


def test_the_example_scorer_exits_as_it_would_as_python3_scorer_py(zygote: Zygote, tmp_path: Path) -> None:
    command = [PYTHON, str(SCORER_SCRIPT)]
    codes = {}
    for behaviour in ("fail", "error", "crash"):
        process = zygote.spawn(command, {"EXAMPLE_SCORER_BEHAVIOUR": behaviour}, str(tmp_path / f"{behaviour}.log"))
        codes[behaviour] = process.wait(timeout=20)
    assert codes == {"fail": 1, "error": 1, "crash": -signal.SIGKILL}
    error_log = (tmp_path / "error.log").read_text()
    assert "RuntimeError: scorer bug" in error_log
    assert "zygote" not in error_log  # the traceback starts at the script, as the interpreter prints it


def test_a_stop_signal_reaches_a_running_task(zygote: Zygote, tmp_path: Path) -> None:
    process = zygote.spawn(
        [PYTHON, str(SCORER_SCRIPT)],
        {"EXAMPLE_SCORER_BEHAVIOUR": "run-long", "MM_TIMEOUT_SECONDS": "30"},
        str(tmp_path / "long.log"),
    )
    time.sleep(0.2)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == -signal.SIGTERM
    process.kill()  # already reaped: nothing is sent (the pid may be another process's by now)


def test_a_missing_script_exits_2_as_the_interpreter_does(zygote: Zygote, tmp_path: Path) -> None:
    log = tmp_path / "missing.log"
    assert zygote.spawn([PYTHON, str(tmp_path / "absent.py")], {}, str(log)).wait(timeout=20) == 2
    assert "can't open file" in log.read_text()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_tasks_die_with_the_zygote(tmp_path: Path) -> None:
    zygote = Zygote(PYTHON, {"PATH": os.environ.get("PATH", "")}).start()
    process = zygote.spawn([PYTHON, "-c", "import time; time.sleep(60)"], {}, str(tmp_path / "sleep.log"))
    assert _ppid(process.pid) == zygote.pid  # forked by the zygote, not started by this process
    zygote.stop()
    assert process.wait(timeout=20) == -signal.SIGKILL
    assert not Path(f"/proc/{process.pid}").exists() or _ppid(process.pid) != zygote.pid
