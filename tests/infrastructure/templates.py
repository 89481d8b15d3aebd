"""Reading synthesized templates: resources by type or name, a role's statements, actions of a statement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.synth import Synthesized


def resources(template: dict[str, Any], type_: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == type_:
            yield logical_id, resource


def all_resources(synthesized: Synthesized, type_: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (stack, logical_id, resource)
        for stack, template in synthesized.templates.items()
        for logical_id, resource in resources(template, type_)
    ]


def by_name(synthesized: Synthesized, type_: str, name_property: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        r["Properties"][name_property]: (stack, lid, r)
        for stack, lid, r in all_resources(synthesized, type_)
        if isinstance(r["Properties"].get(name_property), str)
    }


def functions(synthesized: Synthesized) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return by_name(synthesized, "AWS::Lambda::Function", "FunctionName")


def role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    # Function roles carry their statements inline (decision 048); other roles may use AWS::IAM::Policy.
    for inline in template["Resources"][role_logical_id]["Properties"].get("Policies", []):
        statements.extend(inline["PolicyDocument"]["Statement"])
    for _, policy in resources(template, "AWS::IAM::Policy"):
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_for(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in as_list(s["Action"])]
