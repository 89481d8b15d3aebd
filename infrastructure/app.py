"""The CDK app: `npx cdk synth -c env=<name>` (default `example`), overrides as env vars or `-c NAME=value`.

Synthesis is offline: no lookups, no credentials. Assets are plain directories built by
`infrastructure.packaging` (no Docker). cdk-nag (AwsSolutions + Serverless) runs on every synth; an
unacknowledged finding fails it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infrastructure.config import (
    DEFAULT_ENVIRONMENT,
    OVERRIDE_NAMES,
    EnvironmentConfig,
    EnvironmentConfigError,
    load_environment,
    overrides_from,
)

# Feature flags set in code (not only cdk.json) so the in-process test synth and `npx cdk synth` agree.
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/core:defaultCrossStackReferences": "strong",  # decision 040: shards import from core
}


def config_from(context: Mapping[str, Any], environ: Mapping[str, str]) -> EnvironmentConfig:
    """The environment named by context `env` with overrides from `environ` and context (context wins)."""
    name = str(context.get("env") or DEFAULT_ENVIRONMENT)
    return load_environment(name, overrides=overrides_from(environ, context))


def build_app(config: EnvironmentConfig, *, outdir: str | None = None, checks: bool = True) -> Any:
    """Build the assets, then an App holding every stack of `config` (not yet synthesized)."""
    import aws_cdk as cdk
    import cdk_nag

    from infrastructure import packaging
    from infrastructure.mm_constructs.functions import PipelineAssets
    from infrastructure.stacks.pipeline import build_pipeline
    from infrastructure.wiring import WiringPlan

    assets = PipelineAssets(
        layer_dir=packaging.build_layer().directory,
        function_dirs={name: packaging.stage_function_asset(name) for name in packaging.FUNCTION_PACKAGES},
    )
    app = cdk.App(outdir=outdir, context=FEATURE_FLAGS) if outdir else cdk.App(context=FEATURE_FLAGS)
    build_pipeline(app, WiringPlan(config), assets)
    if checks:
        cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app), cdk_nag.ServerlessChecks(app))
    return app


def main() -> int:
    import aws_cdk as cdk

    probe = cdk.App()  # reads the CLI's context (-c ...) from the environment the CLI sets
    context = {name: probe.node.try_get_context(name) for name in ("env", *OVERRIDE_NAMES)}
    try:
        config = config_from({k: v for k, v in context.items() if v is not None}, os.environ)
    except EnvironmentConfigError as error:
        print(f"mm-processor: invalid configuration: {error}", file=sys.stderr)
        return 1
    build_app(config).synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
