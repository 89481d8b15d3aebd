"""Docker-free Lambda assets: one staging directory per function and one dependency layer directory.

- `stage_function_asset("router")` -> `build/assets/router-<content hash>/` holding `router_lambda/` and the shared
  packages `mm_contracts/`, `mm_adapters/`, `mm_capacity/`
  (sources only: no tests, no infrastructure, no `__pycache__`).
- `build_layer()` -> `build/layer/` whose `python/` holds the runtime dependencies from uv.lock, installed
  for Lambda (`manylinux2014_aarch64`, CPython 3.12, wheels only). The build is cached by a hash of the
  requirement set and the target, so repeated synths reuse it (docs/decisions/041).
- `build_layer(LayerTarget.HOST)` -> `build/layer-host/`: the same requirement set for this machine's
  interpreter (`host_python()`), used by a test that imports every handler with only its asset and the layer on
  `sys.path`.

Both ship their bytecode (decision 123): Lambda's `/var/task` and `/opt` are read-only, so a module without a
`.pyc` beside it is compiled from source on every cold start. Each asset and the Lambda layer are compiled by a
Python of Lambda's version (`lambda_python()`), into checked-hash `.pyc` files (PEP 552: valid while the source's
hash matches, whatever the time stamps the zips keep or lose), deterministically (`PYTHONHASHSEED=0`, the paths the
function sees at run time: `/var/task`, `/opt/python`). Without such an interpreter the build still works, without
bytecode, and says so on stderr.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO_ROOT / "build"
ASSETS_DIR = BUILD_DIR / "assets"
# The shared packages every function asset holds: contracts, adapters and the capacity engine.
SHARED_PACKAGES = ("mm_contracts", "mm_adapters", "mm_capacity")

# Lambda runtime the layer is built for. Keep in step with the function runtime (stacks use this too).
LAMBDA_PYTHON_VERSION = "3.12"
LAMBDA_PLATFORM = "manylinux2014_aarch64"
# Names the interpreter the host layer is built for (and the handler import test runs), when set.
HOST_PYTHON_VARIABLE = "MM_HOST_PYTHON"
# The bytecode the artefacts ship (decision 123): checked against the source's hash, not its time stamp (the zips'
# times are fixed), so a source edited after the build (Lambda's console editor) is compiled, never shadowed.
BYTECODE_INVALIDATION_MODE = "checked-hash"
# Where Lambda puts a function's code and a layer's `python/` (https://docs.aws.amazon.com/lambda/latest/dg/
# packaging-layers.html): the paths compiled into the bytecode, so tracebacks and the bytes are the same anywhere.
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_LAYER_PYTHON = "/opt/python"

# Function asset name -> the package its handler lives in.
FUNCTION_PACKAGES: dict[str, str] = {
    "router": "router_lambda",
    "challenge": "challenge_lambda",
    "completion": "completion_lambda",
    "sweeper": "sweeper_lambda",
    "certificate-monitor": "certificate_monitor",  # synthesized only with kafka.authentication = mtls
    "scorer-token-refresher": "scorer_token_refresher",  # synthesized only with token.scorerTokenParameter
}

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", "tests")


class PackagingError(RuntimeError):
    """An asset or the layer could not be built; the message says which and why."""


class LayerTarget(Enum):
    LAMBDA = "lambda"  # build/layer: aarch64 wheels for the Lambda runtime
    HOST = "host"  # build/layer-host: this machine, for the import test


@dataclass(frozen=True)
class LayerBuild:
    directory: Path  # the layer root (holds `python/`)
    requirements: tuple[str, ...]
    fingerprint: str
    rebuilt: bool


# ------------------------------------------------------------------ function assets
# A staged asset is never replaced in place: another test worker or a concurrent `cdk synth` may be
# fingerprinting it that very moment (CDK lstat()s every file). Each distinct content gets its own
# directory, `<name>-<sha256 prefix>`, created by an atomic rename and then only read; a directory
# nobody has staged for a day is pruned (docs/decisions/092).
ASSET_RETENTION_SECONDS = 24 * 3600


def stage_function_asset(name: str, *, root: Path = REPO_ROOT, assets_dir: Path = ASSETS_DIR) -> Path:
    """Copy the function's package and the shared packages into `assets_dir/<name>-<content hash>/` (immutable)."""
    if name not in FUNCTION_PACKAGES:
        raise PackagingError(f"unknown function asset {name!r} (known: {', '.join(FUNCTION_PACKAGES)})")
    packages = (FUNCTION_PACKAGES[name], *SHARED_PACKAGES)
    assets_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=assets_dir))
    try:
        for package in packages:
            source = root / package
            if not (source / "__init__.py").is_file():
                raise PackagingError(f"asset {name}: package {package}/ is missing under {root}")
            shutil.copytree(source, staging / package, ignore=_IGNORED)
        python = lambda_python()
        # The name covers the sources and the interpreter that compiles them: the bytecode follows from both.
        target = assets_dir / f"{name}-{_tree_digest(staging, salt=bytecode_tag(python))[:16]}"
        with _lock(assets_dir / f".{name}.lock"):
            if not target.is_dir():
                if python is not None:
                    compile_bytecode(staging, python=python, runtime_root=LAMBDA_TASK_ROOT)
                else:
                    _warn_without_bytecode(f"asset {name}")
                _normalise_mtimes(staging)
                staging.rename(target)
            os.utime(target)  # "last staged", which the pruning below reads
            _prune_stale_assets(assets_dir, name, keep=target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _tree_digest(directory: Path, *, salt: str = "") -> str:
    digest = hashlib.sha256(salt.encode() + b"\0")
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _prune_stale_assets(assets_dir: Path, name: str, *, keep: Path) -> None:
    cutoff = time.time() - ASSET_RETENTION_SECONDS
    for sibling in assets_dir.glob(f"{name}-" + "[0-9a-f]" * 16):  # only this function's, never another's
        if sibling != keep and sibling.is_dir() and sibling.stat().st_mtime < cutoff:
            shutil.rmtree(sibling, ignore_errors=True)


def _normalise_mtimes(directory: Path) -> None:
    # CDK hashes contents, not times; fixed times keep zips reproducible for anyone diffing them.
    for path in directory.rglob("*"):
        os.utime(path, (315_532_800, 315_532_800))


# ------------------------------------------------------------------ bytecode (decision 123)
@functools.cache
def lambda_python() -> str | None:
    """An interpreter of Lambda's Python version (`host_python()` when it is one), or None: bytecode is only valid
    for the minor version that wrote it."""
    python = host_python()
    probe = _output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).strip()
    return python if probe == LAMBDA_PYTHON_VERSION else None


def bytecode_tag(python: str | None) -> str:
    """What an artefact's bytecode depends on besides its sources ("none" when it ships without)."""
    return f"cpython-{LAMBDA_PYTHON_VERSION}/{BYTECODE_INVALIDATION_MODE}" if python is not None else "none"


def compile_bytecode(directory: Path, *, python: str, runtime_root: str) -> None:
    """Compile every module under `directory` as `runtime_root` (where Lambda will find it), deterministically."""
    command = [
        python,
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        BYTECODE_INVALIDATION_MODE,
        "-s",
        str(directory),
        "-p",
        runtime_root,
        str(directory),
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)  # noqa: S603 (fixed argv, no shell)
    if result.returncode != 0:
        raise PackagingError(f"bytecode for {directory.name}: compileall failed: {result.stdout.strip()[-1500:]}")


def _warn_without_bytecode(what: str) -> None:
    print(
        f"packaging: {what} ships without bytecode: no Python {LAMBDA_PYTHON_VERSION} found "
        f"(set {HOST_PYTHON_VARIABLE}); each cold start then compiles every module (decision 123)",
        file=sys.stderr,
    )


# ------------------------------------------------------------------ dependency layer
def _uv() -> str:
    for candidate in (shutil.which("uv"), str(REPO_ROOT / ".tools" / "bin" / "uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise PackagingError("layer: `uv` not found (run `make install`); it exports the runtime requirements")


def runtime_requirements(root: Path = REPO_ROOT) -> tuple[str, ...]:
    """Pinned runtime requirements (`name==version[; marker]`) from uv.lock, sorted."""
    command = [
        _uv(),
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--no-group",
        "infra",
        "--no-group",
        "dev",
        "--no-header",
        "--no-annotate",
    ]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)  # noqa: S603 (fixed argv, no shell)
    if result.returncode != 0:
        raise PackagingError(f"layer: `uv export` failed: {result.stderr.strip()[:500]}")
    lines = [line.split("#", 1)[0].strip() for line in result.stdout.splitlines()]
    requirements = tuple(sorted(line for line in lines if line and not line.startswith("-")))
    unpinned = [r for r in requirements if "==" not in r]
    if unpinned or not requirements:
        raise PackagingError(f"layer: every requirement must be pinned exactly, got {unpinned or 'nothing'}")
    return requirements


def _layer_dir(target: LayerTarget) -> Path:
    return BUILD_DIR / ("layer" if target is LayerTarget.LAMBDA else "layer-host")


def _runs(python: str) -> bool:
    """True when `python` starts (a pyenv shim on PATH may exist and still refuse to run)."""
    try:
        probe = subprocess.run([python, "-c", "pass"], capture_output=True, check=False, timeout=30)  # noqa: S603 (fixed argv, no shell)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _output(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)  # noqa: S603 (fixed argv)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout if result.returncode == 0 else ""


def _pyenv_python(which: Callable[[str], str | None], output: Callable[[list[str]], str]) -> list[str]:
    """Lambda's Python among pyenv's installed versions, newest first (pyenv's shim on PATH only runs the
    versions selected for the directory, so `python3.12` on PATH may refuse to start while 3.12 is installed)."""
    pyenv = which("pyenv")
    if pyenv is None:
        return []
    prefix = f"{LAMBDA_PYTHON_VERSION}."
    versions = [v for v in output([pyenv, "versions", "--bare"]).split() if v.startswith(prefix)]
    versions.sort(key=lambda v: tuple(int(part) if part.isdigit() else -1 for part in v.split(".")), reverse=True)
    root = output([pyenv, "root"]).strip()
    return [f"{root}/versions/{v}/bin/python{LAMBDA_PYTHON_VERSION}" for v in versions] if root else []


def host_python(
    environ: Mapping[str, str] = os.environ,
    which: Callable[[str], str | None] = shutil.which,
    runs: Callable[[str], bool] = _runs,
    output: Callable[[list[str]], str] = _output,
) -> str:
    """The interpreter the host layer is built for, by one portable rule (docs/decisions/041):

    1. `$MM_HOST_PYTHON` when set: it must start, else `PackagingError` (a typo never falls through silently);
    2. else `python<LAMBDA_PYTHON_VERSION>` (`python3.12`) found on PATH, when it starts: Lambda's version;
    3. else Lambda's version installed by pyenv (`pyenv versions`), when one starts;
    4. else the running interpreter, `sys.executable` (the project supports 3.11 and 3.12).
    """
    chosen = environ.get(HOST_PYTHON_VARIABLE, "").strip()
    if chosen:
        found = which(chosen)
        if found is None or not runs(found):
            raise PackagingError(f"layer (host): {HOST_PYTHON_VARIABLE}={chosen!r} is not an interpreter that runs")
        return found
    lambda_like = which(f"python{LAMBDA_PYTHON_VERSION}")
    if lambda_like is not None and runs(lambda_like):
        return lambda_like
    for candidate in _pyenv_python(which, output):
        if runs(candidate):
            return candidate
    return sys.executable


def _has_pip(python: str) -> bool:
    probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)  # noqa: S603 (fixed argv, no shell)
    return probe.returncode == 0


def _install_command(target: LayerTarget, requirements_file: Path, destination: Path) -> list[str]:
    common = ["--target", str(destination), "--requirement", str(requirements_file), "--no-deps"]
    if target is LayerTarget.HOST:
        python = host_python()
        if _has_pip(python):
            return [python, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check", *common]
        return [_uv(), "pip", "install", "--quiet", "--python", python, "--no-compile", *common]
    for python in (host_python(), sys.executable):
        if _has_pip(python):
            return [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--disable-pip-version-check",
                "--platform",
                LAMBDA_PLATFORM,
                "--implementation",
                "cp",
                "--python-version",
                LAMBDA_PYTHON_VERSION,
                "--only-binary=:all:",
                *common,
            ]
    return [
        _uv(),
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--python-platform",
        "aarch64-manylinux2014",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--only-binary",
        ":all:",
        *common,
    ]


def layer_fingerprint(requirements: tuple[str, ...], target: LayerTarget, bytecode: str = "none") -> str:
    platform = f"{LAMBDA_PLATFORM}/cp{LAMBDA_PYTHON_VERSION}" if target is LayerTarget.LAMBDA else host_python()
    digest = hashlib.sha256("\n".join((platform, f"bytecode {bytecode}", *requirements)).encode())
    return digest.hexdigest()


def build_layer(target: LayerTarget = LayerTarget.LAMBDA, *, force: bool = False) -> LayerBuild:
    """Build (or reuse) the dependency layer directory for `target`; returns its root (`<root>/python/`)."""
    requirements = runtime_requirements()
    # Both layers ship bytecode of Lambda's Python (the host one so the import test sees what Lambda does).
    python = lambda_python()
    fingerprint = layer_fingerprint(requirements, target, bytecode_tag(python))
    root = _layer_dir(target)
    marker = root / ".fingerprint"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with _lock(BUILD_DIR / f".{root.name}.lock"):
        if not force and marker.is_file() and marker.read_text().strip() == fingerprint:
            return LayerBuild(root, requirements, fingerprint, rebuilt=False)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=BUILD_DIR))
        try:
            requirements_file = staging / "requirements.txt"
            requirements_file.write_text("\n".join(requirements) + "\n")
            command = _install_command(target, requirements_file, staging / "layer" / "python")
            result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (fixed argv, no shell)
            if result.returncode != 0:
                raise PackagingError(f"layer ({target.value}): install failed: {result.stderr.strip()[-1500:]}")
            for cache in (staging / "layer").rglob("__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)
            if python is not None:
                compile_bytecode(staging / "layer" / "python", python=python, runtime_root=LAMBDA_LAYER_PYTHON)
            else:
                _warn_without_bytecode(f"the dependency layer ({target.value})")
            (staging / "layer" / ".fingerprint").write_text(fingerprint + "\n")
            if root.exists():
                shutil.rmtree(root)
            (staging / "layer").rename(root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return LayerBuild(root, requirements, fingerprint, rebuilt=True)


def layer_distributions(layer_root: Path) -> dict[str, str]:
    """`{normalised distribution name: version}` of everything installed in a layer directory."""
    found: dict[str, str] = {}
    for info in (layer_root / "python").glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[_normalise(name)] = version
    return found


def requirement_versions(requirements: tuple[str, ...]) -> dict[str, str]:
    pinned: dict[str, str] = {}
    for requirement in requirements:
        spec = requirement.split(";", 1)[0].strip()
        name, _, version = spec.partition("==")
        pinned[_normalise(name.split("[", 1)[0])] = version.strip()
    return pinned


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(".", "_")


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An advisory file lock: test workers and a concurrent `cdk synth` never build the same dir at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
