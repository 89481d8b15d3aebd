"""A model module's names apart from its models (issue 13, decision 112): a function that only names an event or an
entry takes the names from a pydantic-free module, which the model module re-exports (one source of each), and
builds the models only where it parses or builds one.

Each names module is imported in a fresh interpreter (`loaded_modules`), as is each handler that uses one.
"""

from __future__ import annotations

import importlib

import pytest

from tests.unit.test_cold_imports import loaded_modules

# Each names module and the model module that re-exports every name in it.
NAMES_MODULES = {
    "mm_contracts.models.ecs_names": "mm_contracts.models.ecs_event",
    "mm_contracts.models.audit_names": "mm_contracts.models.audit",
    "mm_contracts.models.report_due_names": "mm_contracts.models.report_due",
    "sweeper_lambda.ssm_event_names": "sweeper_lambda.parameter_change",
}
# The names modules each handler's cold import loads without their model modules: the sweeper writes synthetic ECS
# events and tells an `aws.ssm` event (parsing one imports `parameter_change`); the completion function tells a
# report-due event (parsing one imports `report_due`); three write an operator's history entry.
NAMES_WITHOUT_MODELS = {
    "sweeper_lambda.handler": (
        "mm_contracts.models.ecs_names",
        "mm_contracts.models.audit_names",
        "sweeper_lambda.ssm_event_names",
    ),
    "completion_lambda.handler": ("mm_contracts.models.audit_names", "mm_contracts.models.report_due_names"),
    "challenge_lambda.handler": ("mm_contracts.models.audit_names",),
}


@pytest.mark.parametrize("names_module", sorted(NAMES_MODULES))
def test_the_model_module_re_exports_the_very_same_names(names_module: str) -> None:
    names, models = importlib.import_module(names_module), importlib.import_module(NAMES_MODULES[names_module])
    for name in names.__all__:
        assert getattr(models, name) is getattr(names, name)


@pytest.mark.parametrize("names_module", sorted(NAMES_MODULES))
def test_a_names_module_loads_no_pydantic(names_module: str) -> None:
    # When the names module is imported in a fresh interpreter
    modules = loaded_modules(names_module)
    # Then no model library is loaded (the check saw a real import)
    assert names_module in modules
    assert "pydantic" not in modules


@pytest.mark.parametrize("handler_module", sorted(NAMES_WITHOUT_MODELS))
def test_a_cold_handler_import_loads_the_names_and_none_of_their_models(handler_module: str) -> None:
    # When the handler is imported in a fresh interpreter
    modules = loaded_modules(handler_module)
    # Then each names module it uses is there and the model module that re-exports it is not
    for names_module in NAMES_WITHOUT_MODELS[handler_module]:
        assert names_module in modules
        assert NAMES_MODULES[names_module] not in modules
