"""Every cdk-nag acknowledgement matches a finding that is actually raised (decision 049).

cdk-nag drops acknowledged findings inside the plugin and records nothing about which acknowledgement
matched, so the example app is built once more with acknowledgements recorded instead of applied: its
validation report then lists every finding raised, and each acknowledgement must cover one of them.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam

from infrastructure.config import load_environment
from infrastructure.mm_constructs.nag import (
    AcknowledgementRecord,
    RaisedFinding,
    acknowledge,
    acknowledgements_recorded_not_applied,
    raised_findings,
    unmatched_acknowledgements,
)
from infrastructure.packaging import BUILD_DIR

pytestmark = [pytest.mark.synth, pytest.mark.xdist_group("synth")]

OLD_VPC_ACCESS_ACKNOWLEDGEMENT = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]"
)


def _synth_recording(build: Any) -> tuple[list[AcknowledgementRecord], frozenset[RaisedFinding]]:
    """Build with acknowledgements recorded, synthesize (it fails on the now unacknowledged findings), read."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-acknowledgements-", dir=BUILD_DIR))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    with acknowledgements_recorded_not_applied() as acknowledgements:
        app = build(str(outdir))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    return list(acknowledgements), raised_findings(report)


@pytest.fixture(scope="module")
def example() -> tuple[list[AcknowledgementRecord], frozenset[RaisedFinding]]:
    from infrastructure.app import build_app

    return _synth_recording(lambda outdir: build_app(load_environment("example"), outdir=outdir, checks=True))


def test_every_acknowledgement_in_the_example_app_matches_a_raised_finding(
    example: tuple[list[AcknowledgementRecord], frozenset[RaisedFinding]],
) -> None:
    acknowledgements, findings = example
    assert len(acknowledgements) > 20  # the recording really saw the app's acknowledgements
    assert findings
    unmatched = unmatched_acknowledgements(acknowledgements, findings)
    assert unmatched == [], "acknowledgements for findings that are not raised:\n" + "\n".join(
        f"  {ack.path}: {ack.rule_id}" for ack in unmatched
    )


def test_the_managed_vpc_policy_is_neither_attached_nor_acknowledged(
    example: tuple[list[AcknowledgementRecord], frozenset[RaisedFinding]],
) -> None:
    acknowledgements, findings = example
    assert not [f for f in findings if f.rule_id == OLD_VPC_ACCESS_ACKNOWLEDGEMENT]
    assert not [a for a in acknowledgements if a.rule_id == OLD_VPC_ACCESS_ACKNOWLEDGEMENT]


def test_an_acknowledgement_of_a_managed_policy_never_attached_is_reported_unmatched() -> None:
    # Given a Lambda role with an inline statement only, acknowledged for the managed VPC policy (the old defect)
    import cdk_nag

    def build(outdir: str) -> App:
        app = App(outdir=outdir)
        stack = Stack(app, "Probe")
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=["*"]))
        acknowledge(
            role,
            "AwsSolutions-IAM4",
            "The managed VPC access policy manages the ENIs (acknowledged although never attached)",
            applies_to=("Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",),
        )
        acknowledge(role, "AwsSolutions-IAM5", "a raised wildcard finding, acknowledged", applies_to=("Resource::*",))
        from aws_cdk import Validations

        Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
        return app

    # When the acknowledgements are held to the raised findings
    acknowledgements, findings = _synth_recording(build)
    unmatched = unmatched_acknowledgements(acknowledgements, findings)
    # Then the IAM4 acknowledgement is reported, the IAM5 one (its finding is raised) is not
    assert [ack.rule_id for ack in unmatched] == [OLD_VPC_ACCESS_ACKNOWLEDGEMENT]
    assert RaisedFinding("AwsSolutions-IAM5[Resource::*]", "Probe/Role/DefaultPolicy/Resource") in findings


def test_an_acknowledgement_covers_findings_on_its_construct_and_below_only() -> None:
    ack = AcknowledgementRecord("s/Fn", "Serverless-LambdaDLQ", "a reason long enough to be one")
    assert unmatched_acknowledgements([ack], [RaisedFinding("Serverless-LambdaDLQ", "s/Fn/Resource")]) == []
    assert unmatched_acknowledgements([ack], [RaisedFinding("Serverless-LambdaDLQ", "s/Fn2/Resource")]) == [ack]
    assert unmatched_acknowledgements([ack], [RaisedFinding("Serverless-LambdaTracing", "s/Fn/Resource")]) == [ack]


def test_every_acknowledgement_of_the_scorer_token_variant_matches_a_raised_finding() -> None:
    # The refresher exists only in this variant (decision 091): its acknowledgements are held here.
    from infrastructure.app import build_app
    from tests.synth import scorer_token_variant_config

    config = scorer_token_variant_config()
    acknowledgements, findings = _synth_recording(lambda outdir: build_app(config, outdir=outdir, checks=True))
    refresher = [a for a in acknowledgements if "/ScorerToken/" in a.path]
    assert len(refresher) >= 4  # the recording saw the refresher's own acknowledgements
    unmatched = unmatched_acknowledgements(acknowledgements, findings)
    assert unmatched == [], "acknowledgements for findings that are not raised:\n" + "\n".join(
        f"  {ack.path}: {ack.rule_id}" for ack in unmatched
    )
