"""Deploying one stack (CloudFormation part, then the deferred part through the APIs), and the order of stacks."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3

from tests.infrastructure.rehearsal.adapters import MOTO_QUIRKS, AdapterSpec, adapters
from tests.infrastructure.rehearsal.intrinsics import Resolver, cfn_leaves, leaf_key, referenced_logical_ids
from tests.infrastructure.rehearsal.records import OUTPUT_PREFIX, RehearsalError, StackDeployment


def _depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


def split_template(template: dict[str, Any], by_type: dict[str, AdapterSpec]) -> tuple[set[str], set[str]]:
    """(logical ids for CloudFormation, logical ids for adapters): the deferred set is closed under reference."""
    resources = template["Resources"]
    deferred = {
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] in by_type and by_type[resource["Type"]].applies(resource.get("Properties", {}))
    }
    changed = True
    while changed:
        changed = False
        for logical_id, resource in resources.items():
            if logical_id in deferred:
                continue
            if referenced_logical_ids(resource.get("Properties", {})) & deferred:
                deferred.add(logical_id)
                changed = True
    return set(resources) - deferred, deferred


def _creation_order(resources: dict[str, Any], deferred: set[str]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in order:
            return
        if logical_id in visiting:
            raise RehearsalError(f"dependency cycle through {logical_id}")
        visiting.add(logical_id)
        resource = resources[logical_id]
        needs = referenced_logical_ids(resource.get("Properties", {})) | _depends_on(resource)
        for other in sorted(needs & deferred):
            visit(other)
        visiting.discard(logical_id)
        order.append(logical_id)

    for logical_id in sorted(deferred):
        visit(logical_id)
    return order


def deploy_stack(stack_name: str, template: dict[str, Any], *, region: str, account: str) -> StackDeployment:
    """Create one stack: the CloudFormation part with create_stack, then the deferred part through the APIs."""
    by_type = adapters(region, account)
    cloudformation_ids, deferred = _split_with_adapters(stack_name, template, by_type)
    cfn_template = _cloudformation_template(template, cloudformation_ids, deferred)
    stack_id, outputs, by_cloudformation = _create_stack(stack_name, cfn_template, cloudformation_ids, region)
    resolver = Resolver(
        stack_name=stack_name,
        stack_id=stack_id,
        region=region,
        account=account,
        cfn_values={key: value for key, value in outputs.items() if key.startswith(OUTPUT_PREFIX)},
        created={},
        exports=exports(region),
    )
    validated_only = _create_deferred(stack_name, template, deferred, by_type, resolver)
    return StackDeployment(
        stack_name=stack_name,
        by_cloudformation=by_cloudformation,
        by_adapter={key: value for key, value in resolver.created.items() if key not in validated_only},
        validated_only=validated_only,
        outputs={key: value for key, value in outputs.items() if not key.startswith(OUTPUT_PREFIX)},
    )


def _split_with_adapters(
    stack_name: str, template: dict[str, Any], by_type: dict[str, AdapterSpec]
) -> tuple[set[str], set[str]]:
    """`split_template`, refusing a custom resource or a deferred resource whose type has no adapter."""
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind.startswith("Custom::") and kind not in by_type:
            raise RehearsalError(f"{stack_name}/{logical_id}: custom resource type {kind} has no adapter")
    cloudformation_ids, deferred = split_template(template, by_type)
    for logical_id in sorted(deferred):
        kind = template["Resources"][logical_id]["Type"]
        if kind not in by_type:
            raise RehearsalError(
                f"{stack_name}/{logical_id}: {kind} references a resource created through the API, "
                "and the rehearsal has no adapter for its type"
            )
    return cloudformation_ids, deferred


def _cloudformation_template(
    template: dict[str, Any], cloudformation_ids: set[str], deferred: set[str]
) -> dict[str, Any]:
    """The template without the deferred resources, moto's quirks applied, and an output per value they read."""
    cfn_template = copy.deepcopy(template)
    for logical_id in deferred:
        del cfn_template["Resources"][logical_id]
    for resource in cfn_template["Resources"].values():
        if resource["Type"] in MOTO_QUIRKS:
            resource["Properties"] = MOTO_QUIRKS[resource["Type"]](resource.get("Properties", {}))
        remaining = _depends_on(resource) - deferred
        if "DependsOn" in resource:
            resource["DependsOn"] = sorted(remaining)
    leaves = {
        leaf_key(leaf): leaf
        for logical_id in deferred
        for leaf in cfn_leaves(template["Resources"][logical_id].get("Properties", {}), cloudformation_ids)
    }
    cfn_template.setdefault("Outputs", {}).update({key: {"Value": leaf} for key, leaf in leaves.items()})
    return cfn_template


def _create_stack(
    stack_name: str, cfn_template: dict[str, Any], cloudformation_ids: set[str], region: str
) -> tuple[str, dict[str, str], dict[str, str]]:
    """(stack id, outputs, logical id -> type of what CloudFormation created)."""
    cloudformation = boto3.client("cloudformation", region_name=region)
    stack_id = cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(cfn_template))["StackId"]
    stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RehearsalError(f"{stack_name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    # A type moto does not model is still listed CREATE_COMPLETE, but without a logical id or type.
    # (Some modelled ones, layer versions and permissions, have no physical id in moto: that is fine.)
    listed = {
        summary["LogicalResourceId"]: summary
        for summary in cloudformation.describe_stack_resources(StackName=stack_id)["StackResources"]
        if summary.get("LogicalResourceId") and summary.get("ResourceType")
    }
    by_cloudformation = {
        logical_id: listed[logical_id]["ResourceType"]
        for logical_id in cloudformation_ids
        if logical_id in listed and listed[logical_id]["ResourceStatus"] == "CREATE_COMPLETE"
    }
    return stack_id, outputs, by_cloudformation


def _create_deferred(
    stack_name: str,
    template: dict[str, Any],
    deferred: set[str],
    by_type: dict[str, AdapterSpec],
    resolver: Resolver,
) -> dict[str, str]:
    """Create the deferred resources in dependency order (into `resolver.created`); returns the validated-only."""
    validated_only: dict[str, str] = {}
    for logical_id in _creation_order(template["Resources"], deferred):
        resource = template["Resources"][logical_id]
        resolver.where = f"{stack_name}/{logical_id} ({resource['Type']})"
        properties = resolver.resolve(resource.get("Properties", {}))
        try:
            spec = by_type[resource["Type"]]
            resolver.created[logical_id] = spec.create(stack_name, logical_id, properties)
            if spec.validates_only:
                validated_only[logical_id] = resource["Type"]
        except RehearsalError:
            raise
        except Exception as error:  # the service API refused the template's own properties: say which
            raise RehearsalError(f"{resolver.where}: {type(error).__name__}: {error}") from error
    return validated_only


def exports(region: str) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=region)
    found: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_exports").paginate():
        found.update({export["Name"]: export["Value"] for export in page["Exports"]})
    return found


def unaccounted(template: dict[str, Any], deployment: StackDeployment) -> dict[str, str]:
    """Logical id -> type of every resource neither CloudFormation nor an adapter created."""
    return {
        logical_id: resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if logical_id not in deployment.by_cloudformation
        and logical_id not in deployment.by_adapter
        and logical_id not in deployment.validated_only
    }


def deployment_order(templates: dict[str, dict[str, Any]]) -> list[str]:
    """Stacks in an order where each one's Fn::ImportValue names are exported by an earlier one."""
    exported = {
        name: {
            str(output["Export"]["Name"]) if isinstance(output["Export"]["Name"], str) else json.dumps(output)
            for output in template.get("Outputs", {}).values()
            if "Export" in output
        }
        for name, template in templates.items()
    }
    imports = {name: set(_imported_names(template)) for name, template in templates.items()}
    order: list[str] = []
    remaining = set(templates)
    while remaining:
        ready = sorted(
            name for name in remaining if imports[name] <= {export for done in order for export in exported[done]}
        )
        if not ready:
            raise RehearsalError(f"no stack order satisfies the imports of {sorted(remaining)}")
        order.extend(ready)
        remaining -= set(ready)
    return order


def _imported_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::ImportValue" and isinstance(value, str):
                yield value
            else:
                yield from _imported_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _imported_names(item)
