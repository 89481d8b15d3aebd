"""How the functions are traced (decision 112): Lambda's active tracing alone, or OpenTelemetry through the ADOT layer.

No tracing SDK is on the functions' import path. `active` (the default) is Lambda's own X-Ray segment per invocation
(init, invocation, overhead): nothing runs in the function. `otel` adds AWS's ADOT Lambda layer for Python
(`AWSOpenTelemetryDistroPython`) and `AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument`, which instruments botocore and
requests from outside the code: a span per AWS and HTTP call, paid for in cold start. Active tracing stays on in
both modes. The layer is regional and named per architecture, so its ARN is given per environment.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from infrastructure.config.base import ARN, ConfigModel

# What `otel` sets on every function: the ADOT layer's start-up wrapper (its documented path).
OTEL_EXEC_WRAPPER = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}
_LAYER_ARN = ARN + r"lambda:(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d):\d{12}:layer:[A-Za-z0-9_-]+:\d+$"


class TracingMode(StrEnum):
    ACTIVE = "active"  # Lambda's X-Ray segments only
    OTEL = "otel"  # plus the ADOT layer's OpenTelemetry spans


class TracingSettings(ConfigModel):
    mode: TracingMode = TracingMode.ACTIVE
    # e.g. arn:aws:lambda:us-east-1:615299751070:layer:AWSOpenTelemetryDistroPython:<version> (the functions' region)
    adot_layer_arn: str | None = Field(default=None, pattern=_LAYER_ARN)

    @model_validator(mode="after")
    def _layer_only_with_otel(self) -> Self:
        if self.mode is TracingMode.OTEL and not self.adot_layer_arn:
            raise ValueError("tracing.adotLayerArn is required for tracing.mode otel (the ADOT layer of the region)")
        if self.mode is TracingMode.ACTIVE and self.adot_layer_arn:
            raise ValueError("tracing.adotLayerArn is set but tracing.mode is active: remove it or choose otel")
        if self.adot_layer_arn and "amd64" in self.adot_layer_arn.rpartition(":layer:")[2]:
            raise ValueError("tracing.adotLayerArn names an amd64 layer: the functions run on arm64")
        return self

    def layer_refusal(self, region: str) -> str | None:
        """Why the layer cannot serve functions in `region` (Lambda layers are regional), or None."""
        if self.adot_layer_arn is None:
            return None
        layer_region = self.adot_layer_arn.split(":")[3]
        if layer_region != region:
            return f"tracing.adotLayerArn is in {layer_region}, the functions in {region}: use the layer of {region}"
        return None

    @property
    def exec_environment(self) -> dict[str, str]:
        """Environment variables Lambda's runtime reads (not the function's settings) for this mode."""
        return dict(OTEL_EXEC_WRAPPER) if self.mode is TracingMode.OTEL else {}
