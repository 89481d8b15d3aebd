"""checkov over every synthesized template (the example, and a variant taking the mTLS path); findings only as
accepted in infrastructure/checkov-accepted.yaml.

checkov runs from its own locked tool project (tools/checkov: its boto3 pin conflicts with the project's),
through `uv run --frozen`, which installs it into tools/checkov/.venv on first use (docs/decisions/058).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infrastructure.packaging import REPO_ROOT, _uv
from tests.synth import synth_example, synth_scorer_token_variant, synth_variant

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

CHECKOV_PROJECT = REPO_ROOT / "tools" / "checkov"
ACCEPTED_FILE = REPO_ROOT / "infrastructure" / "checkov-accepted.yaml"


@dataclass(frozen=True)
class Finding:
    check: str
    stack: str
    type: str
    logical_id: str
    title: str

    def __str__(self) -> str:
        return f"{self.check} {self.stack}/{self.logical_id} ({self.type}): {self.title}"


@dataclass(frozen=True)
class Accepted:
    check: str
    type: str
    logical_id: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        return (
            self.check == finding.check
            and self.type == finding.type
            and fnmatch.fnmatchcase(finding.logical_id, self.logical_id)
        )

    def __str__(self) -> str:
        return f"{self.check} {self.type} {self.logical_id}"


def load_accepted(path: Path = ACCEPTED_FILE) -> list[Accepted]:
    entries = yaml.safe_load(path.read_text())["accepted"]
    accepted = [Accepted(**entry) for entry in entries]
    for entry in accepted:
        assert len(entry.reason.split()) >= 8, f"{path.name}: {entry}: give a real reason"
    return accepted


def run_checkov(templates: list[Path]) -> list[dict[str, Any]]:
    """checkov's failed checks for `templates` (one run: the start-up costs seconds)."""
    env = {name: value for name, value in os.environ.items() if name not in {"UV_PROJECT_ENVIRONMENT", "VIRTUAL_ENV"}}
    command = [
        _uv(),
        "run",
        "--project",
        str(CHECKOV_PROJECT),
        "--frozen",
        "--quiet",
        "checkov",
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--quiet",
        "--skip-download",  # no Prisma Cloud look-ups: the checks are in the pinned package
        "--file",
        *(str(template) for template in templates),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    # checkov exits 1 when a check fails; anything else (or no JSON) is a broken run, not a finding.
    if result.returncode not in (0, 1) or not result.stdout.strip():
        pytest.fail(f"checkov did not run (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert all(report["summary"]["parsing_errors"] == 0 for report in reports), reports
    scanned = sum(report["summary"]["resource_count"] for report in reports)
    assert scanned > 0, "checkov scanned no resources"
    return [check for report in reports for check in report["results"]["failed_checks"]]


def findings_of(failed_checks: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for check in failed_checks:
        resource_type, _, logical_id = check["resource"].partition(".")
        stack = Path(check["file_abs_path"]).name.removesuffix(".template.json")
        findings.append(Finding(check["check_id"], stack, resource_type, logical_id, check["check_name"]))
    return findings


def judge(findings: list[Finding], accepted: list[Accepted]) -> list[str]:
    """Problems: findings nobody accepted, findings accepted twice, and accepted entries that match nothing."""
    problems = []
    used: set[Accepted] = set()
    for finding in sorted(findings, key=str):
        matching = [entry for entry in accepted if entry.matches(finding)]
        if not matching:
            problems.append(f"new checkov finding: {finding}")
        elif len(matching) > 1:
            problems.append(f"{finding} is accepted more than once: {', '.join(map(str, matching))}")
        used.update(matching)
    problems.extend(f"stale acceptance (matches no finding): {entry}" for entry in accepted if entry not in used)
    seen: set[tuple[str, str, str]] = set()
    for entry in accepted:
        key = (entry.check, entry.type, entry.logical_id)
        if key in seen:
            problems.append(f"accepted twice in {ACCEPTED_FILE.name}: {entry}")
        seen.add(key)
    return problems


def test_checkov_finds_nothing_but_the_accepted_findings() -> None:
    # Every template of the example and of the variant that takes the other paths (mTLS: the certificate monitor)
    templates: list[Path] = []
    for synthesized in (synth_example(), synth_variant(), synth_scorer_token_variant()):
        found = sorted(synthesized.assembly_dir.glob("*.template.json"))
        assert {path.name.removesuffix(".template.json") for path in found} == set(synthesized.templates)
        templates.extend(found)
    findings = findings_of(run_checkov(templates))
    problems = judge(findings, load_accepted())
    assert not problems, "\n".join(problems)


def test_a_new_finding_and_a_stale_acceptance_both_fail() -> None:
    accepted = [
        Accepted("CKV_AWS_18", "AWS::S3::Bucket", "RouterFailureBucket*", "reason " * 8),
        Accepted("CKV_AWS_119", "AWS::DynamoDB::Table", "*", "reason " * 8),
    ]
    findings = [
        Finding("CKV_AWS_18", "mm-x-core", "AWS::S3::Bucket", "RouterFailureBucketA9779ECD", "access logging"),
        Finding("CKV_AWS_158", "mm-x-core", "AWS::Logs::LogGroup", "RouterLogsFF27753A", "log group KMS"),
    ]
    assert judge(findings, accepted) == [
        "new checkov finding: CKV_AWS_158 mm-x-core/RouterLogsFF27753A (AWS::Logs::LogGroup): log group KMS",
        "stale acceptance (matches no finding): CKV_AWS_119 AWS::DynamoDB::Table *",
    ]
