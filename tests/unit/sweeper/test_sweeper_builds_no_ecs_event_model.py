"""The sweeper writes synthetic ECS events but never parses one, so its cold start builds none of the event's models
(issue 13): it takes the event's names from the pydantic-free `mm_contracts.models.ecs_names`."""

from __future__ import annotations

from mm_contracts.models import ecs_event, ecs_names
from tests.unit.test_cold_imports import loaded_modules


def test_a_cold_sweeper_import_loads_no_ecs_event_model_module() -> None:
    # When the sweeper's handler is imported in a fresh interpreter
    modules = loaded_modules("sweeper_lambda.handler")
    # Then the event's names are there and its models are not
    assert "mm_contracts.models.ecs_names" in modules
    assert "mm_contracts.models.ecs_event" not in modules


def test_the_ecs_event_module_re_exports_the_very_same_names() -> None:
    for name in ecs_names.__all__:
        assert getattr(ecs_event, name) is getattr(ecs_names, name)
