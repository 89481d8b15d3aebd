"""A scheduled sweep, the sweeper's common invocation, parses no Parameter Store change event, so its cold start
builds none of that event's models (issue 13): the handler tells an `aws.ssm` event by the pydantic-free
`sweeper_lambda.ssm_event_names` and imports `sweeper_lambda.parameter_change` only to parse one (decision 121;
`test_parameter_change_event.py` holds that path)."""

from __future__ import annotations

from sweeper_lambda import parameter_change, ssm_event_names
from tests.unit.test_cold_imports import loaded_modules


def test_a_cold_sweeper_import_loads_no_parameter_change_model_module() -> None:
    # When the sweeper's handler is imported in a fresh interpreter
    modules = loaded_modules("sweeper_lambda.handler")
    # Then the event's names are there and its models are not
    assert "sweeper_lambda.ssm_event_names" in modules
    assert "sweeper_lambda.parameter_change" not in modules


def test_the_parameter_change_module_re_exports_the_very_same_names() -> None:
    for name in ssm_event_names.__all__:
        assert getattr(parameter_change, name) is getattr(ssm_event_names, name)
