"""Tracing by configuration (decision 112): Lambda's active tracing by default, OpenTelemetry through the ADOT layer
as an option, never a tracing SDK in the code.

The config checks need no synth; the template checks reuse the session's example synth (active) and the
scorer-token variant (otel, cdk-nag on).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infrastructure.config import EnvironmentConfigError, TracingMode, load_environment, parse_environment
from tests.infrastructure.templates import functions
from tests.synth import ADOT_LAYER_ARN, Synthesized, synth_scorer_token_variant

WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"
AMD64_LAYER_ARN = "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-python-amd64-ver-1-32-0:1"


def raw_example(**tracing: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(load_environment("example").model_dump_json(by_alias=True, exclude_none=True))
    raw["tracing"] = tracing
    return raw


def pipeline_functions(synthesized: Synthesized) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {name: fn for name, fn in functions(synthesized).items() if name.startswith("mm-example-")}


# ------------------------------------------------------------------ config
def test_an_environment_without_a_tracing_block_is_traced_active_with_no_layer() -> None:
    tracing = load_environment("example").tracing
    assert tracing.mode is TracingMode.ACTIVE
    assert tracing.adot_layer_arn is None
    assert tracing.exec_environment == {}


def test_otel_takes_the_layer_and_sets_the_documented_wrapper() -> None:
    tracing = parse_environment(raw_example(mode="otel", adotLayerArn=ADOT_LAYER_ARN)).tracing
    assert tracing.mode is TracingMode.OTEL
    assert tracing.exec_environment == {WRAPPER: "/opt/otel-instrument"}


@pytest.mark.parametrize(
    ("tracing", "refusal"),
    [
        ({"mode": "otel"}, r"tracing\.adotLayerArn is required for tracing\.mode otel"),
        ({"mode": "active", "adotLayerArn": ADOT_LAYER_ARN}, r"tracing\.adotLayerArn is set but tracing\.mode is"),
        ({"mode": "otel", "adotLayerArn": ADOT_LAYER_ARN.replace("us-east-1", "eu-west-1")}, r"is in eu-west-1"),
        ({"mode": "otel", "adotLayerArn": AMD64_LAYER_ARN}, r"amd64 layer: the functions run on arm64"),
        ({"mode": "otel", "adotLayerArn": "AWSOpenTelemetryDistroPython"}, r"tracing\.adotLayerArn"),
        ({"mode": "xray-sdk"}, r"tracing\.mode"),
    ],
)
def test_a_tracing_block_that_cannot_work_is_refused_by_name(tracing: dict[str, str], refusal: str) -> None:
    with pytest.raises(EnvironmentConfigError, match=refusal):
        parse_environment(raw_example(**tracing))


# ------------------------------------------------------------------ templates
@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_by_default_every_function_is_active_traced_with_only_the_dependency_layer(synthesized: Synthesized) -> None:
    fns = pipeline_functions(synthesized)
    assert fns
    for name, (_, _, fn) in fns.items():
        props = fn["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert len(props["Layers"]) == 1, name
        assert WRAPPER not in props.get("Environment", {}).get("Variables", {}), name


@pytest.mark.synth
@pytest.mark.xdist_group("synth")
def test_otel_adds_the_adot_layer_and_its_wrapper_to_every_function_and_keeps_active_tracing() -> None:
    # Given an environment with tracing.mode otel, synthesized with cdk-nag on (an unacknowledged finding fails it)
    variant = synth_scorer_token_variant()
    fns = pipeline_functions(variant)
    assert "mm-example-scorer-token-refresher" in fns
    for name, (_, _, fn) in fns.items():
        props = fn["Properties"]
        # Then each function still has Lambda's active tracing, its dependency layer and the ADOT layer after it
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert len(props["Layers"]) == 2, name
        assert props["Layers"][1] == ADOT_LAYER_ARN, name
        # And Lambda starts it through the layer's wrapper
        assert props["Environment"]["Variables"][WRAPPER] == "/opt/otel-instrument", name
