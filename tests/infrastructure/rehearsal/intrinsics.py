"""Intrinsic functions: which logical ids a fragment references, and their values once the stack exists."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.infrastructure.rehearsal.records import (
    OUTPUT_PREFIX,
    PSEUDO_PARTITION,
    PSEUDO_URL_SUFFIX,
    Created,
    RehearsalError,
)


def _is_intrinsic(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in _INTRINSIC_KEYS


_INTRINSIC_KEYS = {
    "Ref",
    "Fn::GetAtt",
    "Fn::Join",
    "Fn::Sub",
    "Fn::Select",
    "Fn::Split",
    "Fn::ImportValue",
    "Fn::If",
    "Fn::Base64",
    "Fn::GetAZs",
    "Fn::FindInMap",
    "Fn::Cidr",
    "Fn::Length",
    "Fn::ToJsonString",
}


def _get_att(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return logical_id, attribute
    return str(value[0]), str(value[1])


def referenced_logical_ids(node: Any) -> set[str]:
    """Logical ids a template fragment references through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(_get_att(value)[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                local = set(value[1]) if isinstance(value, list) and len(value) > 1 else set()
                for name in re.findall(r"\$\{([^}!]+)\}", text):
                    if not name.startswith("AWS::") and name.split(".")[0] not in local:
                        found.add(name.split(".")[0])
                found |= referenced_logical_ids(value)
            else:
                found |= referenced_logical_ids(value)
    elif isinstance(node, list):
        for item in node:
            found |= referenced_logical_ids(item)
    return found


@dataclass
class Resolver:
    """Evaluates intrinsic functions for one stack; `outputs` maps a leaf expression's key to its value."""

    stack_name: str
    stack_id: str
    region: str
    account: str
    cfn_values: dict[str, str]  # leaf_key(Ref/GetAtt of a CloudFormation-created resource) -> value
    created: dict[str, Created]  # adapter results, by logical id
    exports: dict[str, str]
    where: str = ""

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if not _is_intrinsic(node):
            return {key: self.resolve(value) for key, value in node.items()}
        ((function, argument),) = node.items()
        evaluate = {
            "Ref": self._ref,
            "Fn::GetAtt": lambda argument: self._get_att(*_get_att(argument)),
            "Fn::ImportValue": self._import_value,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::Sub": self._sub,
        }.get(function)
        if evaluate is None:
            raise RehearsalError(
                f"{self.where}: the rehearsal does not evaluate {function}; add it to rehearsal/intrinsics.py"
            )
        return evaluate(argument)

    def _import_value(self, argument: Any) -> str:
        name = self.resolve(argument)
        if name not in self.exports:
            raise RehearsalError(f"{self.where}: Fn::ImportValue {name!r} is not exported by any stack")
        return self.exports[name]

    def _join(self, argument: Any) -> str:
        separator, items = argument
        return str(separator).join(str(item) for item in self.resolve(items))

    def _select(self, argument: Any) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, argument: Any) -> list[str]:
        separator, text = argument
        return str(self.resolve(text)).split(separator)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": PSEUDO_PARTITION,
            "AWS::URLSuffix": PSEUDO_URL_SUFFIX,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.created:
            return self.created[name].physical_id
        key = leaf_key({"Ref": name})
        if key in self.cfn_values:
            return self.cfn_values[key]
        raise RehearsalError(f"{self.where}: Ref {name} has no value (not created, or created later)")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id in self.created:
            attributes = self.created[logical_id].attributes
            if attribute not in attributes:
                raise RehearsalError(f"{self.where}: Fn::GetAtt {logical_id}.{attribute}: the adapter did not set it")
            return attributes[attribute]
        key = leaf_key({"Fn::GetAtt": [logical_id, attribute]})
        if key in self.cfn_values:
            return self.cfn_values[key]
        raise RehearsalError(f"{self.where}: Fn::GetAtt {logical_id}.{attribute} has no value")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name:
                return str(self._get_att(*name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def leaf_key(node: dict[str, Any]) -> str:
    """A stable output key for one Ref/GetAtt expression (output keys are alphanumeric, <= 255)."""
    digest = hashlib.sha256(json.dumps(node, sort_keys=True).encode()).hexdigest()[:24]
    return f"{OUTPUT_PREFIX}{digest}"


def cfn_leaves(node: Any, cloudformation_ids: set[str]) -> Iterator[dict[str, Any]]:
    """Every Ref/GetAtt (also inside Fn::Sub) of a CloudFormation-created resource within `node`."""
    if isinstance(node, list):
        for item in node:
            yield from cfn_leaves(item, cloudformation_ids)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in cloudformation_ids:
                yield {"Ref": value}
            elif key == "Fn::GetAtt" and _get_att(value)[0] in cloudformation_ids:
                yield {"Fn::GetAtt": list(_get_att(value))}
            elif key == "Fn::Sub":
                yield from _sub_leaves(value, cloudformation_ids)
            else:
                yield from cfn_leaves(value, cloudformation_ids)


def _sub_leaves(value: Any, cloudformation_ids: set[str]) -> Iterator[dict[str, Any]]:
    """The `${Name}` / `${Name.Attribute}` of a CloudFormation-created resource in an Fn::Sub, and its variables'."""
    text = value if isinstance(value, str) else value[0]
    for name in re.findall(r"\$\{([^}!]+)\}", text):
        logical_id, _, attribute = name.partition(".")
        if logical_id in cloudformation_ids:
            yield {"Fn::GetAtt": [logical_id, attribute]} if attribute else {"Ref": logical_id}
    if isinstance(value, list):
        yield from cfn_leaves(value[1:], cloudformation_ids)
