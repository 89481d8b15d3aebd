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
    for path in _files(directory):
        assert "__pycache__" not in path.parts
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
        # When the handler module is imported in an isolated interpreter (-I -S: no site-packages, no cwd)
        code = (
            "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import importlib; "
            "m = importlib.import_module(sys.argv[3]); assert callable(getattr(m, sys.argv[4])); "
            "assert all(not p.endswith('site-packages') or p == sys.argv[2] for p in sys.path)"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **environment,
        }
        result = subprocess.run(
            [python, "-I", "-S", "-c", code, str(asset_dir), str(host.directory / "python"), module, function],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            failures[handler] = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "?"
    # Then every handler imports (a missing handler module fails here, as it should)
    assert failures == {}
    assert sys.version_info >= (3, 11)


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
