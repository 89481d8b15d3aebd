"""Cold-start import time of each handler beside its floor, `import boto3`, measured in the same run.

Every sample is a fresh interpreter, like a new Lambda execution environment. A handler's sample is
`tests.cold_start_sample.sample_statement`: the handler's import, then what every function's first call imports to
call AWS (`import mm_adapters.aws`, botocore's client machinery; a no-op when the handler imported it already), then
the build of every pydantic model class the import loaded that is not built yet. So a client module imported late,
or a model whose build is deferred, is counted either way: `tests/unit/test_first_call_imports.py` checks that a
handler's first invocation loads nothing the sample does not. The floor sample imports boto3 alone. Samples are
interleaved (boto3, router, ..., boto3, router, ...) so machine load falls on the floor and the handlers alike; one
warm-up round first writes the bytecode caches.

The figure is the CPU time of the import (`time.process_time()` in the child): on a shared machine it is far
steadier than wall time, which is printed beside it; an import is CPU-bound, so the two agree on an idle machine.
Also printed (and published without a goal): `cold_start.pydantic_floor`, botocore's session plus pydantic with one
model built plus the Powertools Logger, the least a handler that calls AWS through botocore and validates its event
with pydantic can import, and `cold_start.botocore`, `import botocore.session` alone.

Publishes `cold_start.<function>` (median ms; floor = the boto3 median; goal 1.3 x, issue 13) and prints, per
handler, the packages beyond the floor that cost the most import time (self time summed per top-level package,
from `-X importtime`).

Then, as deployed (decision 123): Lambda's Python (`packaging.lambda_python()`, 3.12), only the function's staged
asset and the dependency layer on `sys.path`, `-I -S -B` (no site-packages; nothing written, as on Lambda's
read-only `/var/task` and `/opt`), the same sample statements. Publishes `cold_start.deployed.<function>` beside
`import boto3` from that layer in the same run (no goal: the goal is the figure above), with the pydantic floor
measured the same way (`cold_start.deployed.pydantic_floor`), and prints what the same artefacts cost without their
bytecode, as they shipped before decision 123. Skipped, and said, without Python 3.12. The same as-deployed samples
are also counted in instructions (valgrind's callgrind, start-up subtracted; `cold_start.instructions.*`, no goal),
which the machine's load does not move (decision 112, fifth pass); skipped, and said, without valgrind.
Asserts nothing.
Run: `.venv/bin/python -m benchmarks.cold_start_benchmark [--samples N] [--no-deployed] [--no-instructions]`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.figures import Figure, publish
from tests.cold_start_sample import sample_statement

ROOT = Path(__file__).resolve().parent.parent
# Figure key suffix -> handler module.
HANDLERS = {
    "router": "router_lambda.handler",
    "challenge_processor": "challenge_lambda.handler",
    "completion": "completion_lambda.handler",
    "timeout_sweeper": "sweeper_lambda.handler",
    "certificate_monitor": "certificate_monitor.handler",
    "scorer_token_refresher": "scorer_token_refresher.handler",
}
GOAL_RATIO = 1.3
FLOOR = "import boto3"
BOTOCORE = "import botocore.session"
PYDANTIC_FLOOR = (
    "import botocore.session, pydantic; from aws_lambda_powertools import Logger; Logger(service='floor'); "
    "pydantic.create_model('Event', id=(str, ...))(id='x')"
)
# callgrind's summary line: the instructions the whole process executed.
COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)
# Handlers read their settings on the first call; only the region is read at import (by nothing we own).
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}


def handler_statement(module: str) -> str:
    return sample_statement(module)


@dataclass
class Samples:
    cpu_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def wall(self) -> float:
        return statistics.median(self.wall_ms)


def _run(command: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`command` from the repository root with the benchmark's environment; raises if it fails."""
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, check=True, timeout=timeout)


def _sample(statement: str, *, python: str = sys.executable, path: tuple[str, ...] = ()) -> tuple[float, float]:
    """(CPU ms, wall ms) of `statement` in a fresh interpreter; with `path`, an isolated one (`-I -S -B`) that sees
    only those directories, as a Lambda function sees its asset and its layer."""
    prelude = f"import sys; sys.path[:0] = {list(path)!r}\n" if path else ""
    code = (
        f"{prelude}import time; c=time.process_time(); w=time.perf_counter()\n"
        f"{statement}\n"
        "print(time.process_time()-c, time.perf_counter()-w)"
    )
    flags = ["-I", "-S", "-B"] if path else []
    out = _run([python, *flags, "-c", code])
    cpu, wall = (float(part) * 1000 for part in out.stdout.strip().splitlines()[-1].split())
    return cpu, wall


def collected_instructions(callgrind_stderr: str) -> int:
    """The instruction count callgrind prints when the process ends ("==pid== Collected : N")."""
    match = COLLECTED.search(callgrind_stderr)
    if match is None:
        raise ValueError("callgrind printed no 'Collected' line")
    return int(match.group(1))


def _instructions(statement: str, *, valgrind: str, python: str, path: tuple[str, ...]) -> int:
    """Instructions a fresh isolated interpreter (`-I -S -B`, only `path`) executes for `statement`, start-up
    included (the caller subtracts `pass`). Deterministic, unlike CPU time: load on the machine does not move it."""
    prelude = f"import sys; sys.path[:0] = {list(path)!r}\n"
    out = _run(
        [
            valgrind,
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            python,
            "-I",
            "-S",
            "-B",
            "-c",
            prelude + statement,
        ],
        timeout=300,
    )
    return collected_instructions(out.stderr)


def count_instructions(
    statements: dict[str, str], *, python: str, paths: dict[str, tuple[str, ...]]
) -> dict[str, float] | None:
    """Millions of instructions per statement beyond an interpreter that runs `pass` with the same path
    (valgrind's callgrind, one count each, two at a time); None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    jobs = {name: (statements[name], paths[name]) for name in statements}
    jobs["pass"] = ("pass", paths["boto3"])
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(
            zip(
                jobs,
                pool.map(
                    lambda job: _instructions(job[0], valgrind=valgrind, python=python, path=job[1]), jobs.values()
                ),
                strict=True,
            )
        )
    start_up = counts.pop("pass")
    return {name: (count - start_up) / 1e6 for name, count in counts.items()}


def package_self_times(statement: str) -> dict[str, float]:
    """Import self time (ms) per top-level package when `statement` runs cold (`-X importtime`)."""
    out = _run([sys.executable, "-X", "importtime", "-c", statement])
    self_us: dict[str, int] = defaultdict(int)
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        self_us[name.split(".")[0]] += int(own)
    return {package: us / 1000 for package, us in self_us.items()}


def heaviest_beyond_floor(module: str, floor_packages: set[str], top: int = 5) -> list[tuple[str, float]]:
    """The packages `module` imports that `import boto3` does not, by import self time (ms)."""
    times = package_self_times(handler_statement(module))
    beyond = [(package, ms) for package, ms in times.items() if package not in floor_packages]
    return sorted(beyond, key=lambda item: item[1], reverse=True)[:top]


def measure(
    statements: dict[str, str],
    samples: int,
    sample: Callable[[str, str], tuple[float, float]] = lambda _name, statement: _sample(statement),
) -> dict[str, Samples]:
    """Interleaved samples of every statement (`sample(name, statement)`); one that fails is reported, left out."""
    results = {name: Samples() for name in statements}
    for round_number in range(samples + 1):
        for name in list(results):
            try:
                cpu, wall = sample(name, statements[name])
            except subprocess.CalledProcessError as error:
                print(f"{name}: import failed: {error.stderr.strip().splitlines()[-1:]}")
                del results[name]
                continue
            if round_number:  # round 0 warms the bytecode caches
                results[name].cpu_ms.append(cpu)
                results[name].wall_ms.append(wall)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--no-deployed", action="store_true", help="skip the as-deployed figures (decision 123)")
    parser.add_argument(
        "--no-instructions", action="store_true", help="skip counting the as-deployed samples in instructions"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"cold-start import time ({args.samples} fresh interpreters each, interleaved, {sys.version.split()[0]})")
    statements = {
        "boto3": FLOOR,
        "botocore": BOTOCORE,
        "pydantic floor": PYDANTIC_FLOOR,
        **{module: handler_statement(module) for module in HANDLERS.values()},
    }
    results = measure(statements, args.samples)
    if "boto3" not in results:
        print("the floor (import boto3) could not be measured")
        return 1
    floor = results["boto3"].cpu
    floor_packages = set(package_self_times(FLOOR))
    print(f"{'import':<32}{'CPU ms':>8}{'wall ms':>9}{'x boto3':>9}   heaviest beyond boto3 (import self ms)")
    for name in ("boto3", "botocore", "pydantic floor"):
        if name in results:
            print(f"{name:<32}{results[name].cpu:>8.1f}{results[name].wall:>9.1f}{results[name].cpu / floor:>9.2f}")
    figures: list[Figure] = []
    if "botocore" in results:
        figures.append(
            Figure(
                "cold_start.botocore",
                "cold import: botocore's session (what the functions build clients from)",
                round(results["botocore"].cpu, 1),
                "ms",
                floor=round(floor, 1),
                floor_label="import boto3, same run",
                note="the functions' AWS SDK without boto3 (decision 112); no goal",
            )
        )
    if "pydantic floor" in results:
        figures.append(
            Figure(
                "cold_start.pydantic_floor",
                "cold import: botocore + pydantic (one model) + Logger",
                round(results["pydantic floor"].cpu, 1),
                "ms",
                floor=round(floor, 1),
                floor_label="import boto3, same run",
                note="the least a handler validating its event with pydantic imports; no goal",
            )
        )
    for key, module in HANDLERS.items():
        if module not in results:
            continue
        sample = results[module]
        heavy = ", ".join(f"{package} {ms:.0f}" for package, ms in heaviest_beyond_floor(module, floor_packages))
        print(f"{module:<32}{sample.cpu:>8.1f}{sample.wall:>9.1f}{sample.cpu / floor:>9.2f}   {heavy}")
        figures.append(
            Figure(
                f"cold_start.{key}",
                f"cold import: {key.replace('_', ' ')}",
                round(sample.cpu, 1),
                "ms",
                floor=round(floor, 1),
                floor_label="import boto3, same run",
                goal_ratio=GOAL_RATIO,
                note=(
                    f"median CPU of {args.samples} fresh interpreters (wall {sample.wall:.0f} ms); "
                    "handler, its first call's client imports, every loaded model built"
                ),
            )
        )
    if not args.no_deployed:
        figures += deployed_figures(args.samples, instructions=not args.no_instructions)
    publish("cold_start", figures)
    print(f"(took {time.perf_counter() - started:.1f} s)")
    return 0


def _stripped_of_bytecode(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def deployed_figures(samples: int, *, instructions: bool = True) -> list[Figure]:
    """Each handler as Lambda imports it: Python 3.12, its staged asset and the layer only, nothing written; with
    `instructions`, the same samples counted in instructions too (`instruction_figures`)."""
    from infrastructure import packaging

    python = packaging.lambda_python()
    if python is None:
        print(f"as deployed: skipped, no Python {packaging.LAMBDA_PYTHON_VERSION} here (set MM_HOST_PYTHON)")
        return []
    assets = {package: asset for asset, package in packaging.FUNCTION_PACKAGES.items()}
    layer = packaging.build_layer(packaging.LayerTarget.HOST).directory / "python"
    with TemporaryDirectory(prefix="mm-cold-start-") as scratch:
        root = Path(scratch)
        shipped: dict[str, tuple[str, ...]] = {}
        bare: dict[str, tuple[str, ...]] = {}
        bare_layer = _stripped_of_bytecode(layer, root / "bare-layer")
        for module in HANDLERS.values():
            staged = packaging.stage_function_asset(assets[module.partition(".")[0]], assets_dir=root / "assets")
            shipped[module] = (str(staged), str(layer))
            bare[module] = (str(_stripped_of_bytecode(staged, root / "bare" / staged.name)), str(bare_layer))
        for floor_name in ("boto3", "pydantic floor"):
            shipped[floor_name], bare[floor_name] = (str(layer),), (str(bare_layer),)
        statements = {
            "boto3": FLOOR,
            "pydantic floor": PYDANTIC_FLOOR,
            **{module: handler_statement(module) for module in HANDLERS.values()},
        }

        def run_with(paths: dict[str, tuple[str, ...]]) -> Callable[[str, str], tuple[float, float]]:
            return lambda name, statement: _sample(statement, python=python, path=paths[name])

        with_bytecode = measure(statements, samples, run_with(shipped))
        without = measure(statements, max(3, samples // 2), run_with(bare))
        counted = _counted_or_said(statements, python=python, paths=shipped) if instructions else None
    if "boto3" not in with_bytecode:
        print("as deployed: the floor (import boto3 from the layer) could not be measured")
        return []
    floor = with_bytecode["boto3"].cpu
    print(f"as deployed ({python}: asset + layer only, -I -S -B); CPU ms, median")
    print(f"{'import':<32}{'shipped':>9}{'x boto3':>9}{'no bytecode':>13}{'saved':>8}")
    figures = []
    shipped_floors = ("boto3", "pydantic floor")
    for key, module in {"boto3": "boto3", "pydantic_floor": "pydantic floor", **HANDLERS}.items():
        if module not in with_bytecode or module not in without:
            continue
        shipped_ms, bare_ms = with_bytecode[module].cpu, without[module].cpu
        print(f"{module:<32}{shipped_ms:>9.1f}{shipped_ms / floor:>9.2f}{bare_ms:>13.1f}{bare_ms / shipped_ms:>7.2f}x")
        if key == "boto3":
            continue
        where = "the layer" if module in shipped_floors else "asset + layer"
        figures.append(
            Figure(
                f"cold_start.deployed.{key}",
                f"cold import as deployed: {key.replace('_', ' ')}"
                + (" (botocore + pydantic, one model, + Logger)" if key == "pydantic_floor" else ""),
                round(shipped_ms, 1),
                "ms",
                floor=round(floor, 1),
                floor_label="import boto3 from the layer, same run",
                note=(
                    f"Python {packaging.LAMBDA_PYTHON_VERSION}, {where} only, nothing written; median CPU of {samples};"
                    f" without the shipped bytecode {bare_ms:.0f} ms (decision 123); no goal"
                ),
            )
        )
    if counted is not None:
        figures += instruction_figures(counted)
    return figures


def _counted_or_said(
    statements: dict[str, str], *, python: str, paths: dict[str, tuple[str, ...]]
) -> dict[str, float] | None:
    """`count_instructions`, or None with the reason printed (no valgrind, a count that failed)."""
    try:
        counted = count_instructions(statements, python=python, paths=paths)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError) as error:
        print(f"as deployed, in instructions: could not be counted ({error})")
        return None
    if counted is None:
        print("as deployed, in instructions: skipped, no valgrind here")
    return counted


def instruction_figures(counted: dict[str, float]) -> list[Figure]:
    """`cold_start.instructions.*`: the as-deployed samples in millions of instructions beside `import boto3`'s.

    A count, not a time: the same on a loaded machine as on an idle one (CPU time here swings by 1.5x from day to
    day), so a change of a few percent shows in one run. Instructions are not time (cache misses, the .so loads), so
    the goal stays on the CPU figures; these say whether a ratio moved because the code did or because the machine
    did (decision 112)."""
    if "boto3" not in counted:
        return []
    floor = counted["boto3"]
    print(f"as deployed, in instructions (valgrind callgrind, start-up subtracted): import boto3 {floor:,.0f} M")
    figures = []
    for key, name in {"pydantic_floor": "pydantic floor", **HANDLERS}.items():
        if name not in counted:
            continue
        print(f"  {name:<32}{counted[name]:>8,.0f} M{counted[name] / floor:>7.2f}")
        figures.append(
            Figure(
                f"cold_start.instructions.{key}",
                f"cold import as deployed, instructions: {key.replace('_', ' ')}",
                round(counted[name], 1),
                "M instructions",
                floor=round(floor, 1),
                floor_label="import boto3 from the layer, counted the same way",
                note=(
                    "valgrind callgrind, one count each (repeats agree to 0.3 %), interpreter start-up subtracted;"
                    " no goal"
                ),
            )
        )
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
