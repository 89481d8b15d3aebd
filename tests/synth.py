"""Synthesize the CDK app once per test session (jsii start-up alone costs ~12 s).

    from tests.synth import synth_example
    result = synth_example()             # functools.cache'd: one synth per process
    result.templates["mm-example-core"]  # template dicts keyed by stack name
    result.assembly_dir                  # the cloud assembly (manifest.json, validation-report.json, assets)
    synth_environment("dev")             # another shipped environment, cached the same way

Tests that use it belong on one xdist worker: mark them `@pytest.mark.xdist_group("synth")`.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infrastructure.config import EnvironmentConfig, load_environment
from infrastructure.packaging import BUILD_DIR


@dataclass(frozen=True)
class Synthesized:
    config: EnvironmentConfig
    templates: dict[str, dict[str, Any]]  # stack name -> CloudFormation template
    assembly_dir: Path

    def __iter__(self) -> Any:  # `templates, assembly_dir = synth_example()` works too
        return iter((self.templates, self.assembly_dir))


def synth(config: EnvironmentConfig, *, label: str, checks: bool = True) -> Synthesized:
    """Synthesize `config` into a fresh `build/cdk.out-<label>-*` directory (uncached).

    The assembly copies every asset and the layer (~100 MB), so it is removed when the process exits:
    test sessions must not fill a developer's disk.
    """
    from infrastructure.app import build_app

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    outdir = Path(tempfile.mkdtemp(prefix=f"cdk.out-{label}-", dir=BUILD_DIR))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    build_app(config, outdir=str(outdir), checks=checks).synth()
    manifest = json.loads((outdir / "manifest.json").read_text())
    templates: dict[str, dict[str, Any]] = {}
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") == "aws:cloudformation:stack":
            template_file = artifact["properties"]["templateFile"]
            stack_name = artifact["properties"].get("stackName") or Path(template_file).name.split(".")[0]
            templates[stack_name] = json.loads((outdir / template_file).read_text())
    return Synthesized(config=config, templates=templates, assembly_dir=outdir)


@functools.cache
def synth_example() -> Synthesized:
    """The `example` environment, synthesized once per process with cdk-nag on."""
    return synth(load_environment("example"), label="example")


@functools.cache
def synth_environment(name: str) -> Synthesized:
    """A shipped environment (`infrastructure/config/<name>.json`), with cdk-nag on, once per process:
    `dev` is the v6 profile, `staging` serves both platforms (decision 084)."""
    if name == "example":
        return synth_example()
    return synth(load_environment(name), label=name)


@functools.cache
def synth_variant() -> Synthesized:
    """The paths the example does not take, synthesized once per process (cdk-nag off: test_kafka_auth runs it):
    Kafka mTLS (the certificate monitor, secrets under a customer-managed key) and challenges in the insecure and
    the parameter-reference credentials modes."""
    from infrastructure.config import parse_environment

    raw: dict[str, Any] = json.loads(load_environment("example").model_dump_json(by_alias=True, exclude_none=True))
    raw["kafka"].update(
        authentication="mtls",
        clientCertificateSecretArn=(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:mm-processor/example/kafka-client-certificate-AbCdEf"
        ),
        secretKmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    )
    raw["challenges"][0]["scorerCredentialsMode"] = "environment_token_insecure"
    raw["challenges"][1]["scorerCredentialsMode"] = "parameter_reference"
    return synth(parse_environment(raw), label="variant", checks=False)


# The shape of AWS's ADOT Lambda layer for Python in the example's region (a reference: nothing is fetched).
ADOT_LAYER_ARN = "arn:aws:lambda:us-east-1:615299751070:layer:AWSOpenTelemetryDistroPython:16"

AUTH0_CREDENTIALS_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mm-processor/example/auth0-AbCdEf"


def scorer_token_variant_config() -> EnvironmentConfig:
    """The example with the Auth0-proxy token source, a Topcoder ecs-runner challenge and the scorer-token
    refresher that its task definition's ACCESS_TOKEN needs (decision 091); traced with OpenTelemetry through the
    ADOT layer (decision 112), so cdk-nag sees that mode too."""
    from infrastructure.config import parse_environment

    raw: dict[str, Any] = json.loads(load_environment("example").model_dump_json(by_alias=True, exclude_none=True))
    raw["token"] = {
        "source": "auth0_proxy",
        "auth0ProxyUrl": "https://auth0proxy.example.com/token",
        "auth0CredentialsSecretArn": AUTH0_CREDENTIALS_SECRET_ARN,
        "scorerTokenParameter": True,
    }
    raw["challenges"][0]["scorerEnvironment"] = "topcoder_ecs_runner"
    raw["tracing"] = {"mode": "otel", "adotLayerArn": ADOT_LAYER_ARN}
    return parse_environment(raw)


@functools.cache
def synth_scorer_token_variant() -> Synthesized:
    """`scorer_token_variant_config()`, once per process, with cdk-nag on (the refresher's role and rule)."""
    return synth(scorer_token_variant_config(), label="scorer-token", checks=True)
