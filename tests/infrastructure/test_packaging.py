"""Docker-free packaging: per-function assets, the cached dependency layer, handlers importable from them alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from infrastructure import packaging
from infrastructure.aws_calls import HANDLERS_BY_FUNCTION
from infrastructure.config import load_environment, parse_environment
from infrastructure.wiring import (
    CERTIFICATE_MONITOR_HANDLER,
    CHALLENGE_HANDLER,
    COMPLETION_HANDLER,
    ROUTER_HANDLER,
    SCORER_TOKEN_REFRESHER_HANDLER,
    SWEEPER_HANDLER,
    ResourceRefs,
    WiringPlan,
)
from tests.synth import scorer_token_variant_config

# The layer directories are shared build outputs: keep their users on one worker.
pytestmark = pytest.mark.xdist_group("synth")

REFS = ResourceRefs(
    sns_topic_arn="arn:aws:sns:us-east-1:123456789012:mm-example-submissions",
    challenge_table_name="mm-example-challenges",
    status_table_name="mm-example-submission-status",
    audit_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/mm-example-router-audit",
)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("asset", "package"), sorted(packaging.FUNCTION_PACKAGES.items()))
def test_function_asset_holds_only_its_package_and_the_shared_ones(asset: str, package: str) -> None:
    directory = packaging.stage_function_asset(asset)
    expected = [package, *packaging.SHARED_PACKAGES]
    assert sorted(p.name for p in directory.iterdir()) == sorted(expected)
    shipped_tag = f".cpython-{packaging.LAMBDA_PYTHON_VERSION.replace('.', '')}.pyc"
    for path in _files(directory):
        # No stray bytecode from this checkout: only the build's own, of Lambda's Python, beside its source
        if "__pycache__" in path.parts:
            assert path.name.endswith(shipped_tag)
            assert (path.parent.parent / f"{path.name.removesuffix(shipped_tag)}.py").is_file()
        else:
            assert path.suffix != ".pyc"
        assert "tests" not in path.parts
    assert (directory / package / "__init__.py").is_file()


def test_an_unknown_asset_is_refused_by_name() -> None:
    with pytest.raises(packaging.PackagingError, match="unknown function asset 'nope'"):
        packaging.stage_function_asset("nope")


def _fake_repo(root: Path, body: str = "VALUE = 1\n") -> Path:
    for package in ("router_lambda", *packaging.SHARED_PACKAGES):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text(body)
    return root


def test_restaging_unchanged_sources_never_replaces_the_directory_a_concurrent_synth_reads(tmp_path: Path) -> None:
    # Given an asset staged once (another worker's CDK may be fingerprinting it right now)
    root = _fake_repo(tmp_path / "repo")
    first = packaging.stage_function_asset("router", root=root, assets_dir=tmp_path / "assets")
    inode = first.stat().st_ino
    # When it is staged again from the same sources
    second = packaging.stage_function_asset("router", root=root, assets_dir=tmp_path / "assets")
    # Then the very same directory is returned, untouched: never removed and re-created under a reader
    assert second == first
    assert second.stat().st_ino == inode
    assert sorted(p.name for p in (tmp_path / "assets").iterdir() if not p.name.startswith(".")) == [first.name]


def test_changed_sources_get_a_new_directory_and_the_old_one_survives(tmp_path: Path) -> None:
    root = _fake_repo(tmp_path / "repo")
    old = packaging.stage_function_asset("router", root=root, assets_dir=tmp_path / "assets")
    _fake_repo(root, body="VALUE = 2\n")
    new = packaging.stage_function_asset("router", root=root, assets_dir=tmp_path / "assets")
    assert new != old
    assert (new / "router_lambda" / "__init__.py").read_text() == "VALUE = 2\n"
    assert (old / "router_lambda" / "__init__.py").read_text() == "VALUE = 1\n"  # a synth still reading it is safe


def test_an_asset_nobody_staged_for_a_day_is_pruned(tmp_path: Path) -> None:
    root = _fake_repo(tmp_path / "repo")
    assets = tmp_path / "assets"
    stale = packaging.stage_function_asset("router", root=root, assets_dir=assets)
    day_ago = stale.stat().st_mtime - packaging.ASSET_RETENTION_SECONDS - 60
    os.utime(stale, (day_ago, day_ago))
    _fake_repo(root, body="VALUE = 2\n")
    recent = packaging.stage_function_asset("router", root=root, assets_dir=assets)
    assert recent.is_dir()
    assert not stale.exists()


def test_layer_fingerprint_follows_the_requirement_set_and_target() -> None:
    requirements = ("pydantic==2.14.3", "requests==2.34.2")
    base = packaging.layer_fingerprint(requirements, packaging.LayerTarget.LAMBDA)
    assert packaging.layer_fingerprint(requirements, packaging.LayerTarget.LAMBDA) == base
    assert packaging.layer_fingerprint(("pydantic==2.14.2", "requests==2.34.2"), packaging.LayerTarget.LAMBDA) != base
    assert packaging.layer_fingerprint(requirements, packaging.LayerTarget.HOST) != base


def test_runtime_requirements_are_exact_pins_from_the_lock() -> None:
    requirements = packaging.runtime_requirements()
    pinned = packaging.requirement_versions(requirements)
    assert pinned["pydantic"] == "2.14.3"
    assert pinned["aws_lambda_powertools"] == "3.37.0"
    assert all("==" in r for r in requirements)
    assert "moto" not in pinned  # no dev or infra dependency leaks into the layer
    assert "aws_cdk_lib" not in pinned


def test_lambda_layer_is_cached_and_built_for_aarch64_with_the_locked_distributions() -> None:
    first = packaging.build_layer()
    second = packaging.build_layer()
    assert second.rebuilt is False
    assert second.fingerprint == first.fingerprint
    site = second.directory / "python"
    assert list(site.glob("pydantic_core/*aarch64*.so"))
    assert not list(site.glob("pydantic_core/*x86_64*.so"))
    assert packaging.layer_distributions(second.directory) == packaging.requirement_versions(second.requirements)


def _which(found: dict[str, str]) -> Callable[[str], str | None]:
    return found.get


def test_host_python_is_the_named_interpreter_when_mm_host_python_is_set() -> None:
    python = packaging.host_python(
        {"MM_HOST_PYTHON": "python3.13"},
        which=_which({"python3.13": "/opt/py/bin/python3.13", "python3.12": "/usr/bin/python3.12"}),
        runs=lambda _: True,
    )
    assert python == "/opt/py/bin/python3.13"


def test_a_named_interpreter_that_does_not_run_is_refused_by_name() -> None:
    with pytest.raises(packaging.PackagingError, match="MM_HOST_PYTHON='python9'"):
        packaging.host_python({"MM_HOST_PYTHON": "python9"}, which=_which({}), runs=lambda _: True)
    with pytest.raises(packaging.PackagingError, match="MM_HOST_PYTHON='/opt/broken'"):
        packaging.host_python(
            {"MM_HOST_PYTHON": "/opt/broken"}, which=_which({"/opt/broken": "/opt/broken"}), runs=lambda _: False
        )


def test_host_python_is_lambdas_version_on_path_when_it_runs() -> None:
    which = _which({f"python{packaging.LAMBDA_PYTHON_VERSION}": "/usr/bin/python3.12"})
    assert packaging.host_python({}, which=which, runs=lambda _: True) == "/usr/bin/python3.12"


def test_host_python_falls_back_to_the_running_interpreter() -> None:
    # Given no python3.12 on PATH, or one that does not start (a pyenv shim for a version not selected)
    shim = _which({"python3.12": "/root/.pyenv/shims/python3.12"})
    assert packaging.host_python({}, which=_which({}), runs=lambda _: True) == sys.executable
    assert packaging.host_python({}, which=shim, runs=lambda _: False) == sys.executable
    assert packaging.host_python({"MM_HOST_PYTHON": " "}, which=_which({}), runs=lambda _: True) == sys.executable


def test_the_host_interpreter_check_runs_the_interpreter() -> None:
    assert packaging._runs(sys.executable) is True
    assert packaging._runs("/nonexistent/python") is False


def mtls_plan() -> WiringPlan:
    raw = json.loads(load_environment("example").model_dump_json(by_alias=True, exclude_none=True))
    raw["kafka"].update(
        authentication="mtls",
        clientCertificateSecretArn="arn:aws:secretsmanager:us-east-1:123456789012:secret:mm/example/kafka-cert-AbCdEf",
        secretKmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    )
    return WiringPlan(parse_environment(raw))


def test_each_handler_imports_with_only_its_asset_and_the_layer(tmp_path: Path) -> None:
    # Given the same requirement set built for this machine, and the Lambda one
    host = packaging.build_layer(packaging.LayerTarget.HOST)
    lambda_layer = packaging.build_layer()
    assert packaging.layer_distributions(host.directory) == packaging.layer_distributions(lambda_layer.directory)
    plan = WiringPlan(load_environment("example"))
    challenge = plan.config.challenges[0]
    cases = {
        ROUTER_HANDLER: ("router", plan.router_settings(REFS).to_env()),
        CHALLENGE_HANDLER: ("challenge", plan.challenge_settings(challenge, REFS).to_env()),
        COMPLETION_HANDLER: ("completion", plan.completion_settings(REFS).to_env()),
        SWEEPER_HANDLER: ("sweeper", plan.sweeper_settings(REFS).to_env()),
        CERTIFICATE_MONITOR_HANDLER: ("certificate-monitor", mtls_plan().certificate_monitor_settings().to_env()),
        SCORER_TOKEN_REFRESHER_HANDLER: (
            "scorer-token-refresher",
            WiringPlan(scorer_token_variant_config()).scorer_token_refresher_settings().to_env(),
        ),
    }
    assert set(cases) == set(HANDLERS_BY_FUNCTION.values())  # every function the stacks deploy
    python = packaging.host_python()
    failures: dict[str, str] = {}
    for handler, (asset, environment) in cases.items():
        module, _, function = handler.rpartition(".")
        # a private copy, built the way the stacks build theirs: a concurrent `cdk synth` re-stages build/assets
        asset_dir = packaging.stage_function_asset(asset, assets_dir=tmp_path / "assets")
        # When the handler module is imported in an isolated interpreter (-I -S: no site-packages, no cwd; -B: it
        # writes no bytecode, as on Lambda's read-only /var/task and /opt)
        code = (
            "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import importlib; "
            f"{COUNT_SOURCE_COMPILES}"
            "m = importlib.import_module(sys.argv[3]); assert callable(getattr(m, sys.argv[4])); "
            "assert all(not p.endswith('site-packages') or p == sys.argv[2] for p in sys.path); "
            "compiled = [p for p in _compiled if p.startswith((sys.argv[1], sys.argv[2]))]; "
            "assert not compiled or sys.argv[5] == 'none', f'compiled from source: {compiled[:5]}'"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **environment,
        }
        result = subprocess.run(
            [
                *(python, "-I", "-S", "-B", "-c", code, str(asset_dir), str(host.directory / "python")),
                *(module, function, packaging.bytecode_tag(packaging.lambda_python())),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            failures[handler] = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "?"
    # Then every handler imports (a missing handler module fails here, as it should), and, where the build had
    # Lambda's Python, without compiling a module of its asset or the layer from source
    assert failures == {}
    assert sys.version_info >= (3, 11)


# Run in a child before its imports: records the path of every module compiled from source rather than loaded from
# its bytecode (`SourceLoader.get_code` calls `source_to_code` only when no valid `.pyc` is found).
COUNT_SOURCE_COMPILES = (
    "import importlib._bootstrap_external as _ext; _compiled = []; _to_code = _ext.SourceLoader.source_to_code; "
    "_ext.SourceLoader.source_to_code = lambda self, data, path, *a, **k: "
    "(_compiled.append(str(path)), _to_code(self, data, path, *a, **k))[1]; "
)


def _lambda_python_or_skip() -> str:
    python = packaging.lambda_python()
    if python is None:
        pytest.skip(f"no Python {packaging.LAMBDA_PYTHON_VERSION} here: the artefacts ship without bytecode")
    return python


def _pyc_headers(root: Path) -> dict[str, bytes]:
    """{module path: the first 8 bytes of its Lambda-version `.pyc` (b"" when there is none)} under `root`."""
    tag = f"cpython-{packaging.LAMBDA_PYTHON_VERSION.replace('.', '')}"
    headers = {}
    for source in root.rglob("*.py"):
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        headers[source.relative_to(root).as_posix()] = pyc.read_bytes()[:8] if pyc.is_file() else b""
    return headers


def test_assets_and_the_layer_ship_hash_checked_bytecode_of_lambdas_python(tmp_path: Path) -> None:
    python = _lambda_python_or_skip()
    magic = subprocess.run(
        [python, "-c", "import importlib.util, sys; sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"],
        capture_output=True,
        check=True,
    ).stdout
    # Given a staged asset and the Lambda layer
    asset = packaging.stage_function_asset("completion", assets_dir=tmp_path / "assets")
    layer = packaging.build_layer().directory / "python"
    for root in (asset, layer):
        headers = _pyc_headers(root)
        # Then every module has a .pyc of Lambda's Python (its magic number), checked against its source's hash
        # (PEP 552 flags 0b11: hash-based, check_source), so no time stamp can make Python ignore it or trust it
        assert headers
        assert {path for path, header in headers.items() if header[:4] != magic} == set()
        assert {int.from_bytes(header[4:8], "little") for header in headers.values()} == {0b11}


def test_the_bytecode_is_the_same_on_every_build_so_the_asset_hash_is(tmp_path: Path) -> None:
    _lambda_python_or_skip()
    # Given the same sources staged twice, into two places (each compiles its own copy)
    first = packaging.stage_function_asset("router", assets_dir=tmp_path / "one")
    second = packaging.stage_function_asset("router", assets_dir=tmp_path / "two")
    # Then the directories, bytecode included, are byte for byte the same (CDK hashes the contents)
    assert first.name == second.name
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert [p for p in files if p.suffix == ".pyc"]
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / p).read_bytes() == (second / p).read_bytes() for p in files)


def test_the_compile_probe_sees_a_module_without_bytecode(tmp_path: Path) -> None:
    python = _lambda_python_or_skip()
    # Given a package with no .pyc
    package = tmp_path / "plain_package"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    # When it is imported with -B under the probe, then the probe names it (the check above can fail)
    code = f"import sys; sys.path[:0] = [sys.argv[1]]; {COUNT_SOURCE_COMPILES}import plain_package; print(_compiled)"
    out = subprocess.run([python, "-I", "-S", "-B", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert str(package / "__init__.py") in out.stdout


def test_host_python_is_lambdas_version_installed_by_pyenv_when_the_shim_refuses() -> None:
    # Given pyenv's shim for python3.12 on PATH that refuses (3.12 is installed but not selected here)
    which = _which({"python3.12": "/pyenv/shims/python3.12", "pyenv": "/usr/bin/pyenv"})
    answers = {
        ("/usr/bin/pyenv", "versions", "--bare"): "3.10.13\n3.11.9\n3.12.1\n3.12.10\n",
        ("/usr/bin/pyenv", "root"): "/pyenv\n",
    }

    def runs(python: str) -> bool:
        return python.startswith("/pyenv/versions/")

    # Then the newest installed 3.12 is the host layer's interpreter
    chosen = packaging.host_python({}, which=which, runs=runs, output=lambda argv: answers.get(tuple(argv), ""))
    assert chosen == "/pyenv/versions/3.12.10/bin/python3.12"
    # And without pyenv the running interpreter is
    assert packaging.host_python({}, which=_which({}), runs=runs, output=lambda argv: "") == sys.executable


def test_a_source_edited_after_the_build_runs_instead_of_its_old_bytecode(tmp_path: Path) -> None:
    python = _lambda_python_or_skip()
    # Given a package compiled the way the artefacts are
    package = tmp_path / "edited_package"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    packaging.compile_bytecode(tmp_path, python=python, runtime_root=packaging.LAMBDA_TASK_ROOT)
    code = f"import sys; sys.path[:0] = [sys.argv[1]]; {COUNT_SOURCE_COMPILES}import edited_package as p; "
    code += "print(p.VALUE, len(_compiled))"

    def imported() -> str:
        out = subprocess.run([python, "-I", "-S", "-B", "-c", code, str(tmp_path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    # Then it imports from its bytecode; and once its source is edited (Lambda's console editor), the edit runs
    assert imported() == "1 0"
    (package / "__init__.py").write_text("VALUE = 2\n")
    assert imported() == "2 1"
